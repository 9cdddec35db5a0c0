"""The fixtures' clock helpers: set_time (epoch seconds or ISO 8601, back too), freeze and
unfreeze, in process (ipmock) and over the admin API of a real server (ipmock_server)."""

from __future__ import annotations

import time

import pytest

from contract_tests.inprocess import MockHarness
from contract_tests.server import RunningMock

SUBMIT = "/sdxl/text2image/v1"
BODY = {"prompt": "a cat", "width": 64, "height": 64}


def test_the_harness_clock_is_set_and_frozen(ipmock: MockHarness) -> None:
    ipmock.set_time("2030-01-01T00:00:00Z")
    assert ipmock.now() == 1_893_456_000.0
    ipmock.set_time(86_400)
    assert ipmock.now() == 86_400.0
    ipmock.freeze()
    ipmock.advance(5)  # moving still moves a frozen clock
    assert ipmock.now() == 86_405.0
    ipmock.unfreeze()
    assert ipmock.now() == 86_405.0


def test_a_timed_job_follows_the_harness_clock(ipmock: MockHarness) -> None:
    key = "test_pending-10s-then-success"
    with ipmock.client(api_key=key) as http:
        job_id = http.post(SUBMIT, json=BODY).json()["id"]
        ipmock.set_time(ipmock.now() + 11)
        assert http.get(f"{SUBMIT}/status/{job_id}").json()["status"] == "SUCCESS"


@pytest.mark.parametrize("bad", ["soon", "2030-01-01T00:00:00", float("nan"), -1.0])
def test_the_harness_refuses_what_is_not_a_time(ipmock: MockHarness, bad: float | str) -> None:
    before = ipmock.now()
    with pytest.raises(ValueError, match="must be seconds since the epoch"):
        ipmock.set_time(bad)
    assert ipmock.now() == before


@pytest.mark.socket
def test_a_served_clock_is_set_and_frozen(ipmock_server: RunningMock) -> None:
    ipmock_server.set_time("2030-01-01T00:00:00Z")
    ipmock_server.freeze()
    first = ipmock_server.now()
    time.sleep(0.05)  # wall time passes; the frozen clock does not
    assert ipmock_server.now() == first
    assert 1_893_456_000.0 <= first < 1_893_456_000.0 + 60
    ipmock_server.unfreeze()
    time.sleep(0.05)
    assert ipmock_server.now() > first
