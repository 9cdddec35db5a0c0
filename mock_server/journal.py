"""The request journal: what clients sent and got, keys redacted, for tests to assert on."""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server.clock import Clock
from mock_server.faults import FAULT_SCOPE_KEY, ConnectionDropped
from mock_server.scenarios import SOCKET_FAULT_KINDS
from mock_server.stores import StoreUnavailable

log = logging.getLogger("ipmock")

REDACTED_HEADERS = frozenset({"api-key", "authorization", "x-ipmock-admin-token"})
_BODY_CAP = 64 * 1024


def _text(body: bytes, content_type: str) -> str:
    if content_type.startswith("image/"):
        return f"<{content_type}, {len(body)} bytes>"
    text = body[:_BODY_CAP].decode("utf-8", "replace")
    return text + ("...(truncated)" if len(body) > _BODY_CAP else "")


class Journal(Protocol):
    """The last exchanges with the API (admin calls are left out), oldest first."""

    async def record(self, entry: dict[str, Any]) -> None: ...
    async def entries(self) -> list[dict[str, Any]]: ...
    async def clear(self) -> None: ...


class MemoryJournal:
    """The journal in this process: the last ``size`` entries."""

    def __init__(self, size: int = 1000) -> None:
        self.kept: deque[dict[str, Any]] = deque(maxlen=size)

    async def record(self, entry: dict[str, Any]) -> None:
        self.kept.append(entry)

    async def entries(self) -> list[dict[str, Any]]:
        return list(self.kept)

    async def clear(self) -> None:
        self.kept.clear()


class JournalMiddleware:
    """Records each API exchange; ``dropped`` says the client got no complete answer,
    ``fault`` names the scenario fault (or fault-mix draw) that replaced the answer."""

    def __init__(self, app: ASGIApp, journal: Journal, clock: Clock) -> None:
        self.app, self.journal, self.clock = app, journal, clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/__mock/"):
            await self.app(scope, receive, send)
            return
        started, at = time.perf_counter(), self.clock.now()
        request_body, response_body = bytearray(), bytearray()
        response: dict[str, Any] = {"status": None, "headers": {}}

        async def tee_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(request_body) <= _BODY_CAP:
                request_body.extend(message.get("body", b""))
            return message

        async def tee_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = {
                    k.decode("latin-1"): v.decode("latin-1") for k, v in message.get("headers", [])
                }
            elif message["type"] == "http.response.body" and len(response_body) <= _BODY_CAP:
                response_body.extend(message.get("body", b""))
            await send(message)

        dropped = False
        try:
            await self.app(scope, tee_receive, tee_send)
        except ConnectionDropped:
            dropped = True
            raise
        finally:
            fault = scope.get(FAULT_SCOPE_KEY)
            dropped = dropped or fault in SOCKET_FAULT_KINDS
            headers = {
                k.decode("latin-1"): "<redacted>"
                if k.decode("latin-1").lower() in REDACTED_HEADERS
                else v.decode("latin-1")
                for k, v in scope.get("headers", [])
            }
            entry = {
                "at": at,
                "method": scope["method"],
                "path": scope["path"],
                "query": scope.get("query_string", b"").decode("latin-1"),
                "headers": headers,
                "body": _text(bytes(request_body), headers.get("content-type", "")),
                "status": response["status"],
                "response_headers": response["headers"],
                "response_body": _text(
                    bytes(response_body), response["headers"].get("content-type", "")
                ),
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "dropped": dropped,
                "fault": fault,
                "worker": os.getpid(),  # which process answered: workers share a journal
            }
            try:
                await self.journal.record(entry)
            except StoreUnavailable as exc:  # the answer is sent; only the journal misses it
                log.warning("journal entry lost: %s", exc)
