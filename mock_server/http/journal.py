"""The request journal: what clients sent and got, keys redacted, for tests to assert on.

This module records exchanges from the HTTP side; where they are kept is
``mock_server.state`` (``Journal``: ``MemoryJournal``, ``RedisJournal``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, NamedTuple

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server.clock import Clock
from mock_server.faults import FAULT_SCOPE_KEY, SOCKET_FAULT_KINDS, ConnectionDropped
from mock_server.jobs import JOB_SCOPE_KEY
from mock_server.report.clients import client_id
from mock_server.scenarios import SCENARIO_SCOPE_KEY
from mock_server.state import Journal, StoreUnavailable

log = logging.getLogger("ipmock")

REDACTED_HEADERS = frozenset({"api-key", "authorization", "x-ipmock-admin-token"})
_BODY_CAP = 64 * 1024


def _text(body: bytes, content_type: str) -> str:
    if content_type.startswith("image/"):
        return f"<{content_type}, {len(body)} bytes>"
    text = body[:_BODY_CAP].decode("utf-8", "replace")
    return text + ("...(truncated)" if len(body) > _BODY_CAP else "")


def _json(body: bytes, content_type: str) -> Any:
    """A body as JSON when it is whole and parses (whatever its Content-Type says: the
    API's docs send JSON with none), else None. NaN and Infinity are not JSON, so they
    leave it None; integers keep every digit."""
    if not body or len(body) > _BODY_CAP or content_type.startswith("image/"):
        return None
    try:
        return json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested past Python's stack
        return None


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


_PID = os.getpid()
_new_tuple = tuple.__new__


def _note_pid() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_note_pid)


class Exchange(NamedTuple):
    """One request and its answer, as received and sent: ``to_json`` makes the journal
    entry (keys redacted) when someone reads it, not on every request."""

    at: float
    method: str
    path: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    status: int | None
    response_headers: list[tuple[bytes, bytes]]
    response_body: bytes
    duration_s: float
    dropped: bool
    fault: str | None
    worker: int
    """Which process answered: workers share a journal."""
    job_id: str | None = None
    """The job the request made or asked about (a refused submit: none)."""
    scenario: str | None = None
    """The scenario chosen for the request's job (a refused submit: the refusing one)."""

    @classmethod
    def of(
        cls,
        scope: Scope,
        request_body: bytes,
        status: int | None,
        response_headers: list[tuple[bytes, bytes]],
        response_body: bytes,
        *,
        at: float,
        duration_s: float,
        dropped: bool = False,
    ) -> Exchange:
        fault = scope.get(FAULT_SCOPE_KEY)
        return _new_tuple(  # what the generated __new__ does, at a third of its cost
            cls,
            (
                at,
                scope["method"],
                scope["path"],
                scope.get("query_string", b""),
                scope.get("headers", []),
                _capped(request_body),
                status,
                response_headers,
                _capped(response_body),
                duration_s,
                dropped or fault in SOCKET_FAULT_KINDS,
                fault,
                _PID,
                scope.get(JOB_SCOPE_KEY),
                scope.get(SCENARIO_SCOPE_KEY),
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """The journal entry, but for ``seq``: the journal numbers its entries."""
        headers = {}
        api_key = None
        for k, v in self.headers:
            name = k.decode("latin-1")
            redact = name.lower() in REDACTED_HEADERS
            headers[name] = "<redacted>" if redact else v.decode("latin-1")
            if name.lower() == "api-key":
                api_key = v.decode("latin-1")
        answered = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.response_headers}
        response_type = answered.get("content-type", "")
        return {
            "at": self.at,
            "method": self.method,
            "path": self.path,
            "query": self.query.decode("latin-1"),
            "headers": headers,
            "body": _text(self.body, headers.get("content-type", "")),
            "json": _json(self.body, headers.get("content-type", "")),
            "status": self.status,
            "response_headers": answered,
            "response_body": _text(self.response_body, response_type),
            "response_json": _json(self.response_body, response_type),
            "duration_ms": round(self.duration_s * 1000, 3),
            "dropped": self.dropped,
            "fault": self.fault,
            "worker": self.worker,
            "job_id": self.job_id,
            "scenario": self.scenario,
            "client": client_id(api_key),
        }


def _capped(body: bytes) -> bytes:
    """What the journal keeps of a body: enough to show its first _BODY_CAP bytes and
    that more followed."""
    return body if len(body) <= _BODY_CAP else body[: _BODY_CAP + 1]


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
        status: int | None = None
        response_headers: list[tuple[bytes, bytes]] = []
        body_complete = recorded = False

        async def record(dropped: bool) -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                exchange = Exchange.of(
                    scope,
                    bytes(request_body),
                    status,
                    response_headers,
                    bytes(response_body),
                    at=at,
                    duration_s=time.perf_counter() - started,
                    dropped=dropped,
                )
                await record_quietly(self.journal, exchange)

        async def tee_receive() -> Message:
            nonlocal body_complete
            if body_complete and scope.get(FAULT_SCOPE_KEY) in SOCKET_FAULT_KINDS:
                # A socket fault, delivered, waits here for the client to go. The client has
                # had its answer, so the exchange is recorded now: before the next request
                # the client sends, which may well arrive first.
                await record(dropped=True)
            message = await receive()
            if message["type"] == "http.request":
                if len(request_body) <= _BODY_CAP:
                    request_body.extend(message.get("body", b""))
                body_complete = not message.get("more_body", False)
            return message

        async def tee_send(message: Message) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status, response_headers = message["status"], list(message.get("headers", []))
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
            await record(dropped)


async def record_quietly(journal: Journal, exchange: Exchange) -> None:
    """Record an exchange; when the shared journal cannot take it now, say so: the entry
    waits in this process and goes with the next write (``RedisJournal``)."""
    try:
        await journal.record(exchange)
    except StoreUnavailable as exc:
        log.warning("journal entries kept in this process until the store takes them: %s", exc)
