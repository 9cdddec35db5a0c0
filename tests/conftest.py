"""Shared fixtures: the app in process (httpx.ASGITransport), a real `ipmock serve` over its
socket (with bounded waits), a real redis-server, and the cost markers each test gets."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from contract_tests import plugin
from contract_tests.server import running_server
from mock_server import Clock, Settings, create_app
from tests.support.redis_server import RedisServer
from tests.support.served import Api

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


class _AppTransport(httpx.ASGITransport):
    """Closing the client closes the app's connections (ASGITransport runs no lifespan)."""

    async def aclose(self) -> None:
        await self.app.state.mock.aclose()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on 127.0.0.1 for the session (scripts/test.sh installs it)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def store_url() -> str:
    """Where in-process apps keep state; modules that run against both stores override it."""
    return "memory"


@pytest.fixture
def make_client(clock: Clock, store_url: str) -> Callable[..., httpx.AsyncClient]:
    """Build an in-process client for an app with the given Settings fields."""

    def make(**settings: object) -> httpx.AsyncClient:
        settings.setdefault("store", store_url)
        app = create_app(Settings(**settings), clock=clock)  # type: ignore[arg-type]
        return httpx.AsyncClient(
            transport=_AppTransport(app=app),
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


@pytest.fixture(params=["memory", "redis"])
def both_stores(request: pytest.FixtureRequest) -> str:
    """Run a test once with the memory store and once with Redis: ``store_url = both_stores``."""
    if request.param == "memory":
        return "memory"
    url: str = request.getfixturevalue("redis_url")
    return url


REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def small_body() -> dict[str, Any]:
    """A small valid request (renders fast)."""
    return {"model_id": "sdxl", "prompt": "a lighthouse at dusk", "width": 256, "height": 192}


@pytest.fixture
def api(server_url: str) -> Api:
    """The session server (default settings); tests here only add jobs to it."""
    return Api(server_url)


@pytest.fixture(scope="session")
def _mutable_server() -> Iterator[str]:
    """A second default server for tests that change global state (queue, clock, reset),
    so that they never disturb other tests sharing the session server."""
    with running_server() as url:
        yield url


@pytest.fixture
def mutable_api(_mutable_server: str) -> Api:
    """The state-changing tests' server, reset before each test."""
    api = Api(_mutable_server)
    response = api.admin("POST", "/__mock/reset")
    assert response.status_code == 200, response.text
    return api


@pytest.fixture(scope="session")
def ipmock_command() -> list[str]:
    """The command line for `ipmock`: this environment's console script (else the module).
    (Not ``ipmock``: that is the pytest plugin's in-process mock.)"""
    script = shutil.which("ipmock", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "mock_server.cli"]


SOCKET_FIXTURES = frozenset(
    {"server_url", "_mutable_server", "api", "mutable_api", "ipmock_server"}
)
"""Fixtures that hand a test a real `ipmock serve` over its socket (``ipmock_server`` is the
pytest plugin's)."""

REDIS_FIXTURES = frozenset({"redis_server", "redis_url"})
"""Fixtures that hand a test a real redis-server (a server over a socket too)."""


def _shared_fixtures(item: pytest.Item) -> set[str]:
    """The fixtures of this file or of the pytest plugin a test uses (a module's own fixture
    of the same name, such as test_hostile_input's in-process ``api``, is not one of them)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return set()
    return {
        name
        for name, defs in info.name2fixturedefs.items()
        if defs and defs[-1].func.__module__ in (__name__, plugin.__name__)
    }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The cost markers a test earns by the fixtures it uses: ``redis`` (and ``socket``) for
    Redis, including the redis half of ``both_stores``, ``socket`` for a served mock. Modules
    that start servers themselves say so with their own ``pytestmark``."""
    for item in items:
        names = _shared_fixtures(item)
        callspec = getattr(item, "callspec", None)
        on_redis = callspec is not None and callspec.params.get("both_stores") == "redis"
        if on_redis or names & REDIS_FIXTURES:
            item.add_marker(pytest.mark.redis)
            item.add_marker(pytest.mark.socket)
        elif names & SOCKET_FIXTURES:
            item.add_marker(pytest.mark.socket)
    _name_each_operation(items)


def _name_each_operation(items: list[pytest.Item]) -> None:
    """Schemathesis gives each operation of ``@schema.parametrize()`` an item of its own,
    named ``test_positive[POST /sdxl/...]``, but on pytest 9 (which builds a test's node id
    from its callspec, and schemathesis gives none) all of them share the node id
    ``test_positive``. pytest-xdist reports by node id, so all but one result of each
    would be lost, a failure among them too: each item's id gets its operation back."""
    for item in items:
        if type(item).__name__ == "SchemathesisFunction" and not item.nodeid.endswith("]"):
            operation = item.name.partition("[")[2].removesuffix("]")
            if operation:
                item._id = item._id.with_params(operation)  # type: ignore[attr-defined]
