"""The in-place protocol's keep-alive timer: an idle connection closes after the timeout,
a busy one never does (one timer per idle spell, not one per answer)."""

from __future__ import annotations

import asyncio

import pytest

from mock_server.http.app import create_app
from mock_server.http.inplace import InPlace
from mock_server.http.protocol import HttpProtocol, ServerState
from mock_server.settings import Settings
from tests.support.recording_transport import POLL, RecordingTransport

pytestmark = pytest.mark.anyio

TIMEOUT_S = 0.3


async def _connection() -> tuple[HttpProtocol, RecordingTransport]:
    app = create_app(Settings())
    app.middleware_stack = app.build_middleware_stack()  # what its first call builds
    in_place = InPlace.for_app(app)
    assert in_place is not None  # answers in place from here
    protocol = HttpProtocol(ServerState(app, in_place=in_place, keep_alive_s=TIMEOUT_S))
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def test_an_idle_connection_closes_after_the_timeout() -> None:
    protocol, transport = await _connection()
    protocol.data_received(POLL)
    assert b" 404 " in transport.written[-1]  # answered in place, at once
    await asyncio.sleep(TIMEOUT_S / 2)
    assert not transport.closed
    await asyncio.sleep(TIMEOUT_S)
    assert transport.closed


async def test_a_busy_connection_stays_open_past_many_timeouts() -> None:
    protocol, transport = await _connection()
    for _ in range(12):  # 12 x 0.1 s: four timeouts' worth, never idle for one
        protocol.data_received(POLL)
        await asyncio.sleep(TIMEOUT_S / 3)
    assert not transport.closed and len(transport.written) == 12  # one write per answer
    await asyncio.sleep(TIMEOUT_S * 1.5)
    assert transport.closed


async def test_a_request_in_progress_is_not_cut_off() -> None:
    protocol, transport = await _connection()
    protocol.data_received(POLL)
    await asyncio.sleep(TIMEOUT_S * 0.9)
    protocol.data_received(POLL[:20])  # a request begins just before the timeout
    await asyncio.sleep(TIMEOUT_S * 0.5)  # the timer fires while it is unfinished
    assert not transport.closed
    protocol.data_received(POLL[20:])
    assert len(transport.written) == 2
    await asyncio.sleep(TIMEOUT_S * 1.5)
    assert transport.closed
