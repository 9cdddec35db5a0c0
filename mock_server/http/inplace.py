"""ipmock serve's HTTP protocol: uvicorn's httptools protocol that hands the app each
connection's transport (for socket faults) and answers submits and polls in place.

Answering in place: a submit or poll runs as soon as its body has arrived, on the
protocol's own call, and its answer is written straight to the socket, without the
ASGI task, messages and middleware uvicorn spends on every request (about half of the
mock's time per request, in ``bench.peers``). The same operations
(``mock_server.api``), error handling and journal entries serve both ways; the answer is
only taken in place when it is a whole body ready at once. When the operation has to
wait (a delay fault, a slow generator) or answers with a stream or a socket fault, the
rest of the request goes on in uvicorn's usual request cycle, with its flow control and
its error handling.

Only the in-process state (``--store memory``, the mock backend) is answered in place:
code that runs there has no asyncio task of its own (the engine's no-task rule, stated
in ``mock_server.api``), and a shared store's client needs one.

It subclasses uvicorn's private httptools protocol: pyproject.toml pins uvicorn to the
minor it was written for, and ``ipmock serve`` checks the installed one first
(``mock_server.http.uvicorn_check``), falling back to uvicorn's own protocol on another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Coroutine
from typing import Any, NamedTuple, cast

from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from mock_server import api
from mock_server.errors import ApiError, JsonAnswer
from mock_server.http.app import HotRoutes
from mock_server.http.cors import CorsMiddleware, cors_for
from mock_server.http.journal import Exchange, JournalMiddleware
from mock_server.http.socket_faults import CONNECTION_EXTENSION, quiet_drops
from mock_server.state import MockState
from mock_server.state.memory import MemoryJournal


class _InPlace(NamedTuple):
    """A request being answered in place: its operation and its headers."""

    operation: api.Operation
    headers: dict[str, str]


_NOT_HTTP = ApiError(
    400,
    "invalid_request",
    "the request is not valid HTTP/1.1 (its request line, a header, Content-Length or "
    "chunked framing); the connection is closed",
).response()

_HEADERS_TO_CHECK = frozenset({b"expect", b"content-length", b"transfer-encoding"})
"""Besides ``x-forwarded-*``: the headers that may keep a request off the in-place path."""


class MockHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus:

    - ``scope["extensions"]["ipmock.connection"] = {"transport": <asyncio transport>}`` in
      every HTTP scope: the socket faults (``socket_faults``) write raw bytes to it,
      close it or reset it;
    - submits and polls answered in place (the module's docstring says when).

    Each process that uses it (every ``--workers`` process too) also keeps deliberate
    drops out of uvicorn's error log.
    """

    def send_400_response(self, msg: str) -> None:
        """What uvicorn answers bytes that are not HTTP/1.1 (a bad request line, header,
        Content-Length or chunk size), as the API's JSON FAILURE rather than plain text;
        the connection closes, since nothing after such bytes can be read."""
        self._write(_NOT_HTTP, keep_alive=False)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        logging.getLogger("uvicorn.error").addFilter(quiet_drops)  # idempotent
        super().connection_made(transport)
        # uvicorn's access log and its concurrency limit live in its usual cycle
        usual_only = self.access_log or self.limit_concurrency is not None
        self._state = None if usual_only else _in_place_state(self.app)
        self._extensions: Any = {CONNECTION_EXTENSION: {"transport": transport}}
        self._in_place: _InPlace | None = None
        self._body_parts: list[bytes] = []
        self._date_headers: tuple[list[tuple[bytes, bytes]], bytes] = ([], b"")
        self._idle_since: float | None = None
        self._usual_only = False
        if self._state is not None:
            self._journal = cast(MemoryJournal, self._state.journal)  # as _in_place_state checked
            self._max_body_bytes = self._state.settings.max_body_bytes
            self._cors = cors_for(self._state.settings.cors_origins)  # built once per server
        self._raw_root_path = self.root_path.encode("ascii")
        self._scope_base = {
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "root_path": self.root_path,
            "query_string": b"",
            "extensions": self._extensions,
        }

    # -- keep-alive: one timer per idle spell, not one per request ----------------------
    # uvicorn cancels its keep-alive timer when data arrives and arms a new one after
    # each answer (about 7 us a request, measured in process). Here the timer is
    # armed once; when it fires, it closes the connection only if it has been idle for
    # the whole timeout since the last answer, and otherwise waits out the rest.

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None  # data arrived, or the connection is going: not idle

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def timeout_keep_alive_handler(self) -> None:
        self.timeout_keep_alive_task = None
        if self._idle_since is None or self.transport.is_closing():
            return  # busy: the next answer arms the timer again
        idle = self.loop.time() - self._idle_since
        if idle >= self.timeout_keep_alive:
            self.transport.close()
        else:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive - idle, self.timeout_keep_alive_handler
            )

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        super().connection_lost(exc)

    # -- requests --------------------------------------------------------------------
    # The in-place path runs once per request: a step stays here only while it costs
    # less than uvicorn's own way of doing it (the figures: bench/README.md, "What changed").

    def on_message_begin(self) -> None:
        # What uvicorn's on_url and on_header fill; its scope waits for on_headers_complete.
        self.url, self.headers, self.expect_100_continue = b"", [], False
        self._usual_only = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        self.headers.append((name, value))
        if name in _HEADERS_TO_CHECK or name.startswith(b"x-forwarded-"):
            self._check_header(name, value)

    def _check_header(self, name: bytes, value: bytes) -> None:
        """Note a header that uvicorn reads, or that only its usual path handles."""
        if name == b"expect":
            if value.lower() == b"100-continue":  # as uvicorn reads it
                self.expect_100_continue = self._usual_only = True
        elif name == b"content-length" and self._state is not None:
            if not value.isdigit() or int(value) > self._max_body_bytes:
                self._usual_only = True  # the usual path refuses it while it streams in
        else:  # chunked bodies, and the proxy headers uvicorn reads
            self._usual_only = True

    def _begin_in_uvicorn(self) -> None:
        """Make uvicorn's scope for the request, as its on_message_begin would have."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.expect_100_continue = url, expect
        self.headers = self.scope["headers"] = headers
        self.scope["extensions"] = self._extensions

    def on_headers_complete(self) -> None:
        self._in_place = None if self._usual_only else self._route_in_place()
        if self._in_place is None:
            self._begin_in_uvicorn()
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._in_place is None:
            super().on_body(body)
        else:  # at most max_body_bytes: the Content-Length said so
            self._body_parts.append(body)

    def on_message_complete(self) -> None:
        if self._in_place is None:
            super().on_message_complete()
            return
        in_place, self._in_place = self._in_place, None
        parts, self._body_parts = self._body_parts, []
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        self._answer_in_place(in_place.operation, in_place.headers, body)

    def _route_in_place(self) -> _InPlace | None:
        """A submit or a status request that can be answered in place: its operation and
        headers, the scope completed as uvicorn would have; else None."""
        if (
            self._state is None
            or (self.cycle is not None and not self.cycle.response_complete)  # one before
            or self.flow.write_paused  # the client is not reading: uvicorn's cycle waits
            or self.parser.should_upgrade()
        ):
            return None
        url = self.url
        try:
            path = self.root_path + url.decode("ascii")
        except UnicodeDecodeError:
            return None
        method = self.parser.get_method().decode("ascii")
        hot = api.route(method, path)
        if hot is None:
            return None
        operation, job_id = hot
        if "?" in job_id or "%" in job_id:  # a query string, an escaped id: uvicorn parses
            return None
        scope: Any = self._scope_base.copy()
        scope["http_version"] = self.parser.get_http_version()
        scope["headers"] = self.headers
        scope["state"] = self.app_state.copy()
        scope["method"] = method
        scope["path"] = path
        scope["raw_path"] = self._raw_root_path + url
        scope["path_params"] = {"id": job_id} if job_id else {}
        self.scope = scope
        return _InPlace(operation, api.header_dict(self.headers))

    def _answer_in_place(
        self, operation: api.Operation, headers: dict[str, str], body: bytes
    ) -> None:
        state, scope = self._state, cast(Scope, self.scope)
        assert state is not None
        keep_alive = self.parser.should_keep_alive() and scope["http_version"] != "1.0"
        started, at = time.perf_counter(), state.clock.now()
        answering = api.respond(state, operation, api.ApiRequest(scope, headers, body=body))
        try:
            awaited = answering.send(None)
        except StopIteration as done:
            response: Response = done.value
            if type(response) is not JsonAnswer:  # a fault's answer: it streams or waits
                self._answer_in_cycle(_ready(response), body, keep_alive)
                return
            cors = b"" if self._cors is None else self._cors.api_bytes(headers.get("origin"))
            self._write(response, keep_alive, cors)
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
            self.on_response_complete()
        except Exception as exc:  # a deliberate drop: the cycle closes the connection
            self._answer_in_cycle(_raise(exc), body, keep_alive)
        else:
            self._answer_in_cycle(_resume(answering, awaited), body, keep_alive)

    def _write(self, response: Response, keep_alive: bool, cors: bytes = b"") -> None:
        """Write an answer; ``cors``: its CORS header lines, built once (``Cors``)."""
        default = self.server_state.default_headers  # a new list each second (the date)
        if default is not self._date_headers[0]:
            encoded = b"".join(b"%s: %s\r\n" % pair for pair in default)
            self._date_headers = (default, encoded)
        head = b"".join([b"%s: %s\r\n" % pair for pair in response.raw_headers]) + cors
        if not keep_alive:
            head += b"connection: close\r\n"
        status = STATUS_LINE[response.status_code]
        self.transport.write(b"%s%s%s\r\n%s" % (status, self._date_headers[1], head, response.body))
        if not keep_alive:
            self.transport.close()

    def _answer_in_cycle(
        self, response: Awaitable[Response], body: bytes, keep_alive: bool
    ) -> None:
        """Finish the request in uvicorn's usual cycle (a task), journal included."""
        state = self._state
        assert state is not None
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
        finish: Any = JournalMiddleware(_Finish(response), state.journal, state.clock)
        if self._cors is not None:  # as the app's own stack adds them
            finish = CorsMiddleware(finish, self._cors)
        self._start_asgi_task(self.cycle, finish)


def _in_place_state(app: Any) -> MockState | None:
    """The app's state when its requests may be answered in place (state in this
    process, its journal included, and the mock's images), else None."""
    while isinstance(app, ProxyHeadersMiddleware):
        app = app.app
    hot = getattr(app, "hot_routes", None)  # built with the app's stack, at the lifespan
    if not isinstance(hot, HotRoutes):
        return None
    state, settings = hot.state, hot.state.settings
    in_process = settings.store == "memory" and isinstance(state.journal, MemoryJournal)
    return state if in_process and settings.backend == "mock" else None


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
