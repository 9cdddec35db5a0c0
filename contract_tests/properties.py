"""Run a client through a server flow in process, on virtual time, and check how it behaved.

The user's client runs against the mock playing one Flow. Sleeping moves the mock's
virtual clock, so a flow with Retry-After 5 and ten polls takes milliseconds. Afterwards
the journal says what the client did, and each registered ClientProperty judges it:

    returns_every_sample     SUCCESS gives exactly `samples` PNG images
    surfaces_failure         FAILURE raises an error carrying the server's message
    honours_retry_after      no request before Retry-After has passed
    respects_poll_floor      polls of one job at least `poll_floor` seconds apart
    gives_up_at_deadline     a job that never ends: an error by `deadline`, no images
    submits_once             never a second submit after one was accepted (a double charge)
    finishes                 at most `max_requests` requests and 3 x `deadline` of time

Any violation raises ClientContractViolation, with the flow described and as JSON to
replay (``Flow.from_json``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import anyio
import httpx

from contract_tests.flows import Flow
from contract_tests.inprocess import AsyncMockTransport, MockHarness, SyncMockTransport

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_EPSILON = 1e-6


class ClientContractViolation(AssertionError):
    """A client broke one or more client properties on a flow."""


class _HarnessStop(BaseException):
    """Ends a client run from inside: too many requests or too much time.

    A BaseException, so that a client's own ``except Exception`` cannot swallow it.
    """


@dataclass
class FlowContext:
    """What the client under test gets: where the server is, what to ask, and time."""

    base_url: str
    api_key: str
    request: dict[str, Any]
    http: Any
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


@dataclass(frozen=True)
class ClientProperty:
    name: str
    description: str
    check: Callable[[FlowRun], str | None]
    """Returns what went wrong, or None."""


PROPERTIES: dict[str, ClientProperty] = {}


def client_property(
    name: str, description: str
) -> Callable[[Callable[[FlowRun], str | None]], Callable[[FlowRun], str | None]]:
    """Register a check; the built-in ones use this too."""

    def register(check: Callable[[FlowRun], str | None]) -> Callable[[FlowRun], str | None]:
        PROPERTIES[name] = ClientProperty(name, description, check)
        return check

    return register


def _api(run: FlowRun) -> list[dict[str, Any]]:
    return [e for e in run.exchanges if e["path"].startswith("/sdxl/")]


@client_property("finishes", "ends within max_requests requests and 3 x deadline")
def _finishes(run: FlowRun) -> str | None:
    return run.stopped


@client_property("returns_every_sample", "SUCCESS gives exactly `samples` PNG images")
def _returns_every_sample(run: FlowRun) -> str | None:
    if run.flow.stuck or run.flow.outcome != "success" or run.stopped:
        return None
    if run.error is not None:
        return f"raised {run.error!r} on a flow that succeeds"
    if run.images is None or len(run.images) != run.flow.samples:
        got = "nothing" if run.images is None else f"{len(run.images)} image(s)"
        return f"returned {got} for {run.flow.samples} sample(s)"
    if not all(isinstance(i, bytes) and i.startswith(PNG_MAGIC) for i in run.images):
        return "returned something other than the PNG bytes served"
    return None


@client_property("surfaces_failure", "FAILURE raises an error carrying the server's message")
def _surfaces_failure(run: FlowRun) -> str | None:
    if run.flow.stuck or run.flow.outcome != "failure" or run.stopped:
        return None
    if run.error is None:
        return f"returned {run.images!r} on a flow that ends in FAILURE"
    if run.flow.error not in str(run.error):
        return f"raised {run.error!r}, without the server's message {run.flow.error!r}"
    return None


@client_property("honours_retry_after", "no request before Retry-After has passed")
def _honours_retry_after(run: FlowRun) -> str | None:
    api = _api(run)
    for before, after in pairwise(api):
        wait = before["response_headers"].get("retry-after")
        if wait is not None and after["at"] - before["at"] < float(wait) - _EPSILON:
            return (
                f"sent {after['method']} {after['path']} {after['at'] - before['at']:g} s "
                f"after a {before['status']} with Retry-After {wait}"
            )
    return None


@client_property("respects_poll_floor", "polls of one job at least poll_floor seconds apart")
def _respects_poll_floor(run: FlowRun) -> str | None:
    polls = [e for e in run.exchanges if "/status/" in e["path"]]
    for before, after in pairwise(polls):
        gap = after["at"] - before["at"]
        if before["path"] == after["path"] and gap < run.poll_floor - _EPSILON:
            return f"polled {gap:g} s after the previous poll (floor {run.poll_floor:g} s)"
    return None


@client_property("gives_up_at_deadline", "a job that never ends: an error by the deadline")
def _gives_up_at_deadline(run: FlowRun) -> str | None:
    if not run.flow.stuck or run.stopped:
        return None
    if run.error is None:
        return f"returned {run.images!r} for a job that never ended"
    if run.elapsed > run.deadline + run.poll_floor + _EPSILON:
        return f"kept going {run.elapsed:g} s, past its {run.deadline:g} s deadline"
    return None


@client_property("submits_once", "never a second submit after one was accepted")
def _submits_once(run: FlowRun) -> str | None:
    accepted = False
    for entry in run.exchanges:
        if entry["method"] != "POST":
            continue
        if accepted:
            return "submitted again after a submit was accepted: the job would be paid twice"
        accepted = entry["status"] in (200, 202)
    return None


def _harness(flow: Flow) -> MockHarness:
    harness = MockHarness()
    harness.queue(*flow.scenarios())
    return harness


def _judge(run: FlowRun, harness: MockHarness, properties: list[str] | None) -> FlowRun:
    run.exchanges = list(harness.journal())
    names = properties or list(PROPERTIES)
    problems = []
    for name in names:
        if (problem := PROPERTIES[name].check(run)) is not None:
            problems.append(f"{name}: {problem}")
    if problems:
        trail = "\n".join(
            f"  {e['at'] - run.exchanges[0]['at']:8.2f}s {e['method']} {e['path']} -> "
            f"{'dropped' if e.get('dropped') else e['status']}"
            for e in run.exchanges
        )
        raise ClientContractViolation(
            "the client broke the contract:\n  "
            + "\n  ".join(problems)
            + f"\nflow: {run.flow.describe()}\nexchanges:\n{trail}"
            + f"\nreplay: Flow.from_json({run.flow.to_json()!r})"
        )
    return run


def check_client(
    flow: Flow,
    generate: Callable[[FlowContext], Any],
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
    generate: Callable[[FlowContext], Awaitable[Any]],
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
