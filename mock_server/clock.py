"""The mock's clock: wall time plus an offset that tests move through the admin API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Clock:
    """Seconds since the epoch, movable forward so tests never sleep.

    A virtual clock also sleeps by moving forward: a delayed answer then costs the test
    no time at all.
    """

    def __init__(self, source: Callable[[], float] = time.time, *, virtual: bool = False) -> None:
        self._source = source
        self.virtual = virtual
        self.offset = 0.0

    async def sleep(self, seconds: float) -> None:
        if self.virtual:
            self.advance(seconds)
        else:
            await asyncio.sleep(seconds)

    def now(self) -> float:
        return self._source() + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"the clock only moves forward; got {seconds} seconds")
        self.offset += seconds

    def reset(self) -> None:
        self.offset = 0.0
