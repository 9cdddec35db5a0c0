"""The protocol's flow control, on one connection with a transport that records what it
is asked: writing paused while the client does not read (the answer waits, in place or
not), reading paused while pipelined requests wait, and resumed after."""

from __future__ import annotations

import asyncio

import pytest

from mock_server.http.app import create_app
from mock_server.http.inplace import InPlace
from mock_server.http.protocol import HttpProtocol, ServerState
from mock_server.settings import Settings
from tests.support.recording_transport import POLL, RecordingTransport

pytestmark = pytest.mark.anyio

CONTRACT = b"GET /openapi.json HTTP/1.1\r\nHost: mock\r\n\r\n"


def _connection() -> tuple[HttpProtocol, RecordingTransport, ServerState]:
    app = create_app(Settings())
    app.middleware_stack = app.build_middleware_stack()  # what its first call builds
    state = ServerState(app, in_place=InPlace.for_app(app))
    protocol = HttpProtocol(state)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport, state


async def _settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0.001)


@pytest.mark.parametrize("request_", [POLL, CONTRACT], ids=["in-place", "asgi"])
async def test_no_answer_is_written_while_the_client_does_not_read(request_: bytes) -> None:
    protocol, transport, _state = _connection()
    protocol.pause_writing()
    protocol.data_received(request_)
    await _settle()
    assert transport.written == []  # the answer waits for the client
    protocol.resume_writing()
    await _settle()
    answer = b"".join(transport.written)
    assert answer.startswith(b"HTTP/1.1 404 " if request_ is POLL else b"HTTP/1.1 200 ")


async def test_reading_pauses_while_pipelined_requests_wait_and_resumes_after() -> None:
    protocol, transport, _state = _connection()
    protocol.data_received(CONTRACT * 3)
    assert not transport.reading  # two wait behind the first
    await _settle()
    answers = b"".join(transport.written)
    assert answers.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert transport.reading


async def test_a_client_gone_while_writing_is_paused_ends_the_answer() -> None:
    protocol, transport, state = _connection()
    protocol.pause_writing()
    protocol.data_received(CONTRACT)
    await _settle()
    transport.closed = True
    protocol.connection_lost(None)
    await _settle()
    assert transport.written == [] and not state.tasks  # nothing written, nothing hangs
