"""Each process's Redis connections are bounded; a request waits for one, and its journal
entry waits too: many more concurrent requests than connections are all answered and
all journaled."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import pytest
import redis

from contract_tests.server import running_server
from mock_server import Settings, create_app
from mock_server.http.journal import Exchange
from mock_server.state import StoreUnavailable
from mock_server.state import redis as redis_state
from mock_server.state.redis import RedisState
from tests.mock_server.state.test_store_contract import make_job
from tests.support.redis_server import RedisServer

SUBMIT = "/sdxl/text2image/v1"
BODY = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64}


def connected_clients(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        return int(client.info("clients")["connected_clients"])  # type: ignore[index]


@pytest.mark.anyio
async def test_a_process_holds_at_most_its_connections_and_commands_wait(redis_url: str) -> None:
    before = connected_clients(redis_url)
    shared = RedisState.open(redis_url, connections=3)
    try:
        jobs = [make_job(f"key-{i % 7}") for i in range(60)]
        added = await asyncio.gather(*(shared.store.add(job) for job in jobs))
        found = await asyncio.gather(*(shared.store.get(job.id) for job in jobs))

        assert added == [True] * 60
        assert [job.id if job else None for job in found] == [job.id for job in jobs]
        assert connected_clients(redis_url) - before <= 3
    finally:
        await shared.aclose()


def exchange(n: int) -> Exchange:
    return Exchange(n, "GET", f"/{n}", b"", [], b"", 200, [], b"", 0.0, False, None, 1)


@pytest.mark.anyio
@pytest.mark.socket
@pytest.mark.redis
async def test_journal_entries_wait_while_redis_is_down_and_are_written_once_it_is_back(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    shared = RedisState.open(server.url)
    journal = shared.journal
    journal.RETRY_AFTER = 0.0  # try again at once, not a second later
    try:
        await journal.record(exchange(1))
        server.kill()
        with pytest.raises(StoreUnavailable):
            await journal.record(exchange(2))
        with pytest.raises(StoreUnavailable):
            await journal.record(exchange(3))
        assert journal.waiting == 2

        server.start()  # same port, same append-only file
        await journal.record(exchange(4))

        assert journal.waiting == 0
        assert [e["path"] for e in await journal.entries()] == ["/1", "/2", "/3", "/4"]
    finally:
        await shared.aclose()
        server.stop()


@pytest.mark.anyio
@pytest.mark.socket
@pytest.mark.redis
async def test_the_outbox_keeps_the_newest_entries_the_journal_would_keep(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    shared = RedisState.open(server.url, journal_size=3)
    journal = shared.journal
    journal.RETRY_AFTER = 0.0
    try:
        server.kill()
        for n in range(1, 6):
            with pytest.raises(StoreUnavailable):
                await journal.record(exchange(n))
        assert journal.waiting == 3
        server.start()

        assert [e["path"] for e in await journal.entries()] == ["/3", "/4", "/5"]
    finally:
        await shared.aclose()
        server.stop()


async def _burst(url: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=url, headers={"API-Key": "sk-burst"}, timeout=60.0, limits=limits
    ) as client:
        return await asyncio.gather(*(client.post(SUBMIT, json=BODY) for _ in range(count)))


def test_many_times_more_concurrent_submits_than_connections_are_all_answered_and_journaled(
    redis_url: str,
) -> None:
    output: list[str] = []
    with (
        running_server(
            "--store",
            redis_url,
            "--workers",
            "2",
            "--redis-connections",
            "4",
            start_timeout=60,
            output=output,
        ) as url,
        httpx.Client(base_url=url, timeout=30.0) as admin,
    ):
        answers = asyncio.run(_burst(url, 100))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [202] * 100, [a.text for a in answers if a.status_code != 202][:3]
        ids = {a.json()["id"] for a in answers}

        # Each entry is written as its answer goes out: the last ones may be on their way.
        for _ in range(100):
            entries = admin.get("/__mock/journal").json()["entries"]
            submits = [e for e in entries if e["path"] == SUBMIT]
            if len(submits) >= 100:
                break
            time.sleep(0.1)
        assert len(submits) == 100
        assert {e["status"] for e in submits} == {202}
        assert {json.loads(e["response_body"])["id"] for e in submits} == ids
        assert connected_clients(redis_url) <= 2 * 4 + 1  # both workers' pools, and this one
    log = "".join(output)
    assert not re.search(r"Too many connections|No connection available|journal entr", log), log


@pytest.mark.anyio
async def test_past_the_wait_for_a_connection_a_request_gets_503_and_its_entry_waits(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_state, "POOL_WAIT", 0.2)
    app = create_app(Settings(store=redis_url, redis_connections=1))
    state = app.state.mock
    state.journal.RETRY_AFTER = 0.0
    pool = state.store.client.connection_pool
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://mock.test")
    try:
        held = await pool.get_connection()  # the process's one connection, busy
        refused = await client.post(SUBMIT, json=BODY, headers={"API-Key": "sk-wait"})
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "busy" and refused.headers["Retry-After"] == "1"
        assert state.journal.waiting == 1  # answered, so kept for the journal

        await pool.release(held)
        accepted = await client.post(SUBMIT, json=BODY, headers={"API-Key": "sk-wait"})
        assert accepted.status_code == 202
        entries = (await client.get("/__mock/journal")).json()["entries"]
        assert [e["status"] for e in entries] == [503, 202]
    finally:
        await client.aclose()
        await state.aclose()
