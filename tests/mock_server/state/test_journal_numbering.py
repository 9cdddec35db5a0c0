"""Journal entries name their client (an id of the API key, never the key) and are
numbered from 1 (``seq``), on the memory and the Redis journal alike, so the report can
tell what the journal's cap dropped."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mock_server.http.journal import Exchange
from mock_server.report import client_id
from mock_server.state import Journal, MemoryJournal
from mock_server.state.redis import RedisState

pytestmark = pytest.mark.anyio

KEY = "sk-live-0123456789abcdef"


@pytest.fixture
async def journal(both_stores: str) -> AsyncIterator[Journal]:
    if both_stores == "memory":
        yield MemoryJournal(size=3)
        return
    shared = RedisState.open(both_stores, journal_size=3)
    yield shared.journal
    await shared.client.aclose()


async def _record(journal: Journal, path: str, key: bytes | None = KEY.encode()) -> None:
    headers = [] if key is None else [(b"API-Key", key)]
    scope = {"method": "GET", "path": path, "headers": headers}
    await journal.record(Exchange.of(scope, b"", 200, [], b"{}", at=1.0, duration_s=0.0))


async def test_entries_are_numbered_from_one_and_the_cap_shows_as_a_late_start(
    journal: Journal,
) -> None:
    await _record(journal, "/a")
    await _record(journal, "/b")
    assert [(e["path"], e["seq"]) for e in await journal.entries()] == [("/a", 1), ("/b", 2)]
    for path in ("/c", "/d", "/e"):
        await _record(journal, path)
    entries = await journal.entries()
    assert [(e["path"], e["seq"]) for e in entries] == [("/c", 3), ("/d", 4), ("/e", 5)]


async def test_a_cleared_journal_numbers_from_one_again(journal: Journal) -> None:
    for path in ("/a", "/b", "/c", "/d"):
        await _record(journal, path)
    await journal.clear()
    await _record(journal, "/e")
    assert [(e["path"], e["seq"]) for e in await journal.entries()] == [("/e", 1)]


async def test_the_client_is_an_id_of_the_key_never_the_key(journal: Journal) -> None:
    await _record(journal, "/a")
    await _record(journal, "/b", key=None)
    keyed, keyless = await journal.entries()
    assert keyed["client"] == client_id(KEY)
    assert KEY not in str(keyed)
    assert keyless["client"] is None
