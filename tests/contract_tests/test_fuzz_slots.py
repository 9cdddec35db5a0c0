"""contract_tests.fuzz.slot: ``--jobs 2`` plays two flows side by side, each on a mock of
its own with a key of its own, so each play's journal holds its own client's exchanges
only; a slot's mock is reset between flows; the images served are fetched back."""

from __future__ import annotations

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from contract_tests.flows import Flow
from contract_tests.fuzz.slot import Play, Slot, slots
from mock_server.report import client_id
from tests.conftest import REPO

pytestmark = pytest.mark.socket

CAREFUL = [sys.executable, "-m", "tests.support.planted_clients", "careful"]


def _play(slot: Slot, flow: Flow) -> Play:
    return slot.play(flow, CAREFUL, poll_floor=0.5, deadline=3.0, cwd=REPO)


def test_side_by_side_flows_have_their_own_mock_key_and_journal() -> None:
    with tempfile.TemporaryDirectory() as work, slots(2, Path(work)) as both:
        assert both[0].mock.url != both[1].mock.url
        flows = [Flow(samples=2), Flow(pending_polls=2)]
        with ThreadPoolExecutor(2) as pool:
            plays = list(pool.map(_play, both, flows))
        again = _play(both[0], Flow(pending_polls=0))
    keys = {play.api_key for play in [*plays, again]}
    assert len(keys) == 3
    for play in [*plays, again]:
        assert play.exit.succeeded, play.exit.stderr_tail
        keyed = {e["client"] for e in play.exchanges if e["client"] is not None}
        assert keyed == {client_id(play.api_key)}  # downloads carry no key: client null
        assert sum(e["method"] == "POST" for e in play.exchanges) == 1  # reset between flows
    assert len(plays[0].served) == 2 and all(plays[0].served.values())
    assert sum("/status/" in e["path"] for e in plays[1].exchanges) == 3  # 2 PENDING, 1 final
    assert sum("/status/" in e["path"] for e in again.exchanges) == 0
