"""The live report on a real `ipmock serve`: the careful example clients (Python and
Node) pass `ipmock report` after running against `--chaos`, on the memory store and on
Redis with two workers; planted-bug clients are flagged by the property they break."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract_tests.flows import Flow
from contract_tests.server import running_server
from mock_server.faults import Fault
from mock_server.report import client_id
from tests.conftest import REPO
from tests.support import planted_clients

pytestmark = [pytest.mark.socket, pytest.mark.slow]

REQUEST = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "samples": 2}
FLOOR = 0.2
"""The poll interval the careful clients keep, and the floor the report holds them to."""


def _node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node (18 or later) is needed to run examples/js_client.mjs")
    return found


def _careful(kind: str, url: str, key: str, out: Path) -> int:
    """One generation by an example client (``python`` or ``node``); its exit status."""
    command = (
        [sys.executable, str(REPO / "examples/python_client.py")]
        if kind == "python"
        else [_node(), str(REPO / "examples/js_client.mjs")]
    )
    options = ["--base-url", url, "--api-key", key, "--prompt", "a lighthouse at dusk"]
    options += ["--out", str(out), "--width", "64", "--height", "64", "--samples", "2"]
    options += ["--poll-interval", str(FLOOR), "--timeout", "60"]
    done = subprocess.run(command + options, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1, 3), done.stderr  # saved, refused or failed, lost submit
    return done.returncode


def _report(url: str, *more: str) -> tuple[int, str]:
    command = [sys.executable, "-m", "mock_server.cli", "report", "--base-url", url]
    command += ["--poll-floor", str(FLOOR), "--deadline", "60", *more]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, done.stdout


def _broken(out: str) -> set[str]:
    """The property names a report table marks BROKEN."""
    return {line.split()[0] for line in out.splitlines() if "  BROKEN  " in line}


@pytest.mark.parametrize("kind", ["python", "node"])
def test_careful_clients_pass_the_live_report_after_chaos(kind: str, tmp_path: Path) -> None:
    keys = [f"sk-careful-{kind}-{i}-0123456789" for i in range(2)]
    with running_server("--chaos", "--seed", "5") as url:  # each key runs it twice
        statuses = [
            _careful(kind, url, key, tmp_path / f"{key}-{n}") for n in (1, 2) for key in keys
        ]
        status, out = _report(url)
        report = httpx.get(f"{url}/__mock/report", params={"poll_floor": FLOOR}).json()
        entries = httpx.get(f"{url}/__mock/journal").json()["entries"]
    assert status == 0, out
    upsets = [e for e in entries if e["fault"] or e["status"] not in (200, 202)]
    assert upsets, "the chaos upset nothing: the test proves less than it says"
    assert not _broken(out)
    assert {c["client"] for c in report["clients"]} == {client_id(k) for k in keys}
    assert all(k not in out for k in keys)
    assert 0 in statuses  # at least one generation went through (the chaos is seeded)


@pytest.fixture(scope="module")
def plain_server() -> Iterator[str]:
    with running_server() as url:
        yield url


def _queue(url: str, *scenarios: Any) -> None:
    queued = httpx.post(f"{url}/__mock/queue", json={"scenarios": list(scenarios)})
    assert queued.status_code == 200, queued.text


def _flow_scenarios(flow: Flow) -> list[dict[str, Any]]:
    return [s.to_json() for s in flow.scenarios()]


def _run_planted(url: str, bug: str, key: str) -> None:
    """One generation; what it returned or raised is not the live report's to judge."""
    errors = (planted_clients.PlantedError, httpx.HTTPError, KeyError, RuntimeError)
    with contextlib.suppress(*errors):
        planted_clients.generate(url, key, REQUEST, poll_floor=FLOOR, deadline=20.0, bug=bug)


PLANTED = [
    ("no-pause", ["pending-3-then-success"], "respects_poll_floor"),
    ("ignores-retry-after", ["rate-limited", "success"], "honours_retry_after"),
    (
        "resubmits-on-poll-error",
        _flow_scenarios(Flow(pending_polls=2, faults=(Fault(1, "server-error"),))),
        "submits_once",
    ),
    (
        "resubmits-on-poll-error",
        _flow_scenarios(Flow(pending_polls=2, faults=(Fault(1, "server-error"),))),
        "no_duplicate_submit",
    ),
    ("first-image-only", ["success"], "fetches_every_image"),
    ("drops-key-on-polls", ["pending-then-success"], "sends_its_key"),
]


@pytest.mark.parametrize(("bug", "scenarios", "prop"), PLANTED, ids=[p[2] for p in PLANTED])
def test_planted_bugs_are_flagged_by_the_property_they_break(
    plain_server: str, bug: str, scenarios: list[Any], prop: str
) -> None:
    key = f"sk-planted-{bug}-{prop}-0123456789"
    _queue(plain_server, *scenarios)
    _run_planted(plain_server, bug, key)
    status, out = _report(plain_server, "--api-key", key)
    assert status == 1, out
    assert prop in _broken(out), out
    assert key not in out


def test_a_client_that_polls_after_success_is_flagged(plain_server: str) -> None:
    key = "sk-polls-after-success-0123456789"
    _queue(plain_server, "success")
    with httpx.Client(base_url=plain_server, headers={"API-Key": key}) as http:
        job = http.post("/sdxl/text2image/v1", json=REQUEST).json()
        for url in job["download_urls"]:
            http.get(url)
        http.get(f"/sdxl/text2image/v1/status/{job['id']}")  # the planted poll
    status, out = _report(plain_server, "--api-key", key)
    assert status == 1 and _broken(out) == {"no_poll_after_final"}, out


def test_what_only_the_result_shows_is_not_judged_never_held(plain_server: str) -> None:
    key = "sk-failure-is-success-0123456789"
    _queue(plain_server, "failure")
    _run_planted(plain_server, "failure-is-success", key)
    report = httpx.get(
        f"{plain_server}/__mock/report", params={"key": client_id(key), "poll_floor": FLOOR}
    ).json()
    (client,) = report["clients"]
    assert client["properties"]["surfaces_failure"]["state"] == "not_judged"
    assert "needs what the client returned" in client["properties"]["surfaces_failure"]["why"]


@pytest.mark.redis
def test_the_shared_journal_of_two_workers_is_judged(redis_url: str, tmp_path: Path) -> None:
    careful = [f"sk-careful-shared-{i}-0123456789" for i in range(3)]
    hasty = "sk-hasty-shared-0123456789"
    with running_server("--store", redis_url, "--workers", "2", "--chaos", "--seed", "3") as url:
        for key in careful:
            _careful("python", url, key, tmp_path / key)
        _queue(url, "pending-3-then-success")
        _run_planted(url, "no-pause", hasty)
        status, out = _report(url)
        report = httpx.get(f"{url}/__mock/report", params={"poll_floor": FLOOR}).json()
    assert status == 1
    by_client = {c["client"]: c for c in report["clients"]}
    assert all(not by_client[client_id(k)]["broken"] for k in careful), out
    assert by_client[client_id(hasty)]["properties"]["respects_poll_floor"]["state"] == "broken"
    journal = report["journal"]  # one numbering across both workers, nothing lost
    assert journal["first_seq"] == 1 and journal["dropped"] == 0
    assert (
        journal["last_seq"] == journal["entries"] == sum(c["exchanges"] for c in by_client.values())
    )
