"""The hostile fuzz: a real `ipmock serve` takes it with no 5xx, hang or drop, and the
detector lists each of those from a small app on 127.0.0.1 built to fail."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bench.hostile import CATEGORIES, Finding, probes, run_hostile
from bench.hostile.probe import DEFAULT_BODY_LIMIT, Context, request
from bench.support.procfs import listening_pid
from contract_tests.server import running_server
from mock_server import contract
from mock_server.validation import InvalidRequest, validate
from mock_server.validation import rules as validation_rules

KEY = "hostile-fuzz-ci"
COUNT = 800


@pytest.mark.timeout(150)
@pytest.mark.socket
@pytest.mark.slow
def test_ipmock_takes_the_hostile_fuzz() -> None:
    """At least COUNT hostile requests (schemathesis negative mode and raw garbage):
    no 5xx, no hang, no dropped connection, and a whole generation still works after."""
    with running_server() as url:
        pid = listening_pid(url)
        report = run_hostile(url, count=COUNT, seed=20261125, api_key=KEY, pid=pid)
    assert report.findings == [], report.text()
    assert report.health_before.ok, report.text()
    assert report.health_after.ok, report.text()
    assert report.ok
    assert report.sent >= COUNT
    assert report.schemathesis is not None and report.schemathesis.requests > 0
    assert set(CATEGORIES) <= set(report.sent_by_category), report.sent_by_category
    assert sum(report.status_counts.values()) >= report.sent
    assert pid is not None
    before, after = report.health_before.open_fds, report.health_after.open_fds
    assert before is not None and after is not None
    assert after <= before + 4, f"open FDs {before} before, {after} after: {report.text()}"


# -- the detector: an app that fails on purpose ------------------------------------------


class _Dropped(Response):
    """Starts an answer and breaks off: the client sees a cut connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]}
        )
        await send({"type": "http.response.body", "body": b'{"st', "more_body": True})
        raise RuntimeError("dropped on purpose")


async def _submit(request: Request) -> Response:
    body = json.loads(await request.body())  # invalid JSON raises: a 500
    return JSONResponse({"status": "FAILURE", "error": f"got {type(body).__name__}"}, 400)


async def _status(request: Request) -> Response:
    if request.headers.get("api-key") != KEY:
        await asyncio.sleep(60)  # a hang, for any other key
    return JSONResponse({"status": "FAILURE", "error": "no such job"}, 404)


async def _image(request: Request) -> Response:
    return _Dropped()


async def _openapi(request: Request) -> Response:
    return Response(contract.openapi_bytes(), media_type="application/json")


def _broken_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/sdxl/text2image/v1", _submit, methods=["POST"]),
            Route("/sdxl/text2image/v1/status/{id}", _status, methods=["GET"]),
            Route("/images/{job_id}/{file_name}", _image, methods=["GET"]),
            Route("/openapi.json", _openapi, methods=["GET"]),
        ]
    )


@pytest.fixture
def broken_server() -> Iterator[str]:
    """The broken app under uvicorn in a thread, on 127.0.0.1 and a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(_broken_app(), log_level="critical", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "the broken app did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def _kinds(findings: list[Finding], source: str) -> dict[str, list[Finding]]:
    kinds: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.source == source:
            kinds.setdefault(finding.kind, []).append(finding)
    return kinds


@pytest.mark.timeout(150)
@pytest.mark.socket
@pytest.mark.slow
def test_the_detector_lists_5xx_hangs_and_drops(broken_server: str) -> None:
    report = run_hostile(
        broken_server, count=600, seed=3, api_key=KEY, timeout=1.0, schemathesis_share=0.5
    )
    assert not report.ok
    assert not report.health_after.ok  # the broken app cannot run a generation
    raw = _kinds(report.findings, "raw")
    # 500s on bodies that are not JSON, each with its request
    assert raw.get("5xx"), report.text()
    for finding in raw["5xx"]:
        assert finding.status == 500 and finding.request is not None
        assert finding.request.method == "POST"
        assert finding.request.target == "/sdxl/text2image/v1"
        assert finding.request.wire_bytes > 0 and finding.request.wire
    # hangs on status requests with another key
    assert raw.get("hang"), report.text()
    for finding in raw["hang"]:
        assert finding.request is not None
        assert finding.request.target.startswith("/sdxl/text2image/v1/status/"), finding
    # dropped answers on image downloads
    dropped = [f for f in raw.get("connection error", []) if f.request is not None]
    assert any(f.request and f.request.target.startswith("/images/") for f in dropped), (
        report.text()
    )
    # schemathesis found the 500s too, with the request it sent
    st = _kinds(report.findings, "schemathesis")
    assert st.get("5xx"), report.text()
    assert any(f.request is not None and f.request.method == "POST" for f in st["5xx"])
    assert report.schemathesis is not None and report.schemathesis.failures > 0
    assert "hostile-fuzz-ci" not in json.dumps(report.to_json())  # the key is redacted


@pytest.mark.socket
def test_a_5xx_the_server_documents_is_not_a_finding(broken_server: str) -> None:
    """documented_faults: statuses the server gives on purpose are counted, not listed."""
    report = run_hostile(
        broken_server,
        count=150,
        seed=3,
        api_key=KEY,
        timeout=1.0,
        schemathesis_share=0.0,
        documented_faults={500},
    )
    assert report.schemathesis is None
    assert report.status_counts.get("500", 0) > 0
    assert not [f for f in report.findings if f.kind == "5xx"], report.text()


# -- the probes themselves --------------------------------------------------------------


def _context() -> Any:
    return Context(KEY, b"127.0.0.1:1", DEFAULT_BODY_LIMIT, "job-1")


def test_probes_are_the_same_for_the_same_seed() -> None:
    ctx = _context()
    first = [probes.build_probe(5, i, ctx).wire() for i in range(200)]
    again = [probes.build_probe(5, i, ctx).wire() for i in range(200)]
    other = [probes.build_probe(6, i, ctx).wire() for i in range(200)]
    assert first == again
    assert first != other


def test_every_category_comes_up() -> None:
    ctx = _context()
    seen = {probes.build_probe(1, i, ctx).category for i in range(2000)}
    assert seen == set(CATEGORIES)


def test_a_reproducer_shows_the_wire_and_hides_the_key() -> None:
    probe = request(_context(), "bad json", "POST", "/sdxl/text2image/v1", b"{\xff")
    shown = probe.reproducer(KEY)
    assert ("API-Key", "<api_key>") in shown.headers
    assert KEY not in shown.wire and "<api_key>" in shown.wire
    assert shown.body == "{\\xff" and shown.body_bytes == 2
    assert shown.wire.startswith("POST /sdxl/text2image/v1 HTTP/1.1\\r\\n")


# -- the fixes the fuzz led to ----------------------------------------------------------


def test_an_over_long_prompt_is_not_token_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLIP BPE is quadratic in a run of emoji: a 1 MB prompt took minutes."""
    counted: list[int] = []

    def count(text: str) -> int:
        counted.append(len(text))
        return 1

    monkeypatch.setattr(validation_rules, "count_tokens", count)
    with pytest.raises(InvalidRequest) as refused:
        validate(json.dumps({"prompt": "\U0001f642" * 1_000_000}).encode())
    assert [e.field for e in refused.value.errors] == ["prompt"]
    assert counted == []
    validate(json.dumps({"prompt": "\U0001f642" * 10_000}).encode())
    assert counted == [10_000]


def test_a_huge_array_is_explained_in_a_few_errors() -> None:
    """A 100,000-item array was explained item by item (seconds, and 100,000 errors)."""
    with pytest.raises(InvalidRequest) as refused:
        validate(json.dumps({"prompt": "a cat", "ip_adapter": ["nope"] * 100_000}).encode())
    errors = refused.value.errors
    assert len(errors) < 40
    whole = [e for e in errors if e.field == "ip_adapter"]
    assert len(whole) == 1 and whole[0].value == ["nope"] * 100_000
    assert "<array of 100000 items>" in whole[0].message
    assert {e.field for e in errors} >= {"ip_adapter", "ip_adapter.0"}
