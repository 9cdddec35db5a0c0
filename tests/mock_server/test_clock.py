"""The mock's clock: set to a time (back too), frozen and unfrozen, moved only forward,
in one process and shared by workers through Redis; non-finite or out-of-range values
refused."""

from __future__ import annotations

import math

import pytest

from mock_server.clock import LATEST, Clock, parse_time
from mock_server.state.redis import RedisState

pytestmark = pytest.mark.anyio

START = 1_000_000.0


class Wall:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.time = START

    def __call__(self) -> float:
        return self.time


async def test_set_moves_to_the_time_forward_or_back() -> None:
    wall = Wall()
    clock = Clock(wall)
    await clock.set(START + 3600)
    assert clock.now() == START + 3600
    wall.time += 5
    assert clock.now() == START + 3605  # it runs on from there
    await clock.set(10.0)
    assert clock.now() == 10.0 and clock.offset == 10.0 - wall.time


async def test_a_frozen_clock_stands_still_until_unfrozen() -> None:
    wall = Wall()
    clock = Clock(wall)
    await clock.freeze()
    assert clock.frozen
    wall.time += 100
    assert clock.now() == START
    await clock.move(30)  # moving and setting still move it, and it stays frozen
    assert clock.now() == START + 30
    await clock.set(START + 500)
    wall.time += 100
    assert (clock.now(), clock.frozen) == (START + 500, True)
    await clock.unfreeze()
    assert (clock.now(), clock.frozen) == (START + 500, False)  # no jump to wall time
    wall.time += 7
    assert clock.now() == START + 507


async def test_freezing_twice_and_unfreezing_a_running_clock_change_nothing() -> None:
    wall = Wall()
    clock = Clock(wall)
    await clock.unfreeze()
    assert clock.now() == START
    await clock.freeze()
    wall.time += 10
    await clock.freeze()
    assert clock.now() == START


async def test_reset_lets_a_frozen_clock_run_at_wall_time() -> None:
    wall = Wall()
    clock = Clock(wall)
    await clock.set(5.0)
    await clock.freeze()
    await clock.reset()
    assert (clock.now(), clock.frozen, clock.offset) == (START, False, 0.0)


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf])
async def test_moving_back_or_by_no_number_is_refused(seconds: float) -> None:
    clock = Clock(Wall())
    with pytest.raises(ValueError, match="the clock"):
        await clock.move(seconds)
    with pytest.raises(ValueError, match="the clock"):
        clock.advance(seconds)
    assert clock.now() == START


@pytest.mark.parametrize("at", [-1.0, math.nan, math.inf, -math.inf, LATEST + 1])
async def test_a_time_that_is_not_one_is_refused(at: float) -> None:
    clock = Clock(Wall())
    with pytest.raises(ValueError, match=r"seconds since the epoch from 0 to 253402300799"):
        await clock.set(at)
    assert clock.now() == START


async def test_the_limits_are_times() -> None:
    clock = Clock(Wall())
    await clock.set(0.0)
    assert clock.now() == 0.0
    await clock.set(LATEST)
    assert clock.now() == LATEST


async def test_a_shared_clock_freezes_and_is_set_for_every_worker(redis_url: str) -> None:
    wall = Wall()
    one, two = (
        RedisState.open(redis_url, prefix="clock-test:"),
        RedisState.open(redis_url, prefix="clock-test:"),
    )
    try:
        first = Clock(wall, shared=one.clock_offset)
        second = Clock(wall, shared=two.clock_offset)
        await first.reset()
        await first.set(START + 100)
        await second.sync()
        assert second.now() == START + 100
        await first.freeze()
        wall.time += 50
        await second.sync()
        assert (second.now(), second.frozen) == (START + 100, True)
        await second.move(20)  # a frozen shared clock moves for all, frozen still
        await first.sync()
        assert (first.now(), first.frozen) == (START + 120, True)
        await second.unfreeze()
        wall.time += 3
        await first.sync()
        assert (first.now(), first.frozen) == (START + 123, False)
        await first.set(START)  # back, for all
        await second.sync()
        assert second.now() == START
        await second.freeze()
        await first.reset()
        await second.sync()
        assert (second.now(), second.frozen) == (wall.time, False)
    finally:
        await one.client.aclose()
        await two.client.aclose()


def test_a_long_time_text_is_echoed_shortened_with_its_length() -> None:
    with pytest.raises(ValueError, match=r"got \"2026-xxxxxxxxxx+\.\.\. \(500 characters\)\"$"):
        parse_time("2026-" + "x" * 495)
