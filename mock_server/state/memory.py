"""State in this process (the default): jobs, the admin queue and the journal.

``mock_server.state.redis`` keeps the same in Redis, so that several ``ipmock serve``
workers or hosts share them. The same tests (``tests/mock_server/state``) run against both.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mock_server.jobs import Job
from mock_server.scenarios import Scenario

if TYPE_CHECKING:
    from mock_server.http.journal import Exchange


class MemoryStore:
    """Jobs in this process, bounded: beyond ``max_jobs`` jobs, or ``max_bytes`` of their
    requests (data: URL images weigh megabytes), the least recently used is dropped; and a
    job is dropped once its ``forget_at`` has passed.

    Reading a job (a poll) makes it recent, so jobs a client is polling survive a flood
    of new submits.
    """

    def __init__(self, max_jobs: int = 10_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        if max_jobs < 1:
            raise ValueError(f"max_jobs must be at least 1, got {max_jobs}")
        self.max_jobs, self.max_bytes = max_jobs, max_bytes
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._weights: dict[str, int] = {}
        self._bytes = 0
        self._forget: list[tuple[float, str]] = []  # a heap of (forget_at, job id)
        self._in_flight: dict[str, dict[str, float]] = {}  # owner -> {job id: expires_at}

    async def add(self, job: Job, *, max_in_flight: int = 0) -> bool:
        now = job.created_at
        self._drop_forgotten(now)
        pending = job.state == "PENDING"
        if pending and max_in_flight > 0 and self._count_in_flight(job.owner, now) >= max_in_flight:
            return False
        self._jobs[job.id] = job
        self._weights[job.id] = weight = _weight(job)
        self._bytes += weight
        heapq.heappush(self._forget, (job.forget_at, job.id))
        if pending:
            self._in_flight.setdefault(job.owner, {})[job.id] = job.expires_at
        while len(self._jobs) > self.max_jobs or (
            self._bytes > self.max_bytes and len(self._jobs) > 1
        ):
            _, dropped = self._jobs.popitem(last=False)
            self._forgotten(dropped)
        if len(self._forget) > 2 * self.max_jobs:  # entries of LRU-dropped jobs pile up
            self._forget = [(j.forget_at, j.id) for j in self._jobs.values()]
            heapq.heapify(self._forget)
        return True

    async def get(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is not None:
            self._jobs.move_to_end(job_id)
        return job

    async def save(self, job: Job) -> None:
        stored = self._jobs.get(job.id)
        if stored is None or (stored is not job and stored.state != "PENDING"):
            return
        self._jobs[job.id] = job
        if job.state != "PENDING":
            self._not_in_flight(job)

    async def finish(self, job: Job) -> bool:
        stored = self._jobs.get(job.id)
        if stored is None or (stored is not job and stored.state != "PENDING"):
            return False
        self._jobs[job.id] = job
        self._not_in_flight(job)
        return True

    async def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    async def clear(self) -> None:
        self._jobs.clear()
        self._weights.clear()
        self._bytes = 0
        self._forget.clear()
        self._in_flight.clear()

    def _count_in_flight(self, owner: str, now: float) -> int:
        mine = self._in_flight.get(owner, {})
        for job_id in [i for i, expires in mine.items() if expires <= now]:
            del mine[job_id]
        return len(mine)

    def _not_in_flight(self, job: Job) -> None:
        mine = self._in_flight.get(job.owner)
        if mine is not None:
            mine.pop(job.id, None)
            if not mine:
                del self._in_flight[job.owner]

    def _drop_forgotten(self, now: float) -> None:
        while self._forget and self._forget[0][0] <= now:
            _, job_id = heapq.heappop(self._forget)
            job = self._jobs.get(job_id)
            if job is not None and job.forget_at <= now:
                del self._jobs[job_id]
                self._forgotten(job)

    def _forgotten(self, job: Job) -> None:
        self._bytes -= self._weights.pop(job.id, 0)
        self._not_in_flight(job)


def _weight(job: Job) -> int:
    """Roughly the bytes a job holds: the strings of its request and of its warnings
    (twice: its answer, encoded once per state, repeats them), plus a fixed overhead
    that covers the rest of its answer. (A validated request is flat: its values are
    numbers, strings, or arrays of them; its field names are the schema's own strings,
    shared by every job.)"""
    request = job.request
    total = 512 + 8 * len(request) + 2 * sum(len(w) for w in job.warnings)
    for value in request.values():
        kind = type(value)
        if kind is str:
            total += len(value)
        elif kind is tuple or kind is list:
            for item in value:
                total += len(item) if type(item) is str else 8
    return total


class MemoryQueue:
    """The admin queue in this process."""

    def __init__(self) -> None:
        self.waiting: deque[Scenario] = deque()

    async def push(self, scenarios: Iterable[Scenario]) -> None:
        self.waiting.extend(scenarios)

    async def pop(self) -> Scenario | None:
        return self.waiting.popleft() if self.waiting else None

    async def queued(self) -> list[Scenario]:
        return list(self.waiting)

    async def clear(self) -> None:
        self.waiting.clear()


class MemoryJournal:
    """The journal in this process: the last ``size`` exchanges, each entry numbered
    (``seq``) from 1 since the journal began or was last cleared."""

    def __init__(self, size: int = 1000) -> None:
        self.kept: deque[Exchange] = deque(maxlen=size)
        self.recorded = 0

    async def record(self, exchange: Exchange) -> None:
        self.keep(exchange)

    def keep(self, exchange: Exchange) -> None:
        """``record``, without a coroutine (the in-place protocol's fast path)."""
        self.kept.append(exchange)
        self.recorded += 1

    async def entries(self) -> list[dict[str, Any]]:
        first = self.recorded - len(self.kept) + 1
        return [{**e.to_json(), "seq": first + i} for i, e in enumerate(self.kept)]

    async def clear(self) -> None:
        self.kept.clear()
        self.recorded = 0
