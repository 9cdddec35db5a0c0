"""Journal entries: bodies parsed as JSON where they are whole JSON (and only then), and
the job and scenario each exchange was about, for submits, polls, downloads and refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contract_tests.inprocess import MockHarness
from mock_server.http.journal import Exchange

SUBMIT = "/sdxl/text2image/v1"


def _entry(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    headers = [(b"content-type", content_type.encode())]
    scope = {"method": "POST", "path": SUBMIT, "headers": headers}
    return Exchange.of(scope, body, 200, headers, body, at=0.0, duration_s=0.0).to_json()


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        (b'{"prompt": "a cat", "samples": 2}', {"prompt": "a cat", "samples": 2}),
        (b"[1, 2.5, null]", [1, 2.5, None]),
        (b'{"seed": 123456789012345678901234567890}', {"seed": 123456789012345678901234567890}),
        (b'"just a string"', "just a string"),
    ],
)
def test_json_bodies_are_carried_as_json(body: bytes, parsed: Any) -> None:
    entry = _entry(body)
    assert entry["json"] == entry["response_json"] == parsed
    assert entry["body"] == body.decode()  # the text stays as it was, a string
    json.dumps(entry, allow_nan=False)  # and the entry is still plain JSON


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"prompt=a+cat",
        b'{"prompt": "a cat"',  # cut short
        b"[NaN]",
        b'{"x": Infinity}',
        b"\xff\xfe{}",
        b"[" * 100_000,  # past Python's recursion limit when parsed, capped in the journal
        b"[" * 5000 + b"]" * 5000,
        b"1" * 5000,  # past Python's int digits limit
    ],
)
def test_bodies_that_are_not_whole_json_are_null(body: bytes) -> None:
    entry = _entry(body)
    assert entry["json"] is None and entry["response_json"] is None
    assert isinstance(entry["body"], str)


def test_a_body_past_the_cap_is_not_parsed_from_its_first_part() -> None:
    big = json.dumps({"prompt": "x" * (70 * 1024)}).encode()
    entry = _entry(big)
    assert entry["json"] is None
    assert entry["body"].endswith("...(truncated)")


def test_an_image_is_never_parsed() -> None:
    assert _entry(b"[1]", "image/png")["response_json"] is None


def test_entries_name_the_job_and_the_scenario() -> None:
    harness = MockHarness()
    harness.queue("pending-then-success")
    with harness.client() as http:
        job = http.post(SUBMIT, json={"prompt": "a cat"}).json()["id"]
        http.get(f"{SUBMIT}/status/{job}")
        done = http.get(f"{SUBMIT}/status/{job}").json()
        http.get(done["download_urls"][0])
        http.post(SUBMIT, json={"prompt": "a cat"}, headers={"API-Key": "test_rate-limited"})
        http.post(SUBMIT, json={"samples": 9})  # invalid: no scenario was chosen
        http.get(f"{SUBMIT}/status/no-such-job")
    shown = [(e["status"], e["job_id"], e["scenario"]) for e in harness.journal()]
    assert shown == [
        (202, job, "pending-then-success"),
        (200, job, "pending-then-success"),
        (200, job, "pending-then-success"),
        (200, job, "pending-then-success"),  # the download
        (429, None, "rate-limited"),
        (400, None, None),
        (404, None, None),
    ]
    first = harness.journal()[0]
    assert first["json"] == {"prompt": "a cat"}
    assert first["response_json"] == {"status": "PENDING", "id": job}


def test_older_exchanges_without_the_new_fields_still_make_entries() -> None:
    old = Exchange(0.0, "GET", "/x", b"", [], b"", 200, [], b"", 0.0, False, None, 1)
    entry = old.to_json()
    assert (entry["job_id"], entry["scenario"], entry["json"]) == (None, None, None)
