"""The mock's clock: wall time plus an offset that tests move through the admin API."""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    """Seconds since the epoch, movable forward so tests never sleep."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self.offset = 0.0

    def now(self) -> float:
        return self._source() + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"the clock only moves forward; got {seconds} seconds")
        self.offset += seconds

    def reset(self) -> None:
        self.offset = 0.0
