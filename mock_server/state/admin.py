"""The admin operations on a mock's state, written once for both ways in.

``mock_server.http.admin`` serves them under ``/__mock/`` (it reads the request, calls
``Admin``, answers JSON, and keeps the access rules); ``contract_tests.MockHarness`` calls
them in process. Both therefore refuse the same input with the same words:
``AdminRefused``, whose message the admin API sends after ``admin API: ``. Every call
goes through the state's protocols (``JobStore``, ``ScenarioQueue``, ``Journal``, the
clock), so it works alike on the memory and the Redis backend.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import anyio.to_thread

from mock_server.clock import iso, parse_time
from mock_server.config import ConfigError, queued_scenario
from mock_server.exceptions import IpmockError
from mock_server.report.live import live_report
from mock_server.scenarios import TEST_KEY_PREFIX, Scenario
from mock_server.state import MockState
from mock_server.words import did_you_mean, shorten

CLOCK_CHANGES = ("advance", "set", "freeze")
"""What a clock change may hold; applied in the order set, advance, freeze."""

CLOCK_USAGE = (
    'send {"advance": seconds} (0 to 1e9), {"set": seconds since the epoch or an ISO 8601 '
    'time such as "2030-01-01T00:00:00Z"} or {"freeze": true or false}'
)


class AdminRefused(IpmockError, ValueError):
    """An admin call that cannot be done; the message names what was wrong and what is
    allowed. ``status`` and ``code`` are the admin API's answer to it (400
    ``invalid_request``, 404 ``not_found`` for an unknown job, 403 ``unauthorized``)."""

    def __init__(self, message: str, *, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


class Admin:
    """Reset, the scenario queue, the clock, the journal, the jobs and the generator's
    backlog of one mock's state: what the admin API offers, as calls."""

    def __init__(self, state: MockState) -> None:
        self.state = state

    async def reset(self) -> None:
        """Forget the jobs, the queue, the journal and the image cache; the clock's offset
        and the seeded mixes start over."""
        state = self.state
        await state.store.clear()
        await state.queue.clear()
        await state.journal.clear()
        await state.clock.reset()
        state.book.reset()
        state.images.clear()

    def scenarios(self) -> dict[str, Any]:
        """Every scenario, its test key, and the default, as JSON."""
        book = self.state.book
        return {
            "default": book.default,
            "scenarios": [
                {**s.to_json(), "test_key": TEST_KEY_PREFIX + name}
                for name, s in book.scenarios.items()
            ],
        }

    async def queue(self, specs: Sequence[Any]) -> list[Scenario]:
        """Append scenarios (names, JSON objects or Scenarios) for the next valid submits:
        all of them, or none when one is refused (``scenarios.N`` names it, from 0).
        Returns the queue."""
        try:
            resolved = [
                queued_scenario(self.state.book, s, f"scenarios.{i}") for i, s in enumerate(specs)
            ]
        except ConfigError as exc:
            raise AdminRefused(str(exc)) from None
        await self.state.queue.push(resolved)
        return await self.queued()

    async def queued(self) -> list[Scenario]:
        return await self.state.queue.queued()

    async def clear_queue(self) -> None:
        await self.state.queue.clear()

    async def clock(self, changes: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The mock's time, after ``changes``: ``{"set": time}`` (seconds since the epoch
        or an ISO 8601 time with its zone, back too), ``{"advance": seconds}`` (forward
        only), ``{"freeze": true/false}``; several at once apply set, advance, then freeze.
        Every change is checked before any is made."""
        clock = self.state.clock
        await clock.sync()
        if changes is not None:
            at, seconds, freeze = _clock_changes(changes)
            if at is not None:
                await clock.set(at)
            if seconds is not None:
                await clock.move(seconds)
            if freeze is True:
                await clock.freeze()
            elif freeze is False:
                await clock.unfreeze()
        now = clock.now()
        return {"now": now, "time": iso(now), "offset": clock.offset, "frozen": clock.frozen}

    async def journal(self, path_prefix: str = "") -> list[dict[str, Any]]:
        """The journal's entries, oldest first, whose path starts with ``path_prefix``."""
        return [e for e in await self.state.journal.entries() if e["path"].startswith(path_prefix)]

    async def clear_journal(self) -> None:
        await self.state.journal.clear()

    async def report(
        self, *, poll_floor: float = 1.0, deadline: float = 300.0, client: str | None = None
    ) -> dict[str, Any]:
        """The live report (``mock_server.report.live``): every client's traffic in the
        journal judged by the client properties, held to ``poll_floor`` and ``deadline``
        (seconds); ``client``: only the client of that id (``mock_server.report.client_id``
        of its key)."""
        floor = _report_seconds("poll_floor", poll_floor, 0.0, 3600.0)
        limit = _report_seconds("deadline", deadline, 1e-3, 86400.0)
        if client is not None and (not isinstance(client, str) or len(client) > 100):
            raise AdminRefused(
                f"key must be a client id of at most 100 characters, got {_shown(client)}"
            )
        if client is not None and "·" not in client:  # never echoed: it may be the key
            raise AdminRefused(
                "key must be a client id as the journal's client field shows it (such as "
                "'sk-t…9f·3fa1c2'; ipmock report --api-key KEY computes it), not an API key"
            )
        entries = await self.state.journal.entries()
        judged = partial(live_report, entries, poll_floor=floor, deadline=limit, client=client)
        # About 0.2 s for 1,000 entries: judged beside the event loop, which keeps answering.
        return await anyio.to_thread.run_sync(judged)

    async def jobs(self) -> list[dict[str, Any]]:
        """Every stored job, as JSON."""
        return [job.to_json() for job in await self.state.store.jobs()]

    async def job(self, job_id: str) -> dict[str, Any]:
        """One stored job, as JSON; AdminRefused (404) when there is none."""
        found = await self.state.store.get(job_id)
        if found is None:
            raise AdminRefused(f"no job {shorten(job_id)!r}", status=404, code="not_found")
        return found.to_json()

    async def generation(self) -> int:
        """How many jobs the generator has yet to settle (queued or running)."""
        return await self.state.generator.waiting()


def _clock_changes(changes: Mapping[str, Any]) -> tuple[float | None, float | None, bool | None]:
    """(set, advance, freeze) of a clock change, each None when absent; AdminRefused
    naming the first thing wrong."""
    if not isinstance(changes, Mapping) or not changes:
        raise AdminRefused(CLOCK_USAGE)
    unknown = [k for k in changes if k not in CLOCK_CHANGES]
    if unknown:
        names = ", ".join(f"{shorten(k)!r}{did_you_mean(k, CLOCK_CHANGES)}" for k in unknown[:10])
        raise AdminRefused(f"unknown key{'s' * (len(unknown) > 1)} {names}: {CLOCK_USAGE}")
    at = _clock_time(changes["set"]) if "set" in changes else None
    seconds = _clock_seconds(changes["advance"]) if "advance" in changes else None
    freeze = changes.get("freeze")
    if "freeze" in changes and not isinstance(freeze, bool):
        raise AdminRefused(f"freeze must be true or false, got {_shown(freeze)}")
    return at, seconds, freeze


def _clock_seconds(value: Any) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not (0 <= value <= 10**9)  # NaN fails too; JSON's Infinity is past 1e9
    ):
        raise AdminRefused(
            "advance must be a number of seconds from 0 to 1e9 (the clock only moves "
            f"forward; set goes back), got {_shown(value)}"
        )
    return float(value)


def _report_seconds(name: str, value: Any, low: float, high: float) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not (low <= value <= high)  # NaN fails too
    ):
        raise AdminRefused(
            f"{name} must be a number of seconds from {low:g} to {high:g}, got {_shown(value)}"
        )
    return float(value)


def _clock_time(value: Any) -> float:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise AdminRefused(f"set {exc}") from None


def _shown(value: Any) -> str:
    """A value as a refusal quotes it: as JSON, or its repr when it is no JSON value (a
    Python caller's)."""
    return json.dumps(shorten(value), default=repr)
