"""The server's shared state in Redis: jobs, the admin queue, the journal, the clock offset.

With ``ipmock serve --store redis://HOST:PORT/DB`` every worker (``--workers N``) and
every host pointed at the same Redis answers for every job: a poll may land anywhere.
Each key starts with ``ipmock:`` (or the prefix given). The operations that must not
race (a job added under the in-flight cap, an outcome stored once) are Lua scripts,
so they are atomic in Redis. A Redis that cannot be reached turns into
``StoreUnavailable`` (the API answers 503 with Retry-After) and the next request
reconnects: the server never needs a restart.

Each process holds at most ``connections`` connections (``--redis-connections``); a
command that finds them all busy waits for one, up to ``POOL_WAIT`` seconds, and only
then is the store unavailable. Journal entries are written by one writer per process,
in batches, and kept in the process while Redis cannot take them.

Durability is Redis's: with ``appendonly yes`` and ``appendfsync always`` an
acknowledged submit survives a Redis crash or restart (docs/sharing.md).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from mock_server.jobs import Job
from mock_server.scenarios import Scenario
from mock_server.state import StoreUnavailable

if TYPE_CHECKING:
    from mock_server.http.journal import Exchange

log = logging.getLogger("ipmock")

P = ParamSpec("P")
T = TypeVar("T")

# KEYS: job, in-flight set. ARGV: job JSON, keep ms, cap, now, expires_at, id, pending.
_ADD = """
local pending = ARGV[7] == '1'
if pending and tonumber(ARGV[3]) > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if pending then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
"""

# KEYS: job, in-flight set. ARGV: job JSON, id, new state, only_if_pending ('1': finish).
# A stored final state is never replaced by PENDING; ``finish`` writes only over PENDING.
_SAVE = """
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local stored_state = cjson.decode(stored)['state']
if stored_state ~= 'PENDING' and (ARGV[3] == 'PENDING' or ARGV[4] == '1') then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
if ARGV[3] ~= 'PENDING' then redis.call('ZREM', KEYS[2], ARGV[2]) end
return 1
"""


def _unavailable(
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Redis's connection and timeout errors, as the StoreUnavailable the API answers."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(f"the shared store (Redis) cannot be reached: {exc}") from None
        except RedisError as exc:  # e.g. out of memory, read-only replica
            raise StoreUnavailable(f"the shared store (Redis) refused: {exc}") from None

    return call


POOL_WAIT = 5.0
"""Seconds a command waits for a free connection of the process's pool before the store
counts as unavailable (503 with Retry-After)."""
DEFAULT_CONNECTIONS = 16


def connect(url: str, connections: int = DEFAULT_CONNECTIONS) -> redis.Redis:
    """A client for ``redis://`` or ``rediss://`` URLs over at most ``connections``
    connections (a command waits for a free one); short timeouts, retried reconnects."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=connections,
        timeout=POOL_WAIT,
        socket_timeout=5.0,
        socket_connect_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=15,
    )
    return redis.Redis.from_pool(pool)  # closing the client closes the pool


class RedisStore:
    """Jobs in Redis, each under ``<prefix>job:<id>`` until its ``forget_at``."""

    def __init__(self, client: redis.Redis, prefix: str = "ipmock:") -> None:
        self.client, self.prefix = client, prefix
        self._add = client.register_script(_ADD)
        self._save = client.register_script(_SAVE)

    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def in_flight_key(self, owner: str) -> str:
        return f"{self.prefix}inflight:{owner}"

    @_unavailable
    async def add(self, job: Job, *, max_in_flight: int = 0) -> bool:
        keep_ms = max(1, int((job.forget_at - job.created_at) * 1000))
        added = await self._add(
            keys=[self.job_key(job.id), self.in_flight_key(job.owner)],
            args=[
                json.dumps(job.to_json()),
                keep_ms,
                max_in_flight,
                job.created_at,
                job.expires_at,
                job.id,
                "1" if job.state == "PENDING" else "0",
            ],
        )
        return bool(added)

    @_unavailable
    async def get(self, job_id: str) -> Job | None:
        raw = await self.client.get(self.job_key(job_id))
        return None if raw is None else Job.from_json(json.loads(raw))

    async def save(self, job: Job) -> None:
        await self._write(job, only_if_pending=False)

    async def finish(self, job: Job) -> bool:
        return await self._write(job, only_if_pending=True)

    @_unavailable
    async def _write(self, job: Job, *, only_if_pending: bool) -> bool:
        written = await self._save(
            keys=[self.job_key(job.id), self.in_flight_key(job.owner)],
            args=[json.dumps(job.to_json()), job.id, job.state, "1" if only_if_pending else "0"],
        )
        return bool(written)

    @_unavailable
    async def jobs(self) -> list[Job]:
        keys = [k async for k in self.client.scan_iter(match=self.job_key("*"), count=1000)]
        found: list[Job] = []
        for start in range(0, len(keys), 500):
            values = await self.client.mget(keys[start : start + 500])
            found += [Job.from_json(json.loads(v)) for v in values if v is not None]
        return sorted(found, key=lambda j: j.created_at)

    @_unavailable
    async def clear(self) -> None:
        """Forget every key under the prefix: jobs, queue, journal, clock, work."""
        batch: list[Any] = []
        async for key in self.client.scan_iter(match=self.prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await self.client.unlink(*batch)
                batch.clear()
        if batch:
            await self.client.unlink(*batch)


class RedisQueue:
    """The admin queue of scenarios, as a Redis list."""

    def __init__(self, client: redis.Redis, prefix: str = "ipmock:") -> None:
        self.client, self.key = client, prefix + "queue"

    @_unavailable
    async def push(self, scenarios: Iterable[Scenario]) -> None:
        values = [json.dumps(s.to_json()) for s in scenarios]
        if values:
            await self.client.rpush(self.key, *values)

    @_unavailable
    async def pop(self) -> Scenario | None:
        raw: bytes | None = await self.client.lpop(self.key)  # type: ignore[assignment]
        return None if raw is None else Scenario.from_json(json.loads(raw))

    @_unavailable
    async def queued(self) -> list[Scenario]:
        values = await self.client.lrange(self.key, 0, -1)
        return [Scenario.from_json(json.loads(v)) for v in values]

    @_unavailable
    async def clear(self) -> None:
        await self.client.delete(self.key)


class RedisJournal:
    """The journal as a capped Redis list: the last ``size`` entries of every worker.

    ``record`` puts the entry in this process's outbox and has the outbox written; one
    write runs at a time, so the entries of requests that end together go in one round
    trip over one connection, and the journal never takes the connections requests need.
    An outbox Redis cannot take stays here (the newest ``size`` entries: the list keeps no
    more) and goes with the next write, tried again ``RETRY_AFTER`` seconds later at most;
    an entry is lost only if the process ends first.

    Each entry is numbered (``seq``) from 1 since the journal began or was last
    cleared: a counter beside the list, raised by each write in the same transaction,
    so the newest entry's number is the counter and the report can tell what the cap
    dropped.
    """

    RETRY_AFTER = 1.0

    def __init__(self, client: redis.Redis, prefix: str = "ipmock:", size: int = 1000) -> None:
        self.client, self.key, self.size = client, prefix + "journal", size
        self.seq_key = prefix + "journal:seq"
        self._outbox: deque[Exchange] = deque(maxlen=size)
        self._writing = asyncio.Lock()
        self._retry_at = 0.0

    async def record(self, exchange: Exchange) -> None:
        """Journal ``exchange``; StoreUnavailable says it waits in the outbox for now."""
        self._outbox.append(exchange)
        if time.monotonic() >= self._retry_at:
            await self.flush()

    @property
    def waiting(self) -> int:
        """Entries in the outbox, not yet in Redis."""
        return len(self._outbox)

    async def flush(self) -> None:
        """Write the outbox (StoreUnavailable when Redis cannot take it: it stays)."""
        async with self._writing:
            if not self._outbox:  # written by the write this one waited for
                return
            batch, self._outbox = self._outbox, deque(maxlen=self.size)
            try:
                await self._write([json.dumps(e.to_json()) for e in batch])
            except StoreUnavailable:
                batch.extend(self._outbox)  # the newest ``size`` kept, in order
                self._outbox = batch
                self._retry_at = time.monotonic() + self.RETRY_AFTER
                raise
            self._retry_at = 0.0

    @_unavailable
    async def _write(self, values: list[str]) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incrby(self.seq_key, len(values))
            pipe.rpush(self.key, *values)
            pipe.ltrim(self.key, -self.size, -1)
            await pipe.execute()

    async def entries(self) -> list[dict[str, Any]]:
        await self.flush()
        return await self._entries()

    @_unavailable
    async def _entries(self) -> list[dict[str, Any]]:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.lrange(self.key, 0, -1)
            pipe.get(self.seq_key)
            values, last = await pipe.execute()
        first = (0 if last is None else int(last)) - len(values) + 1
        return [{**json.loads(v), "seq": first + i} for i, v in enumerate(values)]

    @_unavailable
    async def clear(self) -> None:
        self._outbox.clear()
        await self.client.delete(self.key, self.seq_key)


class RedisClockOffset:
    """The admin clock: its offset from wall time, and the time it is frozen at (absent
    when it runs), read by every worker at each request."""

    def __init__(self, client: redis.Redis, prefix: str = "ipmock:") -> None:
        self.client, self.key = client, prefix + "clock"
        self.frozen_key = prefix + "clock:frozen"

    @_unavailable
    async def offset(self) -> float:
        raw = await self.client.get(self.key)
        return 0.0 if raw is None else float(raw)

    @_unavailable
    async def read(self) -> tuple[float, float | None]:
        """The offset and the frozen time, in one round trip."""
        offset, frozen = await self.client.mget(self.key, self.frozen_key)
        return 0.0 if offset is None else float(offset), None if frozen is None else float(frozen)

    @_unavailable
    async def add(self, seconds: float) -> float:
        return float(await self.client.incrbyfloat(self.key, seconds))

    @_unavailable
    async def freeze(self, at: float | None) -> None:
        if at is None:
            await self.client.delete(self.frozen_key)
        else:
            await self.client.set(self.frozen_key, repr(at))

    @_unavailable
    async def add_frozen(self, seconds: float) -> float:
        return float(await self.client.incrbyfloat(self.frozen_key, seconds))

    @_unavailable
    async def reset(self) -> None:
        await self.client.delete(self.key, self.frozen_key)


@dataclass(frozen=True)
class RedisState:
    """Everything a worker shares with the others, over one Redis client."""

    client: redis.Redis
    store: RedisStore
    queue: RedisQueue
    journal: RedisJournal
    clock_offset: RedisClockOffset

    @classmethod
    def open(
        cls,
        url: str,
        *,
        prefix: str = "ipmock:",
        journal_size: int = 1000,
        connections: int = DEFAULT_CONNECTIONS,
    ) -> RedisState:
        client = connect(url, connections)
        return cls(
            client=client,
            store=RedisStore(client, prefix),
            queue=RedisQueue(client, prefix),
            journal=RedisJournal(client, prefix, journal_size),
            clock_offset=RedisClockOffset(client, prefix),
        )

    async def aclose(self) -> None:
        """Write what the journal's outbox holds (if Redis takes it), then disconnect."""
        try:
            await self.journal.flush()
        except StoreUnavailable as exc:
            log.warning("%d journal entries lost at shutdown: %s", self.journal.waiting, exc)
        finally:
            await self.client.aclose()
