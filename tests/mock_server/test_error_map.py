"""One error-to-answer map (mock_server.errors.answer_for): an exception raised on the
engine's path (api.respond, which HotRoutes and the in-place protocol call) and the same
exception raised in a Starlette route (the app's exception handlers) get the same answer,
status, body and headers alike, and the same log line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mock_server import api
from mock_server.errors import ApiError, answer_for
from mock_server.faults import ConnectionDropped
from mock_server.http.app import create_app
from mock_server.settings import Settings
from mock_server.state import MockState, StoreUnavailable

PATH = "/raises"

CASES: dict[str, Callable[[], Exception]] = {
    "refusal": lambda: ApiError(429, "rate_limited", "slow down", retry_after=3),
    "invalid": lambda: ApiError(400, "invalid_request", "no prompt"),
    "http 404": lambda: HTTPException(404),
    "http 405": lambda: HTTPException(405, headers={"Allow": "GET"}),
    "store down": lambda: StoreUnavailable("redis://127.0.0.1:1 refused"),
    "bug": lambda: RuntimeError("a bug"),
}
"""Each kind of exception the map answers, built fresh for each path."""

_KEPT_HEADERS = ("content-type", "content-length", "retry-after", "allow")


def _answer(status: int, headers: httpx.Headers, body: bytes) -> tuple[object, ...]:
    return status, body, {name: headers.get(name) for name in _KEPT_HEADERS}


def _through_respond(state: MockState, exc: Exception) -> tuple[object, ...]:
    async def raising(state: MockState, request: api.ApiRequest) -> Response:
        raise exc

    scope = {"type": "http", "method": "GET", "path": PATH, "headers": []}
    request = api.ApiRequest(scope, {}, body=b"")
    response = asyncio.run(api.respond(state, raising, request))
    headers = httpx.Headers([(k.decode(), v.decode()) for k, v in response.raw_headers])
    return _answer(response.status_code, headers, bytes(response.body))


def _through_the_app(exc: Exception) -> tuple[object, ...]:
    async def endpoint(request: Request) -> Response:
        raise exc

    app = create_app(Settings())
    app.router.routes.append(Route(PATH, endpoint, methods=["GET"]))

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(PATH)

    response = asyncio.run(get())
    return _answer(response.status_code, response.headers, response.content)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_engine_and_the_app_answer_an_exception_alike(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    state: MockState = create_app(Settings()).state.mock
    with caplog.at_level(logging.WARNING, logger="ipmock"):
        engine = _through_respond(state, CASES[case]())
        engine_log = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
        caplog.clear()
        app = _through_the_app(CASES[case]())
        app_log = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert engine == app
    assert engine_log == app_log


def test_the_map_answers_each_kind_as_documented() -> None:
    scope = {"type": "http", "method": "DELETE", "path": PATH, "headers": []}
    answers = {case: answer_for(make(), scope) for case, make in CASES.items()}
    assert {case: answer.status_code for case, answer in answers.items()} == {
        "refusal": 429,
        "invalid": 400,
        "http 404": 404,
        "http 405": 405,
        "store down": 503,
        "bug": 500,
    }
    assert b'"code":"busy"' in answers["store down"].body
    assert (b"retry-after", b"1") in answers["store down"].raw_headers
    assert b"method DELETE is not allowed on /raises" in answers["http 405"].body
    assert (b"allow", b"GET") in answers["http 405"].raw_headers
    assert b'"code":"server_error"' in answers["bug"].body


def test_a_deliberate_drop_closes_the_connection_and_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state: MockState = create_app(Settings()).state.mock
    with caplog.at_level(logging.DEBUG, logger="ipmock"), pytest.raises(ConnectionDropped):
        _through_respond(state, ConnectionDropped("on purpose"))
    scope = {"type": "http", "method": "GET", "path": PATH, "headers": []}
    assert answer_for(ConnectionDropped("on purpose"), scope).status_code == 500
    assert caplog.records == []
