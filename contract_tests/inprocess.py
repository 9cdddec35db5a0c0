"""The mock in this process: httpx clients (sync and async) with no sockets, on virtual time.

``MockHarness`` owns one app, its virtual clock and admin helpers: the admin API's own
logic (``mock_server.state.admin.Admin``, as ``harness.admin``), called in process, so
they take and refuse what ``/__mock/`` takes and refuses. Its clients reach
the app through httpx transports that turn a scenario's dropped connection into the
``httpx.RemoteProtocolError`` a real socket would give, so clients see what they would
see over the network, without the network.

Time is virtual: the mock's clock stands still until the test moves it, with
``advance(seconds)`` or by giving the client ``sleep`` (or ``async_sleep``) as the sleep it
calls; ``now()`` reads it. A harness is cheap (well under a millisecond): a hypothesis
test builds one per example, ``MockHarness(Settings(...))``, rather than sharing the
function-scoped ``ipmock`` fixture between examples.
"""

from __future__ import annotations

import json
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio.from_thread
import httpx
from anyio.from_thread import BlockingPortal

from mock_server import Clock, Settings, create_app
from mock_server.contract import STATUS_PREFIX, SUBMIT_PATH
from mock_server.faults import ConnectionDropped
from mock_server.scenarios import Scenario
from mock_server.state import MockState
from mock_server.state.admin import Admin

BASE_URL = "http://ipmock.test"


def _dropped(request: httpx.Request) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(
        "peer closed connection without sending complete message body", request=request
    )


class AsyncMockTransport(httpx.AsyncBaseTransport):
    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except ConnectionDropped:
            raise _dropped(request) from None


class SyncMockTransport(httpx.BaseTransport):
    """Runs each request on an event loop in a helper thread (an anyio blocking portal)."""

    def __init__(self, app: Any, portal: BlockingPortal) -> None:
        self._inner = AsyncMockTransport(app)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> tuple[int, httpx.Headers, bytes]:
            response = await self._inner.handle_async_request(request)
            return response.status_code, response.headers, await response.aread()

        status, headers, content = self._portal.call(call)
        return httpx.Response(status, headers=headers, content=content, request=request)


class MockHarness:
    """One in-process mock with a virtual clock, and everything a test asks of it."""

    def __init__(self, settings: Settings | None = None, *, start: float = 1_000_000.0) -> None:
        self.settings = settings or Settings()
        self.clock = Clock(source=lambda: start, virtual=True)
        self.app = create_app(self.settings, clock=self.clock)
        self.base_url = BASE_URL

    @property
    def state(self) -> MockState:
        state: MockState = self.app.state.mock
        return state

    @property
    def admin(self) -> Admin:
        """The admin API's operations on this mock, as coroutines (``await
        harness.admin.queue(["success"])``): what the sync helpers below call."""
        return Admin(self.state)

    def async_client(self, api_key: str = "sk-harness", **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=AsyncMockTransport(self.app),
            base_url=self.base_url,
            headers={"API-Key": api_key},
            **kwargs,
        )

    @contextmanager
    def client(self, api_key: str = "sk-harness", **kwargs: Any) -> Iterator[httpx.Client]:
        """A sync httpx client; the app runs on an event loop in a helper thread."""
        with (
            anyio.from_thread.start_blocking_portal() as portal,
            httpx.Client(
                transport=SyncMockTransport(self.app, portal),
                base_url=self.base_url,
                headers={"API-Key": api_key},
                **kwargs,
            ) as http,
        ):
            yield http

    # -- admin, without HTTP: the admin API's own logic, called in process -----------------

    def queue(self, *scenarios: str | dict[str, Any] | Scenario) -> None:
        """Queue scenarios (names, JSON objects or Scenarios) for the next valid submits,
        as ``POST /__mock/queue`` does: all, or none with AdminRefused naming the entry."""
        _at_once(self.admin.queue(scenarios))

    def journal(self, path_prefix: str = "") -> list[dict[str, Any]]:
        """The journal, oldest first, as ``GET /__mock/journal?path=`` lists it."""
        return _at_once(self.admin.journal(path_prefix))

    def submits(self) -> list[dict[str, Any]]:
        return [e for e in self.journal(SUBMIT_PATH) if e["method"] == "POST"]

    def jobs(self) -> list[dict[str, Any]]:
        """The stored jobs, as ``GET /__mock/jobs`` lists them (poll counts, scenario)."""
        jobs = _at_once(self.admin.jobs())
        parsed: list[dict[str, Any]] = json.loads(json.dumps(jobs))  # as JSON: lists, not tuples
        return parsed

    def reset(self) -> None:
        """Forget jobs, queue, journal and clock offset, as ``POST /__mock/reset`` does."""
        _at_once(self.admin.reset())

    def polls(self, job_id: str | None = None) -> list[dict[str, Any]]:
        prefix = STATUS_PREFIX + (job_id or "")
        return self.journal(prefix)

    def advance(self, seconds: float) -> None:
        """Move the mock's clock forward, as ``{"advance": seconds}`` does (0 to 1e9, else
        AdminRefused): time-based PENDING, job and URL expiry follow."""
        _at_once(self.admin.clock({"advance": seconds}))

    def sleep(self, seconds: float) -> None:
        """A ``time.sleep`` for the client under test: moves the clock, returns at once."""
        self.advance(seconds)

    async def async_sleep(self, seconds: float) -> None:
        """An ``asyncio.sleep`` for async clients: moves the clock, returns at once."""
        self.advance(seconds)

    def now(self) -> float:
        """The mock's clock (seconds since the epoch; a ``time.monotonic`` for the client)."""
        return self.clock.now()

    def set_time(self, at: float | str) -> None:
        """Set the mock's clock to ``at``: seconds since the epoch or an ISO 8601 time with
        its zone ("2030-01-01T00:00:00Z"), back too, as ``{"set": at}`` does (AdminRefused
        for anything else)."""
        _at_once(self.admin.clock({"set": at}))

    def freeze(self) -> None:
        """Stop the mock's clock (``advance``, ``sleep`` and ``set_time`` still move it)."""
        _at_once(self.admin.clock({"freeze": True}))

    def unfreeze(self) -> None:
        """Let the mock's clock run on from where it stands."""
        _at_once(self.admin.clock({"freeze": False}))

    @staticmethod
    def body(entry: dict[str, Any]) -> Any:
        """A journal entry's response body, parsed."""
        return json.loads(entry["response_body"])


T = TypeVar("T")


def _at_once(step: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never waits (the in-process memory store's calls),
    from sync or async code alike."""
    try:
        step.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    step.close()
    raise RuntimeError(
        "the harness's state waited (a shared store?): its sync helpers need the memory "
        "store; in async code, await harness.admin's calls instead"
    )
