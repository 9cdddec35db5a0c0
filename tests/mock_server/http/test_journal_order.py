"""The journal keeps exchanges in the order the client saw them: a socket fault is recorded
once delivered, not when the server has finished waiting for the client to go (by then the
client's next request may have been answered and recorded)."""

from __future__ import annotations

from typing import Any

import pytest

from mock_server.clock import Clock
from mock_server.faults import FAULT_SCOPE_KEY
from mock_server.http.journal import JournalMiddleware
from mock_server.state.memory import MemoryJournal

pytestmark = pytest.mark.anyio


def _scope(path: str) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "query_string": b"", "headers": []}


@pytest.mark.parametrize("fault", ["reset", "garbage", "malformed-chunk"])
async def test_a_socket_fault_is_recorded_before_its_server_side_wait(fault: str) -> None:
    journal = MemoryJournal()
    seen_while_waiting: list[list[str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()  # the body
        scope[FAULT_SCOPE_KEY] = fault
        # Here a SocketFaultResponse writes its bytes, closes, and waits for the disconnect.
        assert (await receive())["type"] == "http.disconnect"

    messages = iter(
        [{"type": "http.request", "body": b'{"prompt": "p"}', "more_body": False}, None]
    )

    async def receive() -> dict[str, Any]:
        message = next(messages)
        if message is not None:
            return message
        # Meanwhile the client's next request is answered (and recorded) elsewhere.
        seen_while_waiting.append([e["path"] for e in await journal.entries()])
        await journal.record(_next_exchange())
        return {"type": "http.disconnect"}

    await JournalMiddleware(app, journal, Clock())(_scope("/faulted"), receive, _no_send)

    assert seen_while_waiting == [["/faulted"]]
    entries = await journal.entries()
    assert [(e["path"], e["fault"], e["dropped"]) for e in entries] == [
        ("/faulted", fault, True),
        ("/next", None, False),
    ]
    assert entries[0]["body"] == '{"prompt": "p"}'


async def test_an_answer_is_recorded_once_with_what_was_sent() -> None:
    journal = MemoryJournal()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    await JournalMiddleware(app, journal, Clock())(_scope("/plain"), receive, _no_send)
    (entry,) = await journal.entries()
    assert (entry["path"], entry["status"], entry["fault"], entry["dropped"]) == (
        "/plain",
        200,
        None,
        False,
    )


async def _no_send(message: dict[str, Any]) -> None:
    pass


def _next_exchange() -> Any:
    from mock_server.http.journal import Exchange

    return Exchange.of(_scope("/next"), b"", 200, [], b"{}", at=0.0, duration_s=0.0)
