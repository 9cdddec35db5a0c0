"""``ipmock serve``'s HTTP/1.1 protocol: an asyncio protocol on httptools' public parser
that answers submits and polls in place (``mock_server.http.inplace``) and runs every
other request as an ASGI cycle of the app (``mock_server.http.cycle``).

Per connection it keeps HTTP/1.1's rules: keep-alive with an idle timeout, pipelined
requests answered in order (one at a time; reading pauses while others wait), request
bodies streamed to the app in pieces (reading pauses while one piece waits unread),
``Expect: 100-continue``, writing paused while the client does not read, the API's JSON
400 to bytes that are not HTTP/1.1, and ``X-Forwarded-Proto``/``-For`` from a proxy on
127.0.0.1. Every HTTP scope carries the connection's transport for the socket faults
(``scope["extensions"]["ipmock.connection"]["transport"]``, ``CONNECTION_EXTENSION``).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections import deque
from email.utils import formatdate
from typing import Any, cast

import httptools
from starlette.types import ASGIApp

from mock_server.fault_answers import CONNECTION_EXTENSION
from mock_server.http.cycle import HIGH_WATER_BYTES, STATUS_LINES, FlowControl, RequestCycle
from mock_server.http.forwarded import apply_proxy_headers
from mock_server.http.inplace import NOT_HTTP, InPlace, Routed

KEEP_ALIVE_S = 5.0
"""How long an idle kept-alive connection stays open (uvicorn's default too)."""

_HEADERS_TO_CHECK = frozenset({b"expect", b"content-length", b"transfer-encoding"})
"""Besides ``x-forwarded-*``: the headers that may keep a request off the in-place path."""
_NOT_HTTP = b"%sconnection: close\r\n\r\n%s" % (
    b"".join(b"%s: %s\r\n" % pair for pair in NOT_HTTP.raw_headers),
    NOT_HTTP.body,
)
"""The 400's bytes after its status and date lines."""


class ServerState:
    """What every connection of one server shares: the app, its lifespan state, the
    in-place answers (None: every request in a cycle), the open connections, the running
    cycles, and the ``date`` header line (``tick`` renews it)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        app_state: dict[str, Any] | None = None,
        in_place: InPlace | None = None,
        keep_alive_s: float = KEEP_ALIVE_S,
    ) -> None:
        self.app, self.in_place, self.keep_alive_s = app, in_place, keep_alive_s
        self.app_state = {} if app_state is None else app_state
        self.connections: set[HttpProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.date_line = b""
        self.tick()

    def tick(self) -> None:
        """Renew the ``date`` header line (the server does, each second)."""
        self.date_line = b"date: %s\r\n" % formatdate(usegmt=True).encode("ascii")

    def current_date_line(self) -> bytes:
        return self.date_line


class HttpProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection (the module's docstring says what it keeps)."""

    def __init__(self, server: ServerState) -> None:
        self._server = server
        self._in_place = server.in_place
        self._parser = httptools.HttpRequestParser(self)
        # Answer a request that says Connection: close even when more bytes follow it.
        self._parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._pipeline: deque[tuple[RequestCycle, ASGIApp]] = deque()
        self._active: RequestCycle | None = None  # the cycle answering now
        self._parsing: RequestCycle | None = None  # the last cycle made: its body comes in
        self._routed: Routed | None = None  # a request being answered in place
        self._body_parts: list[bytes] = []
        self._keep_alive = True
        self._shutting_down = self._not_http = False
        self._idle_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        # the request being parsed
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._expect_100 = self._usual_only = self._forwarded = False

    # -- the connection ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport = transport = cast(asyncio.Transport, transport)  # uvloop's too
        self._flow = FlowControl(transport)
        self._server.connections.add(self)
        self._scope_base: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "server": _address(transport.get_extra_info("sockname")),
            "client": _address(transport.get_extra_info("peername")),
            "scheme": "http",
            "root_path": "",
            "query_string": b"",
            "extensions": {CONNECTION_EXTENSION: {"transport": transport}},
        }

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        for cycle in (self._active, self._parsing, *(c for c, _ in self._pipeline)):
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.arrived.set()
        self._pipeline.clear()
        self._flow.resume_writing()  # a send waiting to write goes on, and writes nothing
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def eof_received(self) -> None:
        """The client will send no more: the transport closes (as uvicorn's does)."""

    def pause_writing(self) -> None:
        self._flow.pause_writing()

    def resume_writing(self) -> None:
        self._flow.resume_writing()

    def data_received(self, data: bytes) -> None:
        if self._not_http or self._transport.is_closing():
            return
        self._idle_since = None  # not idle: the keep-alive timer leaves it open
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # answered as plain HTTP, then closed (``on_headers_complete``)
        except httptools.HttpParserError:
            self._on_not_http()

    def _on_not_http(self) -> None:
        """Bytes that are not HTTP/1.1: nothing after them can be read. The 400 follows
        the answers to the whole requests before them; the request they broke is dropped
        (or, when its answer has begun, the connection closed)."""
        self._not_http = True
        self._flow.pause_reading()
        self._routed = None
        while self._pipeline and self._pipeline[-1][0].more_body:
            self._pipeline.pop()  # queued, its body broken: it will not be answered
        active = self._active
        if active is None or (active.more_body and not active.response_started):
            self._refuse_not_http()
        elif active.more_body:
            self._transport.close()  # its answer has begun: no 400 can follow it
        # else: the 400 follows the answers to the requests before those bytes

    def _refuse_not_http(self) -> None:
        self._transport.write(STATUS_LINES[400] + self._server.date_line + _NOT_HTTP)
        self._transport.close()

    def abort(self) -> None:
        """Close at once, whatever is being answered (a stop that waited long enough)."""
        self._transport.abort()

    def shutdown(self) -> None:
        """Close when idle; else after the answer being made (the server is stopping)."""
        self._shutting_down, self._keep_alive = True, False
        if self._active is not None:
            self._active.keep_alive = False
        elif self._routed is None:
            self._transport.close()

    # -- keep-alive: one timer per idle spell, not one per request ---------------------
    # The timer is armed once; when it fires, it closes the connection only if it has
    # been idle for the whole timeout since the last answer, else it waits out the rest.

    def _on_keep_alive_timer(self) -> None:
        self._timer = None
        if self._idle_since is None or self._transport.is_closing():
            return  # busy: the next answer arms the timer again
        idle = self._loop.time() - self._idle_since
        if idle >= self._server.keep_alive_s:
            self._transport.close()
        else:
            self._timer = self._loop.call_later(
                self._server.keep_alive_s - idle, self._on_keep_alive_timer
            )

    def _on_response_complete(self) -> None:
        self._active = None
        if self._transport.is_closing():
            return
        if not self._not_http:
            self._flow.resume_reading()
        if self._pipeline:
            cycle, app = self._pipeline.popleft()
            self._run(cycle, app)
        elif self._not_http:
            self._refuse_not_http()
        elif self._shutting_down:
            self._transport.close()
        else:
            self._idle_since = self._loop.time()
            if self._timer is None:
                self._timer = self._loop.call_later(
                    self._server.keep_alive_s, self._on_keep_alive_timer
                )

    # -- the parser's callbacks (httptools.HttpRequestParser) ---------------------------
    # They run once per request: a step stays here only while it costs less than the
    # ASGI cycle's way of doing it (the figures: bench/README.md, "What changed").

    def on_message_begin(self) -> None:
        self._url, self._headers = b"", []
        self._expect_100 = self._usual_only = self._forwarded = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        value = value.rstrip(b" \t")  # the parser keeps trailing whitespace
        self._headers.append((name, value))
        if name in _HEADERS_TO_CHECK or name.startswith(b"x-forwarded-"):
            self._check_header(name, value)

    def _check_header(self, name: bytes, value: bytes) -> None:
        """Note a header that only the ASGI cycle handles, or that may send it there."""
        if name == b"expect":
            if value.lower() == b"100-continue":
                self._expect_100 = self._usual_only = True
        elif name == b"content-length":
            limit = self._in_place.max_body_bytes if self._in_place is not None else 0
            if not value.isdigit() or int(value) > limit:
                self._usual_only = True  # the cycle refuses it while it streams in
        else:  # chunked bodies, and the proxy's headers
            self._usual_only = True
            self._forwarded = self._forwarded or name.startswith(b"x-forwarded-")

    def on_headers_complete(self) -> None:
        parser = self._parser
        method = parser.get_method().decode("ascii")
        http_version = parser.get_http_version()
        keep_alive = (
            http_version != "1.0"
            and parser.should_keep_alive()
            and not parser.should_upgrade()  # an upgrade is not served: answered, closed
            and not self._shutting_down
        )
        scope = self._scope_base.copy()
        scope["http_version"] = http_version
        scope["headers"] = self._headers
        scope["state"] = self._server.app_state.copy()
        if (
            self._in_place is not None
            and not self._usual_only
            and self._active is None  # none before it still being answered
            and not self._flow.write_paused  # the client is not reading: the cycle waits
        ):
            self._routed = self._in_place.route(method, self._url, scope)
            if self._routed is not None:
                self._keep_alive = keep_alive
                return
        self._begin_cycle(method, scope, keep_alive)

    def on_body(self, body: bytes) -> None:
        if self._routed is not None:  # at most max_body_bytes: its Content-Length said so
            self._body_parts.append(body)
            return
        cycle = self._parsing
        if cycle is None or cycle.response_complete:
            return
        cycle.body += body
        if len(cycle.body) > HIGH_WATER_BYTES:
            self._flow.pause_reading()
        cycle.arrived.set()

    def on_message_complete(self) -> None:
        if self._routed is not None:
            routed, self._routed = self._routed, None
            parts, self._body_parts = self._body_parts, []
            self._answer_in_place(routed, parts[0] if len(parts) == 1 else b"".join(parts))
            return
        cycle = self._parsing
        if cycle is not None and not cycle.response_complete:
            cycle.more_body = False
            cycle.arrived.set()

    # -- answering ---------------------------------------------------------------------

    def _begin_cycle(self, method: str, scope: dict[str, Any], keep_alive: bool) -> None:
        """Complete the scope (path, query string, a proxy's headers) and run the app on
        the request, or queue it behind the one being answered."""
        url = httptools.parse_url(self._url)
        raw_path: bytes = url.path
        path = raw_path.decode("ascii")
        scope["method"] = method
        scope["path"] = urllib.parse.unquote(path) if "%" in path else path
        scope["raw_path"] = raw_path
        scope["query_string"] = url.query or b""
        if self._forwarded:
            apply_proxy_headers(scope)
        cycle = RequestCycle(
            scope,
            self._transport,
            self._flow,
            self._server.current_date_line,
            keep_alive=keep_alive,
            expect_100_continue=self._expect_100,
            on_complete=self._on_response_complete,
        )
        self._parsing = cycle
        if self._active is None:
            self._run(cycle, self._server.app)
        else:
            self._flow.pause_reading()  # one request at a time; the rest wait in the socket
            self._pipeline.append((cycle, self._server.app))

    def _answer_in_place(self, routed: Routed, body: bytes) -> None:
        assert self._in_place is not None
        keep_alive = self._keep_alive
        answer = self._in_place.answer(
            routed, body, keep_alive=keep_alive, date_line=self._server.date_line
        )
        if isinstance(answer, bytes):
            self._transport.write(answer)
            if not keep_alive:
                self._transport.close()
            self._on_response_complete()
            return
        cycle = RequestCycle(  # the answer waits or streams: a cycle finishes it
            routed.scope,
            self._transport,
            self._flow,
            self._server.current_date_line,
            keep_alive=keep_alive,
            expect_100_continue=False,
            on_complete=self._on_response_complete,
        )
        cycle.body, cycle.more_body = bytearray(body), False
        cycle.arrived.set()  # the whole body is in: the app's receive must not wait for it
        self._parsing = cycle
        self._run(cycle, answer)

    def _run(self, cycle: RequestCycle, app: ASGIApp) -> None:
        self._active = cycle
        tasks = self._server.tasks
        task = self._loop.create_task(cycle.run(app))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def _address(info: Any) -> tuple[str, int] | None:
    """A socket's address as the ASGI scope gives it: (host, port)."""
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None
