"""Shared fixtures: the app in process (httpx.ASGITransport) and a real `ipmock serve`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from contract_tests.server import running_server
from mock_server import Clock, Settings, create_app

pytest_plugins = ["pytester"]

KEY = "sk-test-client"
PROMPT = "cinematic still woman holding mango juice"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> Clock:
    """A clock frozen at t=1,000,000 that only the test moves."""
    return Clock(source=lambda: 1_000_000.0, virtual=True)


@pytest.fixture
def make_client(clock: Clock) -> Callable[..., httpx.AsyncClient]:
    """Build an in-process client for an app with the given Settings fields."""

    def make(**settings: object) -> httpx.AsyncClient:
        app = create_app(Settings(**settings), clock=clock)  # type: ignore[arg-type]
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://mock.test",
            headers={"API-Key": KEY},
        )

    return make


@pytest.fixture
async def client(make_client: Callable[..., httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as c:
        yield c


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """One real `ipmock serve` on 127.0.0.1 for the whole session (default settings)."""
    with running_server() as url:
        yield url


REPO = Path(__file__).resolve().parent.parent
