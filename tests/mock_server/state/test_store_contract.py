"""One suite for every JobStore, scenario queue, journal and clock offset: memory and Redis."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from mock_server.clock import Clock
from mock_server.http.journal import Exchange
from mock_server.jobs import Job, key_fingerprint, new_job_id
from mock_server.scenarios import BUILT_IN, Scenario
from mock_server.state import JobStore, Journal, ScenarioQueue
from mock_server.state.memory import MemoryJournal, MemoryQueue, MemoryStore
from mock_server.state.redis import RedisState

pytestmark = pytest.mark.anyio

NOW = 1_000_000.0
_ids = itertools.count()


def make_job(owner: str = "alice", *, state: str = "PENDING", ttl: float = 3600.0) -> Job:
    return Job(
        id=new_job_id(),
        owner=key_fingerprint(owner),
        scenario=BUILT_IN[1],
        request={"prompt": f"job {next(_ids)}", "width": 64, "height": 64, "samples": 2},
        seed=7,
        created_at=NOW,
        expires_at=NOW + ttl,
        forget_at=NOW + 2 * ttl,
        state=state,  # type: ignore[arg-type]
    )


class Parts:
    def __init__(self, store: JobStore, queue: ScenarioQueue, journal: Journal) -> None:
        self.store, self.queue, self.journal = store, queue, journal


@pytest.fixture
async def parts(both_stores: str) -> AsyncIterator[Parts]:
    if both_stores == "memory":
        yield Parts(MemoryStore(), MemoryQueue(), MemoryJournal(size=5))
        return
    shared = RedisState.open(both_stores, journal_size=5)
    yield Parts(shared.store, shared.queue, shared.journal)
    await shared.client.aclose()


async def test_a_job_comes_back_as_it_was_stored(parts: Parts) -> None:
    job = make_job()
    job.warnings = ("unknown field 'x'",)
    job.answer = ("PENDING", "http://mock", b'{"status":"PENDING"}')  # a process's own cache
    assert "answer" not in job.to_json()
    assert await parts.store.add(job)
    found = await parts.store.get(job.id)
    assert found is not None and found.to_json() == job.to_json()
    assert await parts.store.get("no-such-job") is None


async def test_save_writes_back_polls_and_outcome(parts: Parts) -> None:
    job = make_job()
    await parts.store.add(job)
    job.poll(NOW)
    job.poll(NOW)  # pending_polls=1: the second poll settles it
    await parts.store.save(job)
    found = await parts.store.get(job.id)
    assert found is not None and (found.polls, found.state) == (2, "SUCCESS")


async def test_a_stale_pending_copy_never_overwrites_an_outcome(parts: Parts) -> None:
    job = make_job()
    await parts.store.add(job)
    stale = replace(job, polls=5)  # a poll read it while PENDING
    done = replace(job, state="SUCCESS", finished_at=NOW + 1)  # a generator finished it
    assert await parts.store.finish(done)
    await parts.store.save(stale)
    found = await parts.store.get(job.id)
    assert found is not None and found.state == "SUCCESS"


async def test_an_outcome_is_stored_once(parts: Parts) -> None:
    job = make_job()
    await parts.store.add(job)
    first = replace(job, state="SUCCESS", finished_at=NOW + 1)
    second = replace(job, state="FAILURE", error="too late", finished_at=NOW + 2)
    assert await parts.store.finish(first)
    assert not await parts.store.finish(second)
    found = await parts.store.get(job.id)
    assert found is not None and (found.state, found.error) == ("SUCCESS", None)


async def test_racing_finishers_settle_a_job_once(parts: Parts) -> None:
    job = make_job()
    await parts.store.add(job)
    outcomes = [replace(job, state="SUCCESS", error=f"worker {i}") for i in range(20)]
    won = await asyncio.gather(*(parts.store.finish(o) for o in outcomes))
    assert sum(won) == 1


async def test_in_flight_jobs_are_capped_per_key(parts: Parts) -> None:
    for _ in range(3):
        assert await parts.store.add(make_job("alice"), max_in_flight=3)
    assert not await parts.store.add(make_job("alice"), max_in_flight=3)
    assert await parts.store.add(make_job("bob"), max_in_flight=3)  # another key's own cap
    assert await parts.store.add(make_job("alice", state="SUCCESS"), max_in_flight=3)
    assert await parts.store.add(make_job("alice"))  # no cap given: none applies


async def test_a_finished_job_frees_its_place(parts: Parts) -> None:
    first = make_job("alice")
    await parts.store.add(first, max_in_flight=1)
    assert not await parts.store.add(make_job("alice"), max_in_flight=1)
    first.state = "FAILURE"
    await parts.store.save(first)
    assert await parts.store.add(make_job("alice"), max_in_flight=1)


async def test_an_expired_job_frees_its_place(parts: Parts) -> None:
    await parts.store.add(make_job("alice", ttl=10), max_in_flight=1)
    later = make_job("alice")
    later.created_at = NOW + 11  # the first one expired at NOW + 10
    assert await parts.store.add(later, max_in_flight=1)


async def test_jobs_lists_and_clear_forgets(parts: Parts) -> None:
    added = [make_job() for _ in range(3)]
    for job in added:
        await parts.store.add(job)
    assert {j.id for j in await parts.store.jobs()} == {j.id for j in added}
    await parts.store.clear()
    assert await parts.store.jobs() == []
    assert await parts.store.get(added[0].id) is None


async def test_the_queue_is_first_in_first_out(parts: Parts) -> None:
    inline = Scenario("inline", pending_polls=2, outcome="failure", error="boom")
    await parts.queue.push([BUILT_IN[0], inline])
    await parts.queue.push([BUILT_IN[5]])
    assert [s.name for s in await parts.queue.queued()] == ["success", "inline", "failure"]
    assert await parts.queue.pop() == BUILT_IN[0]
    assert await parts.queue.pop() == inline
    await parts.queue.clear()
    assert await parts.queue.pop() is None


async def test_the_journal_keeps_the_last_entries_in_order(parts: Parts) -> None:
    for i in range(8):
        scope = {"method": "GET", "path": f"/{i}", "headers": [(b"api-key", b"secret")]}
        await parts.journal.record(Exchange.of(scope, b"", 200, [], b"{}", at=NOW, duration_s=0.0))
    entries = await parts.journal.entries()
    assert [e["path"] for e in entries] == ["/3", "/4", "/5", "/6", "/7"]
    assert entries[0]["headers"] == {"api-key": "<redacted>"} and entries[0]["status"] == 200
    await parts.journal.clear()
    assert await parts.journal.entries() == []


async def test_a_shared_clock_moves_for_every_worker(redis_url: str) -> None:
    one, two = RedisState.open(redis_url), RedisState.open(redis_url)
    try:
        first = Clock(lambda: NOW, shared=one.clock_offset)
        second = Clock(lambda: NOW, shared=two.clock_offset)
        await first.move(30)
        await second.sync()
        assert second.now() == NOW + 30
        second.advance(5)  # this process only
        await second.sync()
        assert (first.now(), second.now()) == (NOW + 30, NOW + 35)
        await first.reset()
        await second.sync()
        assert second.now() == NOW + 5
        with pytest.raises(ValueError, match="only moves forward"):
            await first.move(-1)
    finally:
        await one.client.aclose()
        await two.client.aclose()


async def test_the_memory_store_drops_the_least_recently_used() -> None:
    store = MemoryStore(max_jobs=3)
    kept, dropped = make_job(), make_job()
    await store.add(kept)
    await store.add(dropped)
    for _ in range(2):
        await store.add(make_job())
        assert await store.get(kept.id) is kept  # polled: recent
    assert await store.get(dropped.id) is None
    assert len(await store.jobs()) == 3


async def test_the_memory_store_is_bounded_in_bytes_too() -> None:
    store = MemoryStore(max_bytes=1_000_000)
    heavy = [make_job() for _ in range(5)]
    for job in heavy:
        job.request["ip_adapter_image"] = "data:image/png;base64," + "A" * 300_000
        await store.add(job)
    kept = [j.id for j in await store.jobs()]
    assert kept == [j.id for j in heavy[-3:]]  # 3 x 300 kB fit in 1 MB; 4 do not
    await store.clear()
    light = make_job()
    await store.add(light)
    assert await store.get(light.id) is light


async def test_the_memory_store_weighs_warnings_and_the_answers_that_repeat_them() -> None:
    store = MemoryStore(max_bytes=1_000_000)
    heavy = [make_job() for _ in range(3)]
    for job in heavy:
        job.warnings = ("w" * 200_000,)  # 2 x 200 kB a job: its warning, and its answer's
        await store.add(job)
    kept = [j.id for j in await store.jobs()]
    assert kept == [j.id for j in heavy[-2:]]  # 2 x 400 kB fit in 1 MB; 3 do not


async def test_the_memory_store_forgets_jobs_past_forget_at() -> None:
    store = MemoryStore()
    old = make_job(ttl=10)  # forgotten at NOW + 20
    await store.add(old)
    newer = make_job()
    newer.created_at = NOW + 21
    await store.add(newer)
    assert await store.get(old.id) is None
    assert await store.get(newer.id) is newer


async def test_redis_keeps_a_job_no_longer_than_forget_at(redis_url: str) -> None:
    shared = RedisState.open(redis_url)
    try:
        job = make_job(ttl=100)
        await shared.store.add(job)
        ttl_ms = await shared.client.pttl(f"ipmock:job:{job.id}")
        assert 199_000 < ttl_ms <= 200_000
        job.poll(NOW)
        await shared.store.save(job)  # a save keeps the expiry
        assert await shared.client.pttl(f"ipmock:job:{job.id}") > 199_000
    finally:
        await shared.client.aclose()
