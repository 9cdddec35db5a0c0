"""MockState: what the API routes and the admin API share."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from starlette.requests import Request

from mock_server.clock import Clock
from mock_server.generators import Generator, PlaceholderGenerator
from mock_server.images import ImageCache
from mock_server.jobs import JobStore
from mock_server.journal import Journal
from mock_server.scenarios import ScenarioBook
from mock_server.settings import Settings


@dataclass
class MockState:
    """Everything the routes share; the admin API reads and resets it."""

    settings: Settings
    book: ScenarioBook
    store: JobStore
    clock: Clock
    images: ImageCache = field(default_factory=ImageCache)
    journal: Journal = field(default_factory=Journal)
    seeds: random.Random = field(default_factory=random.Random)
    generator: Generator = field(default_factory=PlaceholderGenerator)
    """What makes the images (create_app gives the placeholders the ``images`` cache)."""


def mock_state(request: Request) -> MockState:
    state: MockState = request.app.state.mock
    return state
