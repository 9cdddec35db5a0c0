"""The search: hypothesis draws timed flows, ``--jobs`` at a time side by side (a slot
each), judges every play, and shrinks a counterexample to its smallest flow."""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st

from contract_tests.flows import Flow
from contract_tests.fuzz.judging import Judged, judge_play
from contract_tests.fuzz.slot import Slot, slots
from contract_tests.fuzz.timed import timed_flows
from mock_server.cli import fuzz as defaults


@dataclass(frozen=True)
class FuzzSettings:
    """How a fuzz run goes: the defaults let 25 flows of a careful client end in about a
    minute on two busy cores."""

    examples: int = defaults.EXAMPLES
    """Flows to play (a flow drawn twice is played once)."""
    seed: int | None = None
    """Hypothesis's seed; None: a random one, reported so the run can be repeated."""
    poll_floor: float = defaults.POLL_FLOOR
    """Seconds the client must leave between two polls of one job (IPMOCK_POLL_FLOOR)."""
    deadline: float = defaults.DEADLINE
    """Seconds after which the client must give up a job (IPMOCK_DEADLINE); at 3 x this
    its process group is killed."""
    jobs: int = defaults.JOBS
    """Flows run side by side, each on a mock of its own."""
    shrink_seconds: float = 60.0
    """Time given to shrinking a counterexample; past it the smallest found is reported."""


@dataclass(frozen=True)
class FuzzOutcome:
    """A run's end: the flows run, the seed, and the counterexample (None: all held)."""

    flows_run: int
    seed: int | None
    failure: Judged | None


class _Counterexample(Exception):
    def __init__(self, judged: Judged) -> None:
        super().__init__(f"broken: {', '.join(judged.broken)}")
        self.judged = judged


class Progress(Protocol):
    """Where a run says how far it is (``mock_server.cli.progress.steps`` gives one)."""

    def advance(self, amount: float = 1, note: str = "") -> None: ...


class _Quiet:
    def advance(self, amount: float = 1, note: str = "") -> None:
        """No progress shown."""


_QUIET = _Quiet()


def _play_all(
    batch: Sequence[Flow], found: Sequence[Slot], command: Sequence[str], options: FuzzSettings
) -> list[Judged]:
    def play(pair: tuple[Slot, Flow]) -> Judged:
        slot, flow = pair
        played = slot.play(flow, command, poll_floor=options.poll_floor, deadline=options.deadline)
        return judge_play(played, poll_floor=options.poll_floor, deadline=options.deadline)

    if len(batch) == 1:
        return [play((found[0], batch[0]))]
    with ThreadPoolExecutor(len(batch)) as pool:
        return list(pool.map(play, zip(found, batch, strict=False)))


def _work_folder() -> tempfile.TemporaryDirectory[str]:
    """Where the plays' out folders go, removed at the end (what a client made hard to
    remove is left behind rather than failing the run)."""
    return tempfile.TemporaryDirectory(prefix="ipmock-fuzz-", ignore_cleanup_errors=True)


def replay(command: Sequence[str], flow: Flow, options: FuzzSettings) -> FuzzOutcome:
    """Play one flow (a saved counterexample) to ``command`` and judge it."""
    with _work_folder() as work, slots(1, Path(work)) as one:
        [judged] = _play_all([flow], one, command, options)
    return FuzzOutcome(1, None, judged if judged.broken else None)


def fuzz_command(
    command: Sequence[str],
    options: FuzzSettings = FuzzSettings(),
    *,
    flows: st.SearchStrategy[Flow] | None = None,
    progress: Progress = _QUIET,
) -> FuzzOutcome:
    """Run ``command`` under the protocol on ``options.examples`` generated flows (default
    ``timed_flows()``); on the first that breaks a property, shrink it and return it.
    ``progress`` is advanced by each flow played."""
    chosen_seed = options.seed if options.seed is not None else random.randrange(2**32)
    batches = math.ceil(options.examples / options.jobs)
    drawn = flows if flows is not None else timed_flows()
    seen: dict[str, Judged] = {}
    counted = {"flows": 0}
    shrink_ends: list[float] = []

    with (
        _work_folder() as work,
        slots(options.jobs, Path(work)) as found,
    ):

        @seed(chosen_seed)
        @settings(
            max_examples=batches + 2,  # a margin for batches hypothesis draws twice
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        @given(st.lists(drawn, min_size=options.jobs, max_size=options.jobs))
        def search(batch: list[Flow]) -> None:
            # Each flow is played once: shrinking mostly changes one flow of a batch, and a
            # batch with a known broken flow fails without playing the rest.
            known = [seen[f.to_json()] for f in batch if f.to_json() in seen]
            broken = [j for j in known if j.broken]
            unknown = list({f.to_json(): f for f in batch if f.to_json() not in seen}.values())
            if not shrink_ends:  # searching: no more than the flows asked for
                unknown = unknown[: max(options.examples - counted["flows"], 0)]
            if not broken and unknown:
                if shrink_ends and time.monotonic() > shrink_ends[0]:
                    return  # shrinking's time is up: only known plays count now
                for judged in _play_all(unknown, found, command, options):
                    seen[judged.play.flow.to_json()] = judged
                    if not shrink_ends:
                        said = ", ".join(judged.broken) or "held"
                        progress.advance(note=f"{judged.play.flow.describe()}: {said}")
                counted["flows"] += len(unknown)
                broken = [j for f in batch if (j := seen.get(f.to_json())) and j.broken]
            if broken:
                if not shrink_ends:
                    shrink_ends.append(time.monotonic() + options.shrink_seconds)
                    names = ", ".join(broken[0].broken)
                    progress.advance(0, note=f"broken ({names}); shrinking the flow")
                raise _Counterexample(min(broken, key=lambda j: len(j.play.flow.to_json())))

        try:
            search()
        except _Counterexample as found_one:
            return FuzzOutcome(counted["flows"], chosen_seed, found_one.judged)
    return FuzzOutcome(counted["flows"], chosen_seed, None)
