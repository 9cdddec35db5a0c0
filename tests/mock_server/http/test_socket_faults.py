"""The fault catalogue through a real `ipmock serve`, as an httpx client sees it over the socket.

Each fault kind answers the first status request of a scenario made for it (config file,
admin queue or the seeded mix); the client must see the broken connection, the slow body
or the HTTP error, and the server must keep answering afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contract_tests.inprocess import MockHarness
from contract_tests.server import RunningMock, running_server
from tests.conftest import REPO

SUBMIT = "/sdxl/text2image/v1"
STATUS = "/sdxl/text2image/v1/status/{id}"
BODY = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64}
KEY = "sk-socket-faults"
TIMEOUT = 10.0

# One scenario per fault kind: its first status request is faulted, then PENDING once.
FAULTS: dict[str, str] = {
    "reset": '{ at_request = 1, kind = "reset" }',
    "empty": '{ at_request = 1, kind = "empty" }',
    "malformed-chunk": '{ at_request = 1, kind = "malformed-chunk" }',
    "garbage": '{ at_request = 1, kind = "garbage" }',
    "drop": '{ at_request = 1, kind = "drop" }',
    "dribble": '{ at_request = 1, kind = "dribble", seconds = 0.4 }',
    "delay": '{ at_request = 1, kind = "delay", seconds = 0.1, jitter = 0.2 }',
    "rate-limited": '{ at_request = 1, kind = "rate-limited", retry_after = 3 }',
    "busy": '{ at_request = 1, kind = "busy", retry_after = 4 }',
    "server-error": '{ at_request = 1, kind = "server-error" }',
}
CONFIG = "".join(
    f'[[scenarios]]\nname = "fault-{kind}"\npending_polls = 1\nfaults = [{fault}]\n\n'
    for kind, fault in FAULTS.items()
)
BROKEN = {
    "reset": httpx.ReadError,  # ECONNRESET
    "empty": httpx.RemoteProtocolError,
    "malformed-chunk": httpx.RemoteProtocolError,
    "garbage": httpx.RemoteProtocolError,
    "drop": httpx.RemoteProtocolError,
}
CHAOS = """\
[chaos]
faults = { rate = 0.5, kinds = ["reset", "empty", "malformed-chunk", "garbage", "busy"] }
"""


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMock]:
    config = tmp_path_factory.mktemp("faults") / "ipmock.toml"
    config.write_text(CONFIG, encoding="utf-8")
    with running_server("--config", str(config)) as url:
        running = RunningMock(url)
        yield running
        running.close()


@pytest.fixture
def http(mock: RunningMock) -> Iterator[httpx.Client]:
    mock.reset()
    with httpx.Client(base_url=mock.url, headers={"API-Key": KEY}, timeout=TIMEOUT) as client:
        yield client


def _submit(http: httpx.Client, scenario: str | None = None) -> str:
    headers = {"X-Ipmock-Scenario": scenario} if scenario else {}
    response = http.post(SUBMIT, json=BODY, headers=headers)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def _outcome(http: httpx.Client, job_id: str) -> str:
    """One status request, in a word: the HTTP status, or the transport error's class."""
    try:
        return str(http.get(STATUS.format(id=job_id)).status_code)
    except httpx.TransportError as exc:
        return type(exc).__name__


def _still_answers(http: httpx.Client, job_id: str) -> None:
    """The next status request gets a complete, ordinary answer."""
    response = http.get(STATUS.format(id=job_id))
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("PENDING", "SUCCESS")
    assert response.json()["id"] == job_id


@pytest.mark.parametrize("kind", sorted(BROKEN))
@pytest.mark.socket
def test_broken_connection_faults_reach_the_client(
    mock: RunningMock, http: httpx.Client, kind: str
) -> None:
    job_id = _submit(http, f"fault-{kind}")
    with pytest.raises(BROKEN[kind]):
        http.get(STATUS.format(id=job_id))
    _still_answers(http, job_id)
    faulted, after = mock.polls(job_id)
    assert (faulted["fault"], faulted["dropped"]) == (kind, True)
    assert (after["fault"], after["dropped"], after["status"]) == (None, False, 200)
    if kind != "drop":  # nothing HTTP was sent at all
        assert faulted["status"] is None


@pytest.mark.parametrize(
    ("kind", "status", "retry_after"),
    [("rate-limited", 429, "3"), ("busy", 503, "4"), ("server-error", 500, None)],
)
@pytest.mark.socket
def test_http_error_faults_reach_the_client(
    mock: RunningMock, http: httpx.Client, kind: str, status: int, retry_after: str | None
) -> None:
    job_id = _submit(http, f"fault-{kind}")
    response = http.get(STATUS.format(id=job_id))
    assert response.status_code == status
    assert response.headers.get("Retry-After") == retry_after
    assert response.json()["status"] == "FAILURE"
    _still_answers(http, job_id)
    assert mock.polls(job_id)[0]["fault"] == kind


@pytest.mark.socket
def test_dribble_sends_the_whole_answer_in_pieces(mock: RunningMock, http: httpx.Client) -> None:
    job_id = _submit(http, "fault-dribble")
    with http.stream("GET", STATUS.format(id=job_id)) as response:
        assert response.status_code == 200
        pieces = list(response.iter_raw())
    assert len(pieces) > 1, "the answer came in one piece"
    body = json.loads(b"".join(pieces))
    assert body == {"status": "PENDING", "id": job_id}
    # A dribbled answer is a real poll: the job had one PENDING poll to give.
    assert http.get(STATUS.format(id=job_id)).json()["status"] == "SUCCESS"
    faulted = mock.polls(job_id)[0]
    assert (faulted["fault"], faulted["dropped"], faulted["status"]) == ("dribble", False, 200)


@pytest.mark.socket
def test_delay_with_jitter_answers_as_usual(mock: RunningMock, http: httpx.Client) -> None:
    job_id = _submit(http, "fault-delay")
    response = http.get(STATUS.format(id=job_id))
    assert (response.status_code, response.json()) == (200, {"status": "PENDING", "id": job_id})
    assert mock.polls(job_id)[0]["fault"] == "delay"


@pytest.mark.socket
def test_admin_queue_scenario_with_socket_faults(mock: RunningMock, http: httpx.Client) -> None:
    mock.queue(
        {
            "pending_polls": 1,
            "faults": [
                {"at_request": 1, "kind": "malformed-chunk"},
                {"at_request": 2, "kind": "reset"},
                {"at_request": 3, "kind": "garbage"},
            ],
        }
    )
    job_id = _submit(http)
    outcomes = [_outcome(http, job_id) for _ in range(4)]
    assert outcomes[:3] == ["RemoteProtocolError", "ReadError", "RemoteProtocolError"]
    assert outcomes[3] == "200"
    assert [e["fault"] for e in mock.polls(job_id)] == [
        "malformed-chunk",
        "reset",
        "garbage",
        None,
    ]


@pytest.mark.socket
def test_seeded_fault_mix_replays_after_reset(tmp_path: Path) -> None:
    config = tmp_path / "chaos.toml"
    config.write_text(CHAOS, encoding="utf-8")
    with (
        running_server("--config", str(config), "--seed", "7") as url,
        httpx.Client(base_url=url, headers={"API-Key": KEY}, timeout=TIMEOUT) as http,
    ):
        running = RunningMock(url)

        def run() -> list[str]:
            running.reset()  # the mix starts over, as at start-up
            job_id = _submit(http, "stuck")
            return [_outcome(http, job_id) for _ in range(24)]

        first, second = run(), run()
        running.close()
    assert first == second
    assert "200" in first
    assert {"ReadError", "RemoteProtocolError", "503"} <= set(first), first


@pytest.mark.socket
def test_faults_leave_no_error_in_the_server_log(tmp_path: Path) -> None:
    config = tmp_path / "ipmock.toml"
    config.write_text(CONFIG, encoding="utf-8")
    output: list[str] = []
    with (
        running_server("--config", str(config), output=output) as url,
        httpx.Client(base_url=url, headers={"API-Key": KEY}, timeout=TIMEOUT) as http,
    ):
        for kind in BROKEN:
            job_id = _submit(http, f"fault-{kind}")
            assert _outcome(http, job_id) == BROKEN[kind].__name__
            _still_answers(http, job_id)
    text = "".join(output)
    assert "ipmock serving" in text
    for alarm in ("Traceback", "ERROR", "Exception in ASGI", "Internal Server Error"):
        assert alarm not in text, text


# In process there is no socket: every socket fault is the dropped connection `drop` gives.


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_in_process_socket_faults_are_dropped_connections(kind: str) -> None:
    harness = MockHarness()
    harness.queue({"pending_polls": 1, "faults": [{"at_request": 1, "kind": kind}]})
    with harness.client(api_key=KEY) as http:
        job_id = _submit(http)
        with pytest.raises(httpx.RemoteProtocolError):
            http.get(STATUS.format(id=job_id))
        _still_answers(http, job_id)
    faulted = harness.polls(job_id)[0]
    assert (faulted["fault"], faulted["dropped"]) == (kind, True)


def test_in_process_dribble_is_a_complete_answer_on_virtual_time() -> None:
    harness = MockHarness()
    harness.queue(
        {"pending_polls": 1, "faults": [{"at_request": 1, "kind": "dribble", "seconds": 30}]}
    )
    with harness.client(api_key=KEY) as http:
        job_id = _submit(http)
        before = harness.now()
        answer: Any = http.get(STATUS.format(id=job_id)).json()
        assert answer == {"status": "PENDING", "id": job_id}
        assert harness.now() - before == pytest.approx(30)  # the virtual clock, not a timer


# Submits and downloads: the same faults, on="submit" and on="download".


def _lost_submit(http: httpx.Client, headers: dict[str, str] | None = None) -> str:
    """A submit whose answer is lost or broken: the error's class or the HTTP status."""
    try:
        return str(http.post(SUBMIT, json=BODY, headers=headers).status_code)
    except httpx.TransportError as exc:
        return type(exc).__name__


# A submit is answered in place by `ipmock serve`, unless a header (X-Forwarded-For, a
# proxy's) sends it through the usual ASGI cycle: both must agree.
PATHS = {"in-place": {}, "asgi-cycle": {"X-Forwarded-For": "10.1.2.3"}}


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("kind", [*sorted(BROKEN), "server-error"])
@pytest.mark.socket
def test_a_submit_whose_answer_is_lost_has_made_its_job(
    mock: RunningMock, http: httpx.Client, kind: str, path: str
) -> None:
    mock.queue({"pending_polls": 0, "faults": [{"at_request": 1, "kind": kind, "on": "submit"}]})
    expected = "500" if kind == "server-error" else BROKEN[kind].__name__
    assert _lost_submit(http, PATHS[path]) == expected
    (entry,) = mock.journal(SUBMIT)
    assert (entry["fault"], entry["scenario"]) == (kind, "inline")
    assert entry["dropped"] is (kind != "server-error")
    job_id = entry["job_id"]
    assert job_id, entry  # the journal names the job the lost answer was about ...
    done = http.get(STATUS.format(id=job_id))  # ... and it exists: a second submit pays twice
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "SUCCESS"


@pytest.mark.parametrize(("kind", "status"), [("rate-limited", 429), ("busy", 503)])
@pytest.mark.socket
def test_a_refusing_submit_fault_makes_no_job(
    mock: RunningMock, http: httpx.Client, kind: str, status: int
) -> None:
    mock.queue({"faults": [{"at_request": 1, "kind": kind, "on": "submit", "retry_after": 2}]})
    refused = http.post(SUBMIT, json=BODY)
    assert (refused.status_code, refused.headers["retry-after"]) == (status, "2")
    (entry,) = mock.journal(SUBMIT)
    assert (entry["fault"], entry["job_id"], entry["scenario"]) == (kind, None, "inline")
    jobs = httpx.get(f"{mock.url}/__mock/jobs", timeout=TIMEOUT).json()
    assert not jobs.get("jobs", jobs), jobs


@pytest.mark.socket
def test_a_delayed_submit_answers_as_usual(mock: RunningMock, http: httpx.Client) -> None:
    mock.queue({"faults": [{"at_request": 1, "kind": "dribble", "on": "submit", "seconds": 0.3}]})
    response = http.post(SUBMIT, json=BODY)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "SUCCESS"
    (entry,) = mock.journal(SUBMIT)
    assert (entry["fault"], entry["job_id"]) == ("dribble", response.json()["id"])


def _download(http: httpx.Client, url: str) -> str:
    try:
        response = http.get(url)
    except httpx.TransportError as exc:
        return type(exc).__name__
    if response.status_code == 200:
        assert response.content.startswith(b"\x89PNG"), response.content[:20]
    return str(response.status_code)


@pytest.mark.socket
def test_download_faults_reach_the_client_then_the_image_comes(
    mock: RunningMock, http: httpx.Client
) -> None:
    kinds = ["reset", "busy", "garbage", "drop", "server-error", "empty", "malformed-chunk"]
    mock.queue(
        {
            "pending_polls": 0,
            "faults": [
                {"at_request": i, "kind": kind, "on": "download", "retry_after": 3}
                for i, kind in enumerate(kinds, start=1)
            ],
        }
    )
    submitted = http.post(SUBMIT, json={**BODY, "samples": 2})
    assert submitted.status_code == 200, submitted.text
    first, second = submitted.json()["download_urls"]
    outcomes = [_download(http, first if i % 2 else second) for i in range(len(kinds) + 2)]
    assert outcomes == [
        "ReadError",
        "503",
        "RemoteProtocolError",
        "RemoteProtocolError",
        "500",
        "RemoteProtocolError",
        "RemoteProtocolError",
        "200",
        "200",
    ]
    downloads = mock.journal("/images/")
    assert [e["fault"] for e in downloads] == [*kinds, None, None]
    assert {e["job_id"] for e in downloads} == {submitted.json()["id"]}
    assert downloads[1]["response_headers"]["retry-after"] == "3"
    dropped = downloads[3]  # part of a PNG, then the connection closes
    assert (dropped["response_headers"]["content-type"], dropped["status"]) == ("image/png", 200)
    assert dropped["response_body"].startswith("<image/png, ")
    assert [e["dropped"] for e in downloads] == [
        True,
        False,
        True,
        True,
        False,
        True,
        True,
        False,
        False,
    ]


@pytest.mark.socket
def test_seeded_fault_mix_on_submits_and_downloads(tmp_path: Path) -> None:
    config = tmp_path / "chaos.toml"
    config.write_text(
        '[chaos]\nfaults = { rate = 0.5, kinds = ["reset", "busy"], '
        'on = ["submit", "download"] }\n',
        encoding="utf-8",
    )
    with (
        running_server("--config", str(config), "--seed", "7") as url,
        httpx.Client(base_url=url, headers={"API-Key": KEY}, timeout=TIMEOUT) as http,
    ):
        running = RunningMock(url)

        def run() -> list[str]:
            running.reset()
            outcomes = [_lost_submit(http) for _ in range(12)]
            http.headers["X-Ipmock-Scenario"] = "success"
            while _lost_submit(http) != "200":  # the mix may fault this submit too
                pass
            done = running.journal(SUBMIT)[-1]["response_json"]
            image = done["download_urls"][0]
            outcomes += [_download(http, image) for _ in range(12)]
            outcomes += [_outcome(http, done["id"]) for _ in range(4)]  # polls: no mix
            del http.headers["X-Ipmock-Scenario"]
            return outcomes

        first, second = run(), run()
        running.close()
    assert first == second
    assert {"ReadError", "503"} <= set(first[:12]), first
    assert {"ReadError", "503", "200"} <= set(first[12:24]), first
    assert first[-4:] == ["200"] * 4


def test_in_process_submit_and_download_faults_are_dropped_connections() -> None:
    harness = MockHarness()
    harness.queue(
        {
            "pending_polls": 0,
            "faults": [
                {"at_request": 1, "kind": "reset", "on": "submit"},
                {"at_request": 1, "kind": "garbage", "on": "download"},
            ],
        }
    )
    with harness.client(api_key=KEY) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            http.post(SUBMIT, json=BODY)
        (submit,) = harness.submits()
        assert (submit["fault"], submit["dropped"]) == ("reset", True)
        done = http.get(STATUS.format(id=submit["job_id"])).json()
        with pytest.raises(httpx.RemoteProtocolError):
            http.get(done["download_urls"][0])
        assert http.get(done["download_urls"][0]).content.startswith(b"\x89PNG")
    assert [e["fault"] for e in harness.journal("/images/")] == ["garbage", None]
    assert harness.journal("/images/")[0]["response_headers"]["content-type"] == "image/png"


@pytest.mark.socket
def test_submit_and_download_faults_leave_no_error_in_the_server_log() -> None:
    output: list[str] = []
    with (
        running_server(output=output) as url,
        httpx.Client(base_url=url, headers={"API-Key": KEY}, timeout=TIMEOUT) as http,
    ):
        running = RunningMock(url)
        for kind in sorted(BROKEN):
            running.queue(
                {
                    "faults": [
                        {"at_request": 1, "kind": kind, "on": "submit"},
                        {"at_request": 1, "kind": kind, "on": "download"},
                    ]
                }
            )
            assert _lost_submit(http) == BROKEN[kind].__name__
            job_id = running.journal(SUBMIT)[-1]["job_id"]
            image = http.get(STATUS.format(id=job_id)).json()["download_urls"][0]
            assert _download(http, image) == BROKEN[kind].__name__
            assert _download(http, image) == "200"
        running.close()
    text = "".join(output)
    assert "ipmock serving" in text
    for alarm in ("Traceback", "ERROR", "Exception in ASGI", "Internal Server Error"):
        assert alarm not in text, text


@pytest.mark.socket
def test_the_docs_faults_toml_plays_as_the_docs_say(tmp_path: Path) -> None:
    page = (REPO / "docs/scenarios.md").read_text(encoding="utf-8")
    config = tmp_path / "faults.toml"
    config.write_text(page.split("# faults.toml\n", 1)[1].split("```", 1)[0], encoding="utf-8")
    with (
        running_server("--config", str(config), "--seed", "7") as url,
        httpx.Client(
            base_url=url, headers={"API-Key": "test_lost-submit"}, timeout=TIMEOUT
        ) as http,
    ):
        running = RunningMock(url)
        assert _lost_submit(http) == "ReadError"  # curl: (56) ... reset by peer
        job_id = running.journal("/sdxl")[-1]["job_id"]  # and yet the job exists
        done = http.get(STATUS.format(id=job_id))
        assert done.json()["status"] == "SUCCESS", done.text
        image = done.json()["download_urls"][0]
        assert [_download(http, image) for _ in range(2)] == ["503", "200"]
        running.close()
