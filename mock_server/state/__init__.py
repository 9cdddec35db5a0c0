"""MockState: what the API routes and the admin API share."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from mock_server.clock import Clock
from mock_server.generators import Generator, PlaceholderGenerator
from mock_server.images import ImageCache
from mock_server.journal import Journal, MemoryJournal
from mock_server.scenario_queue import MemoryQueue, ScenarioQueue
from mock_server.scenarios import ScenarioBook
from mock_server.settings import Settings
from mock_server.stores import JobStore


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
    """What makes the images (create_app gives the placeholders the ``images`` cache)."""
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """What ``aclose`` runs: connections to a shared store."""

    async def aclose(self) -> None:
        """Release connections; the app's lifespan calls it when the server stops."""
        while self.closers:
            await self.closers.pop()()


def mock_state(request: Request) -> MockState:
    state: MockState = request.app.state.mock
    return state
