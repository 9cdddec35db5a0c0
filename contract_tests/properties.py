"""Run a client through a server flow in process, on virtual time, and check how it behaved.

The user's client runs against the mock playing one Flow. Sleeping moves the mock's
virtual clock, so a flow with Retry-After 5 and ten polls takes milliseconds. Afterwards
the journal says what the client did and the client's return value or error says what
it handed back; each client property of the one registry
(``mock_server.report.properties``, which ``ipmock fuzz`` and the live report judge
with too) judges them. ``PROPERTIES``, ``ClientProperty`` and ``client_property`` here
are that registry's.

Any broken property raises ClientContractViolation, with the flow described, the
exchanges (runs of like ones collapsed) and the flow as JSON to replay
(``Flow.from_json``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio
import httpx

from contract_tests.flows import Flow
from contract_tests.inprocess import AsyncMockTransport, MockHarness, SyncMockTransport
from mock_server.exceptions import IpmockError
from mock_server.report.properties import (
    PROPERTIES,
    ClientProperty,
    ClientResult,
    Evidence,
    client_property,
    judge,
    outcome,
)

__all__ = [
    "PROPERTIES",
    "ClientContractViolation",
    "ClientProperty",
    "FlowContext",
    "FlowRun",
    "check_client",
    "check_client_async",
    "client_property",
    "exchange_lines",
]


class ClientContractViolation(IpmockError, AssertionError):
    """A client broke one or more client properties on a flow."""


class _HarnessStop(BaseException):
    """Ends a client run from inside: too many requests or too much time.

    A BaseException, so that a client's own ``except Exception`` cannot swallow it.
    """


HttpClient = TypeVar("HttpClient", httpx.Client, httpx.AsyncClient)
"""The httpx client of a run: httpx.Client for ``check_client``, httpx.AsyncClient for
``check_client_async``."""


@dataclass
class FlowContext(Generic[HttpClient]):
    """What the client under test gets: where the server is, what to ask, and time.
    ``FlowContext[httpx.Client]`` in a sync run, ``FlowContext[httpx.AsyncClient]`` in an
    async one."""

    base_url: str
    api_key: str
    request: dict[str, Any]
    http: HttpClient
    """httpx.Client (sync run) or httpx.AsyncClient (async run), wired to the mock."""
    sleep: Callable[[float], Any]
    """Sleeps on virtual time: a function in a sync run, a coroutine function in an async one."""
    monotonic: Callable[[], float]
    poll_floor: float
    deadline: float


@dataclass
class FlowRun:
    """What happened: the client's result or error, and every exchange."""

    flow: Flow
    poll_floor: float
    deadline: float
    max_requests: int
    images: list[bytes] | None = None
    error: BaseException | None = None
    stopped: str | None = None
    exchanges: list[dict[str, Any]] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return self.exchanges[-1]["at"] - self.exchanges[0]["at"] if self.exchanges else 0.0

    @property
    def result(self) -> ClientResult:
        """What the client handed back, as the properties read it."""
        images = self.images
        if images is not None and not isinstance(images, list):
            images = list(images) if isinstance(images, tuple) else [images]
        error = None if self.error is None else repr(self.error)
        return ClientResult(images, error, self.stopped)

    @property
    def evidence(self) -> Evidence:
        """The run as the client properties judge it."""
        return Evidence(self.exchanges, self.poll_floor, self.deadline, self.result)


def _harness(flow: Flow) -> MockHarness:
    harness = MockHarness()
    harness.queue(*flow.scenarios())
    return harness


def _judge(run: FlowRun, harness: MockHarness, properties: list[str] | None) -> FlowRun:
    run.exchanges = list(harness.journal())
    verdicts = judge(run.evidence, properties)
    problems = [f"{name}: {v.why}" for name, v in verdicts.items() if v.state == "broken"]
    if problems:
        trail = "\n".join(exchange_lines(run.exchanges))
        raise ClientContractViolation(
            "the client broke the contract:\n  "
            + "\n  ".join(problems)
            + f"\nflow: {run.flow.describe()}\nexchanges:\n{trail}"
            + f"\nreplay: Flow.from_json({run.flow.to_json()!r})"
        )
    return run


def exchange_lines(exchanges: list[dict[str, Any]]) -> list[str]:
    """The exchanges as lines of a report: each run of like ones (same request, same
    answer) in one line, ``GET /status/x -> 200 PENDING x 200 (to 199.00s)``."""
    if not exchanges:
        return []
    start = exchanges[0]["at"]
    runs: list[tuple[dict[str, Any], dict[str, Any], int]] = []
    for entry in exchanges:
        key = (entry["method"], entry["path"], outcome(entry))
        if runs:
            first, _, count = runs[-1]
            if (first["method"], first["path"], outcome(first)) == key:
                runs[-1] = (first, entry, count + 1)
                continue
        runs.append((entry, entry, 1))
    lines = []
    for first, last, count in runs:
        line = f"  {first['at'] - start:8.2f}s {first['method']} {first['path']} -> "
        line += outcome(first)
        if count > 1:
            line += f" x {count} (to {last['at'] - start:.2f}s)"
        lines.append(line)
    return lines


def check_client(
    flow: Flow,
    generate: Callable[[FlowContext[httpx.Client]], Any],
    *,
    poll_floor: float = 1.0,
    deadline: float = 300.0,
    max_requests: int = 200,
    properties: list[str] | None = None,
) -> FlowRun:
    """Run a blocking client on ``flow`` and check it; raises ClientContractViolation.

    ``generate(ctx)`` must make one generation of ``ctx.request`` with ``ctx.http`` (an
    httpx.Client on the mock), sleeping only through ``ctx.sleep`` and reading time from
    ``ctx.monotonic``, and return the images as bytes.
    """
    if inspect.iscoroutinefunction(generate):
        raise TypeError("generate is a coroutine function: use check_client_async")
    harness = _harness(flow)
    run = FlowRun(flow, poll_floor, deadline, max_requests)
    start = harness.now()
    sent = [0]

    def count(request: httpx.Request) -> None:
        sent[0] += 1
        if sent[0] > max_requests:
            raise _HarnessStop(f"made more than {max_requests} requests")

    def sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"sleep of {seconds} seconds")
        harness.advance(seconds)
        if harness.now() - start > 3 * deadline:
            raise _HarnessStop(f"still going after {3 * deadline:g} s of virtual time")

    with (
        anyio.from_thread.start_blocking_portal() as portal,
        httpx.Client(
            transport=SyncMockTransport(harness.app, portal),
            base_url=harness.base_url,
            event_hooks={"request": [count]},
        ) as http,
    ):
        ctx = FlowContext(
            harness.base_url, "sk-flow", flow.body(), http, sleep, harness.now, poll_floor, deadline
        )
        try:
            run.images = generate(ctx)
        except _HarnessStop as stop:
            run.stopped = str(stop)
        except Exception as exc:  # the client's own error: judged, not raised
            run.error = exc
    return _judge(run, harness, properties)


async def check_client_async(
    flow: Flow,
    generate: Callable[[FlowContext[httpx.AsyncClient]], Awaitable[Any]],
    *,
    poll_floor: float = 1.0,
    deadline: float = 300.0,
    max_requests: int = 200,
    properties: list[str] | None = None,
) -> FlowRun:
    """``check_client`` for an async client: ``ctx.http`` is an httpx.AsyncClient and
    ``ctx.sleep`` a coroutine function."""
    harness = _harness(flow)
    run = FlowRun(flow, poll_floor, deadline, max_requests)
    start = harness.now()
    sent = [0]

    async def count(request: httpx.Request) -> None:
        sent[0] += 1
        if sent[0] > max_requests:
            raise _HarnessStop(f"made more than {max_requests} requests")

    async def sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"sleep of {seconds} seconds")
        harness.advance(seconds)
        if harness.now() - start > 3 * deadline:
            raise _HarnessStop(f"still going after {3 * deadline:g} s of virtual time")
        await anyio.lowlevel.checkpoint()

    async with httpx.AsyncClient(
        transport=AsyncMockTransport(harness.app),
        base_url=harness.base_url,
        event_hooks={"request": [count]},
    ) as http:
        ctx = FlowContext(
            harness.base_url, "sk-flow", flow.body(), http, sleep, harness.now, poll_floor, deadline
        )
        try:
            run.images = await generate(ctx)
        except _HarnessStop as stop:
            run.stopped = str(stop)
        except Exception as exc:
            run.error = exc
    return _judge(run, harness, properties)
