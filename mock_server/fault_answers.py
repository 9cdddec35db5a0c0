"""How a faulted request is answered (a submit, a status request, a download): HTTP errors,
late or slow answers, broken sockets. The fault's data (``Fault``, ``FaultMix``, the
kinds) is ``mock_server.faults``; this is how it is delivered, down to the socket (the
connection's transport reaches the app through ``CONNECTION_EXTENSION``)."""

from __future__ import annotations

import contextlib
import random
import socket
import struct
from dataclasses import replace
from typing import Any, Protocol

import anyio
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from mock_server.clock import Clock
from mock_server.contract import PNG_SIGNATURE
from mock_server.errors import ApiError
from mock_server.faults import (
    FAULT_SCOPE_KEY,
    SOCKET_FAULT_KINDS,
    ConnectionDropped,
    Fault,
    FaultKind,
)
from mock_server.scenarios import REFUSALS

CONNECTION_EXTENSION = "ipmock.connection"
"""The ASGI scope extension (``scope["extensions"][...]["transport"]``) that carries the
raw asyncio transport; ``ipmock serve``'s protocol (``mock_server.http.protocol``) puts it
there."""

DRIBBLE_PIECE_BYTES = 8
"""A dribbled answer is sent this many bytes at a time."""
_DISCONNECT_WAIT_S = 10.0


class RawTransport(Protocol):
    """The part of an asyncio (or uvloop) transport a socket fault uses."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


class DroppedResponse(Response):
    """Starts an answer, sends part of its body, then breaks off: part of a JSON answer,
    or of a PNG for a download."""

    def __init__(self, image: bool = False) -> None:
        if image:
            super().__init__(PNG_SIGNATURE + b"\x00\x00\x00\rIHDR", media_type="image/png")
            self.headers["content-length"] = "4096"
        else:
            super().__init__(b'{"status": "PEND', media_type="application/json")
            self.headers["content-length"] = "64"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": True})
        raise ConnectionDropped("connection dropped on purpose (scenario fault)")


_MALFORMED_CHUNKED = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: application/json\r\n"
    b"transfer-encoding: chunked\r\n"
    b"\r\n"
    b'14\r\n{"status": "PENDING"\r\n'  # a well-formed first chunk (0x14 = 20 bytes) ...
    b"zz;this-is-not-a-size\r\n"  # ... then a chunk size line that is not hex
    b"}\r\n"
)


class SocketFaultResponse(Response):
    """No HTTP answer: writes raw bytes and closes, or resets, the client's connection.

    It needs the transport ``ipmock serve``'s protocol puts in the scope;
    without one (in process, another server) it is a DroppedResponse instead.
    """

    def __init__(self, kind: FaultKind, rng: random.Random, *, image: bool = False) -> None:
        super().__init__()
        self.kind, self.image = kind, image
        self.payload = b""
        if kind == "malformed-chunk":
            self.payload = _MALFORMED_CHUNKED
        elif kind == "garbage":
            self.payload = rng.randbytes(rng.randint(16, 512))
            if self.payload.startswith(b"HTTP/"):  # vanishingly rare; never a status line
                self.payload = b"\x00" + self.payload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = _raw_transport(scope)
        if transport is None:
            await DroppedResponse(self.image)(scope, receive, send)
            return
        if self.kind == "reset":
            _reset(transport)
        else:
            if self.payload:
                transport.write(self.payload)
            transport.close()
        # Return only once the server has seen the connection go: it then writes nothing
        # more (no 500) and logs nothing.
        if not await _disconnected(receive):
            transport.abort()
            await _disconnected(receive)


def _raw_transport(scope: Scope) -> RawTransport | None:
    """The connection's transport, when the server's protocol exposes it."""
    extension = scope.get("extensions", {}).get(CONNECTION_EXTENSION)
    if not isinstance(extension, dict):
        return None
    transport: RawTransport | None = extension.get("transport")
    return transport


def _reset(transport: RawTransport) -> None:
    """Close with SO_LINGER 0, so the kernel sends RST instead of FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already gone: the abort below still ends it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _disconnected(receive: Receive) -> bool:
    """Wait (bounded) for the server to report the client gone; True when it did."""
    with anyio.move_on_after(_DISCONNECT_WAIT_S) as waiting:
        while (await receive())["type"] != "http.disconnect":
            pass
    return not waiting.cancelled_caught


class DribbledResponse(Response):
    """The usual answer, its body sent a few bytes at a time over about ``seconds``."""

    def __init__(self, usual: Response, seconds: float, clock: Clock) -> None:
        super().__init__()
        self.usual, self.seconds, self.clock = usual, seconds, clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def dribble(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
                return
            body: bytes = message.get("body", b"")
            more_body: bool = message.get("more_body", False)
            pieces = [
                body[i : i + DRIBBLE_PIECE_BYTES] for i in range(0, len(body), DRIBBLE_PIECE_BYTES)
            ] or [b""]
            pause = self.seconds / len(pieces)
            for i, piece in enumerate(pieces, start=1):
                await self.clock.sleep(pause)
                more = more_body or i < len(pieces)
                await send({"type": "http.response.body", "body": piece, "more_body": more})

        await self.usual(scope, receive, dribble)


async def answer(fault: Fault, scope: Scope, clock: Clock, rng: random.Random) -> Response | None:
    """The fault's answer, or None when the usual answer follows (after a delay, or paced
    by ``paced``). The request's scope is marked with the fault's kind for the journal."""
    scope[FAULT_SCOPE_KEY] = fault.kind
    if fault.kind == "delay":
        await clock.sleep(fault.seconds)
        return None
    if fault.kind == "dribble":
        return None
    if fault.kind == "drop":
        return DroppedResponse(image=fault.on == "download")
    if fault.kind in SOCKET_FAULT_KINDS:
        return SocketFaultResponse(fault.kind, rng, image=fault.on == "download")
    refusal = REFUSALS.get(fault.kind, REFUSALS["server-error"])
    retry_after = None if refusal.retry_after is None else fault.retry_after
    raise ApiError.refusal(replace(refusal, retry_after=retry_after))


def paced(fault: Fault | None, usual: Response, clock: Clock) -> Response:
    """The usual answer as the fault sends it: dribbled for ``dribble``, else unchanged."""
    if fault is not None and fault.kind == "dribble":
        return DribbledResponse(usual, fault.seconds, clock)
    return usual
