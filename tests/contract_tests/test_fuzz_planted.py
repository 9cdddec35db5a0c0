"""Each planted bug, played a short flow by ``ipmock fuzz``'s slot, is caught by the
property it breaks; the careful planted client holds them all; a client that hangs,
floods its output, writes junk or dies by a signal is judged, never a crash."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract_tests.flows import Flow
from contract_tests.fuzz.judging import Judged, judge_play
from contract_tests.fuzz.process import OUTPUT_CAP
from contract_tests.fuzz.slot import Slot, slots
from mock_server.faults import Fault
from tests.conftest import REPO
from tests.support.planted_clients import BUGS, PROCESS_BUGS

pytestmark = pytest.mark.socket

FLOOR, DEADLINE = 0.5, 3.0


@pytest.fixture(scope="module")
def slot() -> Iterator[Slot]:
    with tempfile.TemporaryDirectory() as work, slots(1, Path(work)) as [one]:
        yield one


def _play(slot: Slot, bug: str, flow: Flow, deadline: float = DEADLINE) -> Judged:
    command = [sys.executable, "-m", "tests.support.planted_clients", bug]
    # The planted clients are found from the repository's root (tests is a package there).
    played = slot.play(flow, command, poll_floor=FLOOR, deadline=deadline, cwd=REPO)
    return judge_play(played, poll_floor=FLOOR, deadline=deadline)


CAUGHT = [
    ("no-pause", Flow(pending_polls=2), "respects_poll_floor"),
    ("ignores-retry-after", Flow(submit_refusals=(("rate-limited", 1),)), "honours_retry_after"),
    ("failure-is-success", Flow(outcome="failure", pending_polls=0), "surfaces_failure"),
    ("crashes-on-429", Flow(submit_refusals=(("rate-limited", 0),)), "returns_every_sample"),
    (
        "resubmits-on-poll-error",
        Flow(faults=(Fault(1, "server-error"),)),
        "submits_once",
    ),
    ("first-image-only", Flow(samples=2, pending_polls=0), "fetches_every_image"),
    ("drops-key-on-polls", Flow(), "sends_its_key"),
    ("junk-images", Flow(pending_polls=0), "writes_served_images"),
    ("dies-by-signal", Flow(), "returns_every_sample"),
]


def test_every_planted_bug_has_a_case() -> None:
    assert {bug for bug, _, _ in CAUGHT} | {"careful", "hangs", "floods"} == set(BUGS) | set(
        PROCESS_BUGS
    )


@pytest.mark.parametrize(("bug", "flow", "caught_by"), CAUGHT, ids=[c[0] for c in CAUGHT])
def test_a_planted_bug_is_caught_by_its_property(
    slot: Slot, bug: str, flow: Flow, caught_by: str
) -> None:
    judged = _play(slot, bug, flow)
    assert caught_by in judged.broken, (bug, judged.verdicts)


def test_the_careful_client_holds_on_a_rough_flow(slot: Slot) -> None:
    flow = Flow(
        submit_refusals=(("busy", 1),),
        faults=(Fault(1, "server-error"), Fault(1, "drop", on="download")),
        samples=2,
    )
    judged = _play(slot, "careful", flow, deadline=8.0)
    assert judged.play.exit.succeeded, judged.play.exit.stderr_tail
    assert judged.broken == {}
    assert judged.verdicts["writes_served_images"].state == "held"


def test_the_careful_client_surfaces_a_failure(slot: Slot) -> None:
    judged = _play(slot, "careful", Flow(outcome="failure"))
    assert judged.play.exit.returncode == 1
    assert judged.broken == {} and judged.verdicts["surfaces_failure"].state == "held"


def test_a_hanging_client_is_killed_and_judged(slot: Slot) -> None:
    judged = _play(slot, "hangs", Flow(), deadline=1.0)
    assert judged.play.exit.killed_after is not None
    assert "finishes" in judged.broken
    assert "killed" in judged.broken["finishes"].why


def test_a_flooding_client_is_judged_on_what_it_did(slot: Slot) -> None:
    judged = _play(slot, "floods", Flow())
    ended = judged.play.exit
    assert ended.printed >= 16 * 1024 * 1024
    assert len(ended.stdout_tail) <= OUTPUT_CAP and len(ended.stderr_tail) <= OUTPUT_CAP
    assert judged.broken == {}, judged.verdicts


def test_a_client_killed_by_a_signal_is_said_so(slot: Slot) -> None:
    judged = _play(slot, "dies-by-signal", Flow())
    assert judged.play.exit.ending() == "killed by SIGKILL"
    assert "killed by SIGKILL" in judged.broken["returns_every_sample"].why
