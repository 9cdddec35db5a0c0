"""ipmock serve's HTTP protocol: uvicorn's httptools protocol that hands the app each
connection's transport (for socket faults) and answers submits and polls in place.

Answering in place: a submit or poll runs as soon as its body has arrived, on the
protocol's own call, and its answer is written straight to the socket, without the
ASGI task, messages and middleware uvicorn spends on every request (about half of the
mock's time per request, in ``bench/peers.py``). The same endpoints, error handlers and
journal entries serve both ways; the answer is only taken in place when it is a whole
body ready at once. When the endpoint has to wait (a delay fault, a slow generator) or
answers with a stream or a socket fault, the rest of the request goes on in uvicorn's
usual request cycle, with its flow control and its error handling.

Only the in-process state (``--store memory``, the mock backend) is answered in place:
code that runs there has no asyncio task of its own, so nothing on that path may need
one (``asyncio.timeout``, anyio cancel scopes), and a shared store's client does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Coroutine
from typing import Any, cast

import httptools
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from mock_server.app import Endpoint, HotRoutes
from mock_server.faults import CONNECTION_EXTENSION, quiet_drops
from mock_server.journal import Exchange, JournalMiddleware, record_quietly

_Route = tuple[Endpoint, dict[str, str]]
_WHOLE_BODIES = (Response, JSONResponse)
"""Response classes whose answer is the status, headers and ``body`` they hold (their
subclasses, the faults, send something else)."""


class MockHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus:

    - ``scope["extensions"]["ipmock.connection"] = {"transport": <asyncio transport>}`` in
      every HTTP scope: the socket faults (``mock_server.faults``) write raw bytes to it,
      close it or reset it;
    - submits and polls answered in place (the module's docstring says when).

    Each process that uses it (every ``--workers`` process too) also keeps deliberate
    drops out of uvicorn's error log.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        logging.getLogger("uvicorn.error").addFilter(quiet_drops)  # idempotent
        super().connection_made(transport)
        self._hot = _in_place_routes(self.app) if not self.access_log else None
        self._in_place: _Route | None = None
        self._in_place_body = bytearray()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {CONNECTION_EXTENSION: {"transport": self.transport}}

    def on_headers_complete(self) -> None:
        self._in_place = self._route_in_place()
        if self._in_place is None:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._in_place is None:
            super().on_body(body)
        else:  # at most max_body_bytes: the Content-Length said so
            self._in_place_body += body

    def on_message_complete(self) -> None:
        if self._in_place is None:
            super().on_message_complete()
            return
        route, self._in_place = self._in_place, None
        body = bytes(self._in_place_body)
        self._in_place_body.clear()
        self._answer_in_place(route, body)

    def _route_in_place(self) -> _Route | None:
        """The hot route of this request, when it can be answered in place; the scope is
        then completed as uvicorn would have."""
        hot = self._hot
        if (
            hot is None
            or (self.cycle is not None and not self.cycle.response_complete)  # one before
            or self.flow.write_paused  # the client is not reading: uvicorn's cycle waits
            or self.expect_100_continue
            or self.limit_concurrency is not None
            or self.parser.should_upgrade()
        ):
            return None
        limit = hot.state.settings.max_body_bytes
        for name, value in self.headers:
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    return None  # the usual path refuses it while it streams in
            elif name == b"transfer-encoding" or name.startswith(b"x-forwarded-"):
                return None  # chunked bodies, and the proxy headers uvicorn reads
        parsed = httptools.parse_url(self.url)
        raw_path = parsed.path
        if b"%" in raw_path:
            return None
        method = self.parser.get_method().decode("ascii")
        path = self.root_path + raw_path.decode("ascii")
        route = hot.route(method, path)
        if route is None:
            return None
        scope = cast(Scope, self.scope)
        scope["method"] = method
        version = self.parser.get_http_version()
        if version != "1.1":
            scope["http_version"] = version
        scope["path"] = path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = parsed.query or b""
        return route

    def _answer_in_place(self, route: _Route, body: bytes) -> None:
        hot, scope = self._hot, cast(Scope, self.scope)
        assert hot is not None
        endpoint, scope["path_params"] = route
        scope["app"] = hot.starlette
        keep_alive = scope["http_version"] != "1.0" and self.parser.should_keep_alive()
        started, at = time.perf_counter(), hot.state.clock.now()
        answering = hot.respond(endpoint, Request(scope, _ReceiveOnce(body)))
        try:
            awaited = answering.send(None)
        except StopIteration as done:
            response: Response = done.value
            if type(response) not in _WHOLE_BODIES:
                self._answer_in_cycle(_ready(response), body, keep_alive)
                return
            self._write(response, keep_alive)
            exchange = Exchange.of(
                scope, body, response.status_code, response.raw_headers, bytes(response.body),
                at=at, duration_s=time.perf_counter() - started,
            )  # fmt: skip
            self._run(record_quietly(hot.state.journal, exchange))
            self.on_response_complete()
        except Exception as exc:  # a deliberate drop: the cycle closes the connection
            self._answer_in_cycle(_raise(exc), body, keep_alive)
        else:
            self._answer_in_cycle(_resume(answering, awaited), body, keep_alive)

    def _write(self, response: Response, keep_alive: bool) -> None:
        parts = [STATUS_LINE[response.status_code]]
        for name, value in self.server_state.default_headers:
            parts += (name, b": ", value, b"\r\n")
        for name, value in response.raw_headers:
            parts += (name, b": ", value, b"\r\n")
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", bytes(response.body))
        self.transport.write(b"".join(parts))
        if not keep_alive:
            self.transport.close()

    def _answer_in_cycle(
        self, response: Awaitable[Response], body: bytes, keep_alive: bool
    ) -> None:
        """Finish the request in uvicorn's usual cycle (a task), journal included."""
        hot = self._hot
        assert hot is not None
        body_arrived = asyncio.Event()
        body_arrived.set()  # the whole body is in: the cycle's receive must not wait for it
        self.cycle = RequestResponseCycle(
            scope=self.scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=body_arrived,
            expect_100_continue=False,
            keep_alive=keep_alive,
            on_response=self.on_response_complete,
        )
        self.cycle.body, self.cycle.more_body = bytearray(body), False
        finish = JournalMiddleware(_Finish(response), hot.state.journal, hot.state.clock)
        self._start_asgi_task(self.cycle, cast(Any, finish))

    def _run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine in place; what is left when it waits goes on in a task."""
        try:
            awaited = coroutine.send(None)
        except StopIteration:
            return
        task = self.loop.create_task(_resume(coroutine, awaited))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)


def _in_place_routes(app: Any) -> HotRoutes | None:
    """The app's HotRoutes when its requests may be answered in place, else None."""
    while isinstance(app, ProxyHeadersMiddleware):
        app = app.app
    hot = getattr(app, "hot_routes", None)  # built with the app's stack, at the lifespan
    if not isinstance(hot, HotRoutes):
        return None
    settings = hot.state.settings
    return hot if settings.store == "memory" and settings.backend == "mock" else None


class _ReceiveOnce:
    """An ASGI receive that gives the whole body, then says the client left."""

    def __init__(self, body: bytes) -> None:
        self.body: bytes | None = body

    async def __call__(self) -> Message:
        body, self.body = self.body, None
        if body is None:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": body, "more_body": False}


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
    reads that itself); a bare yield (None) asks for one turn of the loop."""
    if awaited is None:
        await asyncio.sleep(0)
        return
    awaited._asyncio_future_blocking = False
    if not awaited.done():
        waiter = asyncio.get_running_loop().create_future()
        awaited.add_done_callback(lambda _: None if waiter.done() else waiter.set_result(None))
        await waiter
