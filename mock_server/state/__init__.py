"""The server's state: the seams it is kept behind, and the choice of backend.

Four protocols say what the engine needs of state: ``JobStore`` (jobs), ``ScenarioQueue``
(the admin queue of next outcomes), ``Journal`` (the last exchanges) and ``SharedOffset``
(the admin clock, when workers share it). Two backends keep them: ``memory`` (this
process, the default) and ``redis`` (every worker and host on one Redis), tested by one
contract suite (``tests/mock_server/state``); ``work_queue`` hands generation to ``ipmock worker``
processes over that Redis. ``MockState`` is everything the routes and the admin share,
and ``open_state`` builds it from the settings: the one place a backend is chosen.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mock_server.clock import Clock
from mock_server.config import load_book
from mock_server.exceptions import IpmockError
from mock_server.generators import Generator, PlaceholderGenerator
from mock_server.images import ImageCache
from mock_server.jobs import Job
from mock_server.scenarios import Scenario, ScenarioBook
from mock_server.settings import Settings
from mock_server.state.memory import MemoryJournal, MemoryQueue, MemoryStore

if TYPE_CHECKING:
    from starlette.requests import Request

    from mock_server.http.journal import Exchange

__all__ = [
    "JobStore",
    "Journal",
    "MockState",
    "ScenarioQueue",
    "SharedOffset",
    "StoreUnavailable",
    "mock_state",
    "open_state",
]


class StoreUnavailable(IpmockError):
    """The store cannot be reached (Redis down): the API answers 503, and recovers later."""


class JobStore(Protocol):
    """Where jobs live. Async so that a networked store fits the same interface."""

    async def add(self, job: Job, *, max_in_flight: int = 0) -> bool:
        """Keep a new job. With ``max_in_flight`` > 0 a PENDING job is refused (False)
        while its owner already has that many PENDING, unexpired jobs."""
        ...

    async def get(self, job_id: str) -> Job | None: ...

    async def save(self, job: Job) -> None:
        """Write back a job read with ``get``. A job already final in the store stays
        final: a stale PENDING copy never overwrites the outcome a generator stored."""
        ...

    async def finish(self, job: Job) -> bool:
        """Store a job's outcome if it is still PENDING in the store (True), else leave
        the stored outcome alone (False): a job is settled once, whoever races."""
        ...

    async def jobs(self) -> list[Job]: ...
    async def clear(self) -> None: ...


class ScenarioQueue(Protocol):
    """The admin queue: scenarios for the next valid submits."""

    async def push(self, scenarios: Iterable[Scenario]) -> None: ...
    async def pop(self) -> Scenario | None:
        """The next queued scenario (taken off the queue), or None when it is empty."""
        ...

    async def queued(self) -> list[Scenario]: ...
    async def clear(self) -> None: ...


class Journal(Protocol):
    """The last exchanges with the API (admin calls are left out), oldest first."""

    async def record(self, exchange: Exchange) -> None: ...
    async def entries(self) -> list[dict[str, Any]]: ...
    async def clear(self) -> None: ...


class SharedOffset(Protocol):
    """Where workers that share state keep the clock (``state.redis``): its offset from
    wall time, and the time it is frozen at, if it is."""

    async def add(self, seconds: float) -> float: ...
    async def reset(self) -> None: ...
    async def read(self) -> tuple[float, float | None]: ...
    async def freeze(self, at: float | None) -> None: ...
    async def add_frozen(self, seconds: float) -> float: ...


@dataclass
class MockState:
    """Everything the routes share; the admin API reads and resets it."""

    settings: Settings
    book: ScenarioBook
    store: JobStore
    clock: Clock
    queue: ScenarioQueue = field(default_factory=MemoryQueue)
    images: ImageCache = field(default_factory=ImageCache)
    journal: Journal = field(default_factory=MemoryJournal)
    seeds: random.Random = field(default_factory=random.Random)
    generator: Generator = field(default_factory=PlaceholderGenerator)
    """What makes the images (open_state gives the placeholders the ``images`` cache)."""
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """What ``aclose`` runs: connections to a shared store."""

    async def aclose(self) -> None:
        """Release connections; the app's lifespan calls it when the server stops."""
        while self.closers:
            await self.closers.pop()()


def open_state(
    settings: Settings,
    *,
    store: JobStore | None = None,
    clock: Clock | None = None,
    book: ScenarioBook | None = None,
    generator: Generator | None = None,
) -> MockState:
    """The state ``settings`` asks for; what is given is used as it is (tests inject).

    ``settings.store`` "memory" keeps everything in this process. A ``redis://`` URL
    keeps jobs, the admin queue, the journal and the clock's offset in that Redis,
    shared with every worker using it; ``settings.backend`` "workers" then hands each
    job of the ``generate`` scenario to ``ipmock worker`` processes through it.
    """
    clock = clock or Clock()
    images = ImageCache()
    state = MockState(
        settings=settings,
        book=book
        or load_book(
            settings.config,
            seed=settings.seed,
            chaos=settings.chaos,
            generating=settings.backend != "mock",
        ),
        store=store or MemoryStore(settings.max_jobs),
        clock=clock,
        queue=MemoryQueue(),
        journal=MemoryJournal(settings.journal_size),
        seeds=random.Random(settings.seed),
        images=images,
        generator=generator or PlaceholderGenerator(images),
    )
    if settings.store == "memory":
        return state
    from mock_server.state.redis import RedisState

    shared = RedisState.open(
        settings.store,
        journal_size=settings.journal_size,
        connections=settings.redis_connections,
    )
    state.store = store or shared.store
    state.queue, state.journal = shared.queue, shared.journal
    clock.shared = shared.clock_offset
    state.closers.append(shared.aclose)
    if settings.backend == "workers" and generator is None:
        from mock_server.state.work_queue import QueuedGenerator, WorkQueue

        state.generator = QueuedGenerator(WorkQueue(shared.store), PlaceholderGenerator(images))
    return state


def mock_state(request: Request) -> MockState:
    """The state of the app serving ``request``."""
    state: MockState = request.app.state.mock
    return state
