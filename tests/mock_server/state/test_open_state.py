"""open_state: the one place the settings choose where state lives."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mock_server import Clock, Settings, create_app
from mock_server.generators import PlaceholderGenerator
from mock_server.scenarios import ScenarioBook
from mock_server.state import MockState, open_state
from mock_server.state.memory import MemoryJournal, MemoryQueue, MemoryStore
from mock_server.state.redis import RedisClockOffset, RedisJournal, RedisQueue, RedisStore
from mock_server.state.work_queue import QueuedGenerator

pytestmark = pytest.mark.anyio


def test_memory_settings_keep_everything_in_this_process() -> None:
    state = open_state(Settings(max_jobs=7, journal_size=3))

    assert isinstance(state.store, MemoryStore) and state.store.max_jobs == 7
    assert isinstance(state.queue, MemoryQueue)
    assert isinstance(state.journal, MemoryJournal) and state.journal.kept.maxlen == 3
    assert isinstance(state.generator, PlaceholderGenerator)
    assert state.clock.shared is None
    assert state.closers == []


async def test_a_redis_url_keeps_jobs_queue_journal_and_clock_in_that_redis(
    redis_url: str,
) -> None:
    clock = Clock()
    state = open_state(Settings(store=redis_url, journal_size=4), clock=clock)
    try:
        assert isinstance(state.store, RedisStore)
        assert isinstance(state.queue, RedisQueue)
        assert isinstance(state.journal, RedisJournal) and state.journal.size == 4
        assert isinstance(clock.shared, RedisClockOffset)
        assert state.clock is clock
        assert isinstance(state.generator, PlaceholderGenerator)
        assert len(state.closers) == 1  # the Redis connections, closed by aclose
    finally:
        await state.aclose()
    assert state.closers == []


async def test_workers_backend_hands_generate_jobs_to_the_work_queue(redis_url: str) -> None:
    state = open_state(Settings(store=redis_url, backend="workers"))
    try:
        assert isinstance(state.generator, QueuedGenerator)
    finally:
        await state.aclose()


async def test_what_the_caller_gives_is_used_as_it_is(redis_url: str) -> None:
    store, book, generator = MemoryStore(), ScenarioBook(), PlaceholderGenerator()
    for settings in (Settings(), Settings(store=redis_url, backend="workers")):
        state = open_state(settings, store=store, book=book, generator=generator)
        try:
            assert state.store is store and state.book is book and state.generator is generator
        finally:
            await state.aclose()


def test_create_app_serves_the_state_open_state_chose() -> None:
    state = create_app(Settings(journal_size=2)).state.mock
    assert isinstance(state, MockState)
    assert isinstance(state.journal, MemoryJournal) and state.journal.kept.maxlen == 2


def test_importing_the_server_loads_no_redis_client() -> None:
    code = (
        "import sys, mock_server, mock_server.state\n"
        "print(*sorted(m for m in sys.modules if m.split('.')[0] == 'redis'"
        " or m.startswith('mock_server.state.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    # Redis only when settings.store names it
    assert loaded == ["mock_server.state.admin", "mock_server.state.memory"]
