"""One HTTP request as an ASGI ``http`` cycle on ipmock's own protocol
(``mock_server.http.protocol``): the app's ``receive`` and ``send``, the answer's framing
on the socket, and what a failing app gets (a 500, or a closed connection).
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message

from mock_server.faults import ConnectionDropped

log = logging.getLogger("ipmock.server")
access_log = logging.getLogger("ipmock.access")

HIGH_WATER_BYTES = 65536
"""Reading pauses while a request's unread body is larger than this."""


def _status_line(code: int) -> bytes:
    try:
        phrase = http.HTTPStatus(code).phrase.encode("ascii")
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (code, phrase)


STATUS_LINES = {code: _status_line(code) for code in range(100, 600)}
"""``HTTP/1.1 200 OK\\r\\n`` and the rest, made once."""

_BAD_NAME = re.compile(b'[\x00-\x1f\x7f()<>@,;:\\[\\]={} \t\\\\"]')
_BAD_VALUE = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_SERVER_ERROR = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", b"21"),
    (b"connection", b"close"),
]


class FlowControl:
    """Reading and writing paused and resumed for one connection: reading while a body
    waits unread, writing while the client does not read (``drain`` waits for that)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.read_paused = self.write_paused = False
        self._writable = asyncio.Event()
        self._writable.set()

    async def drain(self) -> None:
        await self._writable.wait()

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self._transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._writable.clear()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._writable.set()


class RequestCycle:
    """One request's ASGI cycle: its body as the protocol parses it (``body``,
    ``more_body``, ``arrived``), the app's answer written as it is sent, and
    ``on_complete`` called once the answer is whole."""

    def __init__(
        self,
        scope: dict[str, Any],
        transport: asyncio.Transport,
        flow: FlowControl,
        date_line: Callable[[], bytes],
        *,
        keep_alive: bool,
        expect_100_continue: bool,
        on_complete: Callable[[], None],
    ) -> None:
        self.scope, self.transport, self.flow = scope, transport, flow
        self._date_line, self._on_complete = date_line, on_complete
        self.keep_alive = keep_alive
        self._waiting_for_100_continue = expect_100_continue
        self.disconnected = False
        self.body = bytearray()
        self.more_body = True
        self.arrived = asyncio.Event()
        """Set when body bytes arrive, the body ends, or the client leaves."""
        self.response_started = self.response_complete = False
        self._chunked: bool | None = None
        self._length_left = 0

    async def run(self, app: ASGIApp) -> None:
        """Run the app on this request; what it leaves undone is answered or closed."""
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if not isinstance(exc, ConnectionDropped):  # a deliberate drop is no error
                log.error("exception in the ASGI app", exc_info=exc)
            if self.response_started or isinstance(exc, ConnectionDropped):
                self.transport.close()
            else:
                await self._send_500()
            if not isinstance(exc, Exception):
                raise  # a cancellation goes on
        else:
            if not self.response_started and not self.disconnected:
                log.error("the ASGI app returned without starting an answer")
                await self._send_500()
            elif not self.response_complete and not self.disconnected:
                log.error("the ASGI app returned without finishing its answer")
                self.transport.close()
        finally:
            self._on_complete = _nothing

    async def _send_500(self) -> None:
        await self.send({"type": "http.response.start", "status": 500, "headers": _SERVER_ERROR})
        await self.send({"type": "http.response.body", "body": b"Internal Server Error"})

    async def receive(self) -> Message:
        if self._waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(_CONTINUE)
            self._waiting_for_100_continue = False
        if not self.disconnected and not self.response_complete:
            self.flow.resume_reading()
            await self.arrived.wait()
            self.arrived.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        body, self.body = bytes(self.body), bytearray()
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    async def send(self, message: Message) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got {message['type']!r}")
            self._start(message)
        elif not self.response_complete:
            if message["type"] != "http.response.body":
                raise RuntimeError(f"expected 'http.response.body', got {message['type']!r}")
            self._body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"{message['type']!r} sent after the answer was complete")

    def _start(self, message: Message) -> None:
        self.response_started = True
        self._waiting_for_100_continue = False
        status: int = message["status"]
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                '%s - "%s %s HTTP/%s" %d',
                _client(self.scope),
                self.scope["method"],
                _target(self.scope),
                self.scope["http_version"],
                status,
            )
        head = [STATUS_LINES[status], self._date_line()]
        closes = False
        for name, value in message.get("headers", ()):
            if _BAD_NAME.search(name):
                raise RuntimeError("an invalid HTTP header name")
            if _BAD_VALUE.search(value):
                raise RuntimeError("an invalid HTTP header value")
            name = name.lower()
            if name == b"content-length" and self._chunked is None:
                self._length_left, self._chunked = int(value.decode()), False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self._length_left, self._chunked = 0, True
            elif name == b"connection" and b"close" in _tokens(value):
                self.keep_alive, closes = False, True
            head += (name, b": ", value, b"\r\n")
        if not self.keep_alive and not closes:
            head.append(b"connection: close\r\n")
        if self._chunked is None and self.scope["method"] != "HEAD" and status not in (204, 304):
            self._chunked = True
            head.append(b"transfer-encoding: chunked\r\n")
        head.append(b"\r\n")
        self.transport.write(b"".join(head))

    def _body(self, body: bytes, more_body: bool) -> None:
        if self.scope["method"] == "HEAD":
            self._length_left = 0
        elif self._chunked:
            framed = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
            self.transport.write(framed if more_body else framed + b"0\r\n\r\n")
        else:
            if len(body) > self._length_left:
                raise RuntimeError("the answer's body is longer than its Content-Length")
            self._length_left -= len(body)
            self.transport.write(body)
        if more_body:
            return
        if self._length_left != 0:
            raise RuntimeError("the answer's body is shorter than its Content-Length")
        self.response_complete = True
        self.arrived.set()
        if not self.keep_alive:
            self.transport.close()
        self._on_complete()


def _tokens(value: bytes) -> list[bytes]:
    return [token.strip().lower() for token in value.split(b",")]


def _client(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return "-" if not client else f"{client[0]}:{client[1]}"


def _target(scope: dict[str, Any]) -> str:
    """The request's path and query as sent (escapes kept: a log line stays one line)."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    if query := scope.get("query_string"):
        raw += b"?" + query
    return raw.decode("ascii", "backslashreplace")


def _nothing() -> None:
    pass
