"""Generation work shared through Redis: API servers enqueue it, ``ipmock worker`` takes it.

``ipmock serve --store redis://... --backend workers`` answers the API; each job of the
``generate`` scenario goes onto a Redis stream. Any number of ``ipmock worker``
processes (a GPU each, or placeholder images in tests) read it as one consumer group:

- at least once: an entry stays pending until the worker that took it acknowledges it.
  A worker renews its claim while it works; when it dies, the claim goes stale and,
  ``lease`` seconds later, another worker takes the job over and runs it again;
- once to the client: the outcome and the images are stored by one atomic script that
  writes only over a PENDING job, so a second run of the same job changes nothing;
- truthful PENDING: the job stays PENDING until that script has run.

Images are kept in Redis beside the job, for as long as the job, so every API server
can serve them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError, ResponseError

from mock_server.clock import Clock
from mock_server.errors import ApiError
from mock_server.generators import GENERATE, PlaceholderGenerator
from mock_server.images import RenderedImage
from mock_server.jobs import Job
from mock_server.scenarios import REFUSALS
from mock_server.state import JobStore, StoreUnavailable
from mock_server.state.redis import RedisState, RedisStore

log = logging.getLogger("ipmock.worker")

GROUP = "workers"
DEFAULT_LEASE = 30.0

# KEYS: job, in-flight set, image 0..n-1. ARGV: job JSON, job id, png 0..n-1.
_SETTLE = """
local stored = redis.call('GET', KEYS[1])
if not stored or cjson.decode(stored)['state'] ~= 'PENDING' then return 0 end
local keep = redis.call('PTTL', KEYS[1])
if keep < 1 then keep = 3600000 end
for i = 3, #KEYS do redis.call('SET', KEYS[i], ARGV[i], 'PX', keep) end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""

Render = Callable[[Job], Awaitable[list[RenderedImage]]]
"""Makes a job's images (one PNG per sample); raises when the generation fails."""


@dataclass(frozen=True)
class Claim:
    entry: str
    job_id: str
    taken_over: bool
    """Another worker had it and went quiet: this is at least its second run."""


class WorkQueue:
    """The stream of jobs to generate, its consumer group, and the images made."""

    def __init__(self, store: RedisStore) -> None:
        self.store, self.client = store, store.client
        self.stream = store.prefix + "work"
        self._settle = self.client.register_script(_SETTLE)

    def image_key(self, job_id: str, sample: int) -> str:
        return f"{self.store.prefix}image:{job_id}:{sample}"

    async def enqueue(self, job_id: str) -> None:
        await self.client.xadd(self.stream, {"job": job_id})

    async def ensure_group(self) -> None:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: made by another worker
            await self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)

    async def take(self, consumer: str, lease: float, wait: float) -> Claim | None:
        """A job whose last claim is older than ``lease`` (its worker died), else a new
        one (waiting up to ``wait`` seconds), else None."""
        lease_ms = max(1, int(lease * 1000))
        try:
            stale: Any = await self.client.xautoclaim(
                self.stream, GROUP, consumer, min_idle_time=lease_ms, start_id="0-0", count=1
            )
        except ResponseError:  # NOGROUP: the stream was cleared (admin reset)
            await self.ensure_group()
            return None
        if stale[1]:
            entry, fields = stale[1][0]
            return Claim(_text(entry), _text(fields[b"job"]), taken_over=True)
        fresh: Any = await self.client.xreadgroup(
            GROUP, consumer, {self.stream: ">"}, count=1, block=max(1, int(wait * 1000))
        )
        if not fresh:
            return None
        entry, fields = fresh[0][1][0]
        return Claim(_text(entry), _text(fields[b"job"]), taken_over=False)

    async def renew(self, consumer: str, claim: Claim) -> None:
        """Tell the others this worker is still on it (resets the claim's idle time)."""
        await self.client.xclaim(
            self.stream, GROUP, consumer, min_idle_time=0, message_ids=[claim.entry], justid=True
        )

    async def done(self, claim: Claim) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, GROUP, claim.entry)
            pipe.xdel(self.stream, claim.entry)
            await pipe.execute()

    async def settle(self, job: Job, pngs: list[bytes]) -> bool:
        """Store the outcome and images if the job is still PENDING; False if it was not."""
        settled = await self._settle(
            keys=[
                self.store.job_key(job.id),
                self.store.in_flight_key(job.owner),
                *(self.image_key(job.id, i) for i in range(len(pngs))),
            ],
            args=[json.dumps(job.to_json()), job.id, *pngs],
        )
        return bool(settled)

    async def image(self, job_id: str, sample: int) -> bytes | None:
        png: Any = await self.client.get(self.image_key(job_id, sample))
        return None if png is None else bytes(png)

    async def waiting(self) -> int:
        """Jobs enqueued and not yet acknowledged (taken or not)."""
        return int(await self.client.xlen(self.stream))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class QueuedGenerator:
    """The API server's side: ``generate`` jobs go to the workers; images come from Redis."""

    def __init__(self, queue: WorkQueue, placeholders: PlaceholderGenerator) -> None:
        self.queue, self.placeholders = queue, placeholders

    async def start(self, job: Job, store: JobStore) -> None:
        if job.scenario.name == GENERATE.name and job.state == "PENDING":
            await self.queue.enqueue(job.id)

    async def image(self, job: Job, sample: int) -> RenderedImage:
        if job.scenario.name != GENERATE.name:
            return await self.placeholders.image(job, sample)
        png = await self.queue.image(job.id, sample)
        if png is None:
            raise ApiError.refusal(REFUSALS["image-gone"])
        return RenderedImage(png, '"' + hashlib.sha256(png).hexdigest()[:32] + '"')

    async def waiting(self) -> int:
        return await self.queue.waiting()


def default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


async def run_worker(
    url: str,
    render: Render,
    *,
    describe_failure: Callable[[BaseException], str] = lambda e: f"generation failed: {e}",
    consumer: str | None = None,
    lease: float = DEFAULT_LEASE,
    stop: asyncio.Event | None = None,
) -> None:
    """Take jobs from the Redis at ``url`` and generate them, until ``stop`` is set."""
    shared = RedisState.open(url)
    queue = WorkQueue(shared.store)
    clock = Clock(shared=shared.clock_offset)
    consumer = consumer or default_consumer()
    stop = stop or asyncio.Event()
    await queue.ensure_group()
    log.info("worker %s taking jobs from %s (lease %.0f s)", consumer, shared.store.prefix, lease)
    try:
        while not stop.is_set():
            try:
                claim = await queue.take(consumer, lease, wait=1.0)
            except RedisError as exc:
                log.warning("Redis unreachable (%s); retrying", exc)
                await asyncio.sleep(1.0)
                continue
            if claim is None:
                continue
            try:
                await _work(
                    queue, shared.store, clock, render, describe_failure, consumer, lease, claim
                )
            except (RedisError, StoreUnavailable) as exc:  # unacknowledged: it runs again
                log.warning("job %s left for another run: %s", claim.job_id, exc)
                await asyncio.sleep(1.0)
    finally:
        await shared.client.aclose()


async def _work(
    queue: WorkQueue,
    store: RedisStore,
    clock: Clock,
    render: Render,
    describe_failure: Callable[[BaseException], str],
    consumer: str,
    lease: float,
    claim: Claim,
) -> None:
    job = await store.get(claim.job_id)
    if job is None or job.state != "PENDING":  # forgotten, or settled by an earlier run
        await queue.done(claim)
        return
    log.info("%s job %s", "taking over" if claim.taken_over else "taking", job.id)

    finished = asyncio.Event()

    async def keep_claim() -> None:
        # Stopped by an event, never cancelled: a Redis command cancelled in flight may
        # leave its connection out of step with the server.
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), lease / 3)
                return
            try:
                await queue.renew(consumer, claim)
            except RedisError as exc:  # the claim may go stale: then the job runs again
                log.warning("could not renew the claim on job %s: %s", claim.job_id, exc)

    renewing = asyncio.create_task(keep_claim())
    pngs: list[bytes] = []
    try:
        pngs = [image.png for image in await render(job)]
        job.state, job.error = "SUCCESS", None
    except Exception as exc:
        log.warning("job %s failed: %s", job.id, exc)
        job.state, job.error = "FAILURE", describe_failure(exc)
    finally:
        finished.set()
        await renewing
    await clock.sync()
    job.finished_at = clock.now()
    settled = await queue.settle(job, pngs)
    await queue.done(claim)
    log.info("job %s: %s%s", job.id, job.state, "" if settled else " (already settled: kept)")
