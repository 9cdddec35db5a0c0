"""Submits and polls answered in place: on ``ipmock serve``'s protocol's own call, their
answer written straight to the socket, without an ASGI cycle.

A submit or poll runs as soon as its body has arrived (``mock_server.http.protocol``
calls ``InPlace.answer``), and its answer is taken in place only when it is a whole body
ready at once: that skips the task, messages and middleware an ASGI cycle spends on every
request (about half of the mock's time per request, in ``bench.peers``). The same
operations (``mock_server.api``), error handling and journal entries serve both ways.
When the operation has to wait (a delay fault, a slow generator) or answers with a stream
or a socket fault, the rest of the request goes on in an ASGI cycle (``InPlace.answer``
returns the app that finishes it), with its flow control and its error handling.

Only the in-process state (``--store memory``, the mock backend) is answered in place:
code that runs there has no asyncio task of its own (the engine's no-task rule, stated in
``mock_server.api``), and a shared store's client needs one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Coroutine
from typing import Any, NamedTuple

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mock_server import api
from mock_server.errors import ApiError, JsonAnswer
from mock_server.http.app import HotRoutes
from mock_server.http.cors import CorsMiddleware, cors_for
from mock_server.http.cycle import STATUS_LINES
from mock_server.http.journal import Exchange, JournalMiddleware
from mock_server.state import MockState
from mock_server.state.memory import MemoryJournal

NOT_HTTP = ApiError(
    400,
    "invalid_request",
    "the request is not valid HTTP/1.1 (its request line, a header, Content-Length or "
    "chunked framing); the connection is closed",
).response()
"""The answer to bytes that are not HTTP/1.1: the API's JSON FAILURE."""


class Routed(NamedTuple):
    """A request being answered in place: its operation, scope and headers."""

    operation: api.Operation
    scope: dict[str, Any]
    headers: dict[str, str]


class InPlace:
    """Answers submits and polls in place with one app's in-process state."""

    def __init__(self, state: MockState, journal: MemoryJournal) -> None:
        self._state, self._journal = state, journal
        self.max_body_bytes = state.settings.max_body_bytes
        self._cors = cors_for(state.settings.cors_origins)

    @classmethod
    def for_app(cls, app: Any) -> InPlace | None:
        """The in-place answers for an app whose state allows them (state in this process,
        its journal included, and the mock's images), else None. The app's stack is built
        at its lifespan's start: ask after it."""
        hot = getattr(app, "hot_routes", None)
        if not isinstance(hot, HotRoutes):
            return None
        state, settings = hot.state, hot.state.settings
        journal = state.journal
        if settings.store != "memory" or settings.backend != "mock":
            return None
        return cls(state, journal) if isinstance(journal, MemoryJournal) else None

    def route(self, method: str, url: bytes, scope: dict[str, Any]) -> Routed | None:
        """The submit or status request at ``url``, ``scope`` completed for it; None when
        it is no such request, or one the ASGI cycle parses (a query string, an escape)."""
        try:
            path = url.decode("ascii")
        except UnicodeDecodeError:
            return None
        hot = api.route(method, path)
        if hot is None:
            return None
        operation, job_id = hot
        if "?" in job_id or "%" in job_id:
            return None
        scope["method"], scope["path"], scope["raw_path"] = method, path, url
        scope["path_params"] = {"id": job_id} if job_id else {}
        return Routed(operation, scope, api.header_dict(scope["headers"]))

    def answer(
        self, routed: Routed, body: bytes, *, keep_alive: bool, date_line: bytes
    ) -> bytes | ASGIApp:
        """The whole answer's bytes, journaled; or, when it is not ready at once (or is no
        whole JSON answer), the ASGI app that finishes it in a cycle."""
        operation, scope, headers = routed
        started, at = time.perf_counter(), self._state.clock.now()
        answering = api.respond(self._state, operation, api.ApiRequest(scope, headers, body=body))
        try:
            awaited = answering.send(None)
        except StopIteration as done:
            response: Response = done.value
            if type(response) is not JsonAnswer:  # a fault's answer: it streams or waits
                return self._in_cycle(_ready(response))
        except Exception as exc:  # a deliberate drop: the cycle closes the connection
            return self._in_cycle(_raise(exc))
        else:
            return self._in_cycle(_resume(answering, awaited))
        cors = b"" if self._cors is None else self._cors.api_bytes(headers.get("origin"))
        head = b"".join([b"%s: %s\r\n" % pair for pair in response.raw_headers]) + cors
        if not keep_alive:
            head += b"connection: close\r\n"
        answer = b"%s%s%s\r\n%s" % (
            STATUS_LINES[response.status_code],
            date_line,
            head,
            response.body,
        )
        exchange = Exchange.of(
            scope,
            body,
            response.status_code,
            response.raw_headers,
            bytes(response.body),
            at=at,
            duration_s=time.perf_counter() - started,
        )
        self._journal.keep(exchange)
        return answer

    def _in_cycle(self, response: Awaitable[Response]) -> ASGIApp:
        """The app that finishes the answer in an ASGI cycle, journal and CORS included."""
        app: Any = JournalMiddleware(_Finish(response), self._journal, self._state.clock)
        return app if self._cors is None else CorsMiddleware(app, self._cors)


class _Finish:
    """An ASGI app that sends a response made before the cycle began, or being made."""

    def __init__(self, response: Awaitable[Response]) -> None:
        self.response = response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # the body, already read: for the journal's record
        response = await self.response
        await response(scope, receive, send)


async def _ready(response: Response) -> Response:
    return response


async def _raise(exc: Exception) -> Response:
    raise exc


async def _resume(coroutine: Coroutine[Any, Any, Any], awaited: Any) -> Any:
    """Go on with a coroutine that was started by hand and has just yielded ``awaited``
    (what it waits on), as an asyncio task would have: resume it each time what it waits
    on is done, and pass a cancellation on to it."""
    while True:
        cancelled = False
        try:
            await _done(awaited)
        except asyncio.CancelledError:
            cancelled = True
            if awaited is not None:
                awaited.cancel()
        try:
            if cancelled:
                awaited = coroutine.throw(asyncio.CancelledError())
            else:
                awaited = coroutine.send(None)
        except StopIteration as done:
            return done.value


async def _done(awaited: asyncio.Future[Any] | None) -> None:
    """Wait until what a coroutine yielded is done, whatever its outcome (the coroutine
    reads that itself when resumed); a bare yield (None) asks for one turn of the loop."""
    if awaited is None:
        await asyncio.sleep(0)
        return
    if not awaited.done():
        waiter = asyncio.get_running_loop().create_future()
        awaited.add_done_callback(lambda _: None if waiter.done() else waiter.set_result(None))
        await waiter
