"""How a scenario's faults are answered: HTTP errors, a late answer, a dropped connection."""

from __future__ import annotations

import logging

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mock_server.clock import Clock
from mock_server.errors import ApiError
from mock_server.scenarios import Fault


class ConnectionDropped(Exception):
    """Raised mid-answer on purpose. A server closes the connection; an in-process
    transport (``contract_tests``) turns it into the client's own transport error."""


class DroppedResponse(Response):
    """Starts an answer, sends part of its body, then breaks off."""

    def __init__(self) -> None:
        super().__init__(b'{"status": "PEND', media_type="application/json")
        self.headers["content-length"] = "64"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": True})
        raise ConnectionDropped("connection dropped on purpose (scenario fault)")


def quiet_drops(record: logging.LogRecord) -> bool:
    """A logging filter: a server's report of a deliberate drop is not an error to show."""
    return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


async def answer(fault: Fault, clock: Clock) -> Response | None:
    """The fault's answer, or None when the usual answer follows (after a delay)."""
    if fault.kind == "delay":
        await clock.sleep(fault.seconds)
        return None
    if fault.kind == "drop":
        return DroppedResponse()
    if fault.kind == "rate-limited":
        raise ApiError(
            429, "rate_limited", "rate limit exceeded: slow down", retry_after=fault.retry_after
        )
    if fault.kind == "busy":
        raise ApiError(
            503, "busy", "the service is busy: try again later", retry_after=fault.retry_after
        )
    raise ApiError(500, "server_error", "internal server error (simulated)")
