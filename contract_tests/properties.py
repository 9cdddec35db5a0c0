"""Run a client through a server flow in process, on virtual time, and check how it behaved.

The user's client runs against the mock playing one Flow. Sleeping moves the mock's
virtual clock, so a flow with Retry-After 5 and ten polls takes milliseconds. Afterwards
the journal says what the client did, and each registered ClientProperty judges it:

    returns_every_sample     SUCCESS gives exactly `samples` PNG images (or, when a
                             download failed and the client gave up on it, an error)
    surfaces_failure         FAILURE raises an error carrying the server's message
    surfaces_lost_submit     a submit whose answer was lost raises an error
    honours_retry_after      no request before Retry-After has passed
    respects_poll_floor      polls of one job at least `poll_floor` seconds apart
    gives_up_at_deadline     a job that never ends: an error by `deadline`, no images
    submits_once             never a second submit after one made a job (a double charge),
                             even when that submit's answer was lost
    finishes                 at most `max_requests` requests and 3 x `deadline` of time

Any violation raises ClientContractViolation, with the flow described, the exchanges
(runs of like ones collapsed) and the flow as JSON to replay (``Flow.from_json``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Generic, TypeVar

import anyio
import httpx

from contract_tests.flows import Flow
from contract_tests.inprocess import AsyncMockTransport, MockHarness, SyncMockTransport
from mock_server.contract import IMAGE_PREFIX, PNG_SIGNATURE
from mock_server.exceptions import IpmockError

_EPSILON = 1e-6


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


def _gave_up_on_a_download(run: FlowRun) -> bool:
    """Whether the last request for some image URL failed: an error then surfaces it."""
    last: dict[str, dict[str, Any]] = {}
    for entry in run.exchanges:
        if entry["path"].startswith(IMAGE_PREFIX):
            last[entry["path"]] = entry
    return any(e.get("dropped") or e["status"] != 200 for e in last.values())


@client_property(
    "returns_every_sample",
    "SUCCESS gives exactly `samples` PNG images (an error only after a download failed)",
)
def _returns_every_sample(run: FlowRun) -> str | None:
    flow = run.flow
    if flow.stuck or flow.outcome != "success" or flow.submit_lost or run.stopped:
        return None
    if run.error is not None:
        if _gave_up_on_a_download(run):
            return None  # a failed download, surfaced
        return f"raised {run.error!r} on a flow that succeeds"
    if run.images is None or len(run.images) != run.flow.samples:
        got = "nothing" if run.images is None else f"{len(run.images)} image(s)"
        return f"returned {got} for {run.flow.samples} sample(s)"
    if not all(isinstance(i, bytes) and i.startswith(PNG_SIGNATURE) for i in run.images):
        return "returned something other than the PNG bytes served"
    return None


@client_property("surfaces_failure", "FAILURE raises an error carrying the server's message")
def _surfaces_failure(run: FlowRun) -> str | None:
    if run.flow.stuck or run.flow.outcome != "failure" or run.flow.submit_lost or run.stopped:
        return None
    if run.error is None:
        return f"returned {run.images!r} on a flow that ends in FAILURE"
    if run.flow.error not in str(run.error):
        return f"raised {run.error!r}, without the server's message {run.flow.error!r}"
    return None


@client_property("surfaces_lost_submit", "a submit whose answer was lost raises an error")
def _surfaces_lost_submit(run: FlowRun) -> str | None:
    if not run.flow.submit_lost or run.stopped or run.error is not None:
        return None
    return (
        f"returned {_shown(run.images)} though the submit's answer was lost "
        "(the job may exist: say so, do not guess)"
    )


def _shown(images: list[bytes] | None) -> str:
    return "nothing" if images is None else f"{len(images)} image(s)"


@client_property("honours_retry_after", "no request before Retry-After has passed")
def _honours_retry_after(run: FlowRun) -> str | None:
    for before, after in pairwise(run.exchanges):  # submits, polls and downloads
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
    if not run.flow.stuck or run.flow.submit_lost:
        return None
    if run.stopped:  # the harness stopped it: the exchanges still say why
        if run.elapsed > run.deadline + run.poll_floor + _EPSILON:
            return (
                f"kept going {run.elapsed:g} s, past its {run.deadline:g} s deadline, until "
                "the harness stopped it (is ctx.deadline passed to the client?)"
            )
        return None
    if run.error is None:
        return f"returned {run.images!r} for a job that never ended"
    if run.elapsed > run.deadline + run.poll_floor + _EPSILON:
        return f"kept going {run.elapsed:g} s, past its {run.deadline:g} s deadline"
    return None


@client_property("submits_once", "never a second submit after one made a job")
def _submits_once(run: FlowRun) -> str | None:
    made: dict[str, Any] | None = None
    for entry in run.exchanges:
        if entry["method"] != "POST":
            continue
        if made is not None:
            if made.get("dropped") or made["status"] not in (200, 202):
                answer = "was lost" if made.get("dropped") else f"was a {made['status']}"
                return (
                    f"submitted again after a submit whose answer {answer} had made job "
                    f"{made['job_id']}: the job would be paid twice"
                )
            return "submitted again after a submit was accepted: the job would be paid twice"
        # A job made (the journal names it) counts even when its answer never arrived.
        if entry.get("job_id") is not None or entry["status"] in (200, 202):
            made = entry
    return None


@client_property("finishes", "ends within max_requests requests and 3 x deadline")
def _finishes(run: FlowRun) -> str | None:
    return run.stopped


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
        trail = "\n".join(exchange_lines(run.exchanges))
        raise ClientContractViolation(
            "the client broke the contract:\n  "
            + "\n  ".join(problems)
            + f"\nflow: {run.flow.describe()}\nexchanges:\n{trail}"
            + f"\nreplay: Flow.from_json({run.flow.to_json()!r})"
        )
    return run


def _outcome(entry: dict[str, Any]) -> str:
    """An answer in a few words: 200 PENDING, 429, dropped (with the fault that did it)."""
    if entry.get("dropped"):
        said = "dropped"
    else:
        said = str(entry["status"])
        answer = entry.get("response_json")
        if isinstance(answer, dict) and isinstance(answer.get("status"), str):
            said += f" {answer['status']}"
    fault = entry.get("fault")
    return said + (f" [{fault}]" if fault else "")


def exchange_lines(exchanges: list[dict[str, Any]]) -> list[str]:
    """The exchanges as lines of a report: each run of like ones (same request, same
    answer) in one line, ``GET /status/x -> 200 PENDING x 200 (to 199.00s)``."""
    if not exchanges:
        return []
    start = exchanges[0]["at"]
    runs: list[tuple[dict[str, Any], dict[str, Any], int]] = []
    for entry in exchanges:
        key = (entry["method"], entry["path"], _outcome(entry))
        if runs:
            first, _, count = runs[-1]
            if (first["method"], first["path"], _outcome(first)) == key:
                runs[-1] = (first, entry, count + 1)
                continue
        runs.append((entry, entry, 1))
    lines = []
    for first, last, count in runs:
        line = f"  {first['at'] - start:8.2f}s {first['method']} {first['path']} -> "
        line += _outcome(first)
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
