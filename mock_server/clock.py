"""The mock's clock: wall time plus an offset that tests move through the admin API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class SharedOffset(Protocol):
    """Where workers that share state keep the clock's offset (``redis_state``)."""

    async def offset(self) -> float: ...
    async def add(self, seconds: float) -> float: ...
    async def reset(self) -> None: ...


class Clock:
    """Seconds since the epoch, movable forward so tests never sleep.

    A virtual clock also sleeps by moving forward: a delayed answer then costs the test
    no time at all. With a ``shared`` offset, ``sync`` (at the start of each request)
    takes the offset other workers moved, and ``move`` moves it for all of them.
    """

    def __init__(
        self,
        source: Callable[[], float] = time.time,
        *,
        virtual: bool = False,
        shared: SharedOffset | None = None,
    ) -> None:
        self._source = source
        self.virtual = virtual
        self.shared = shared
        self._local = 0.0  # moved by ``advance``: this process only (in-process tests)
        self._shared = 0.0  # the shared offset as last read

    @property
    def offset(self) -> float:
        return self._local + self._shared

    def now(self) -> float:
        return self._source() + self._local + self._shared

    def advance(self, seconds: float) -> None:
        """Move this process's clock forward (in-process tests)."""
        _forward(seconds)
        self._local += seconds

    async def sync(self) -> None:
        if self.shared is not None:
            self._shared = await self.shared.offset()

    async def move(self, seconds: float) -> None:
        """Move the clock forward, for every worker sharing it."""
        _forward(seconds)
        if self.shared is None:
            self._local += seconds
        else:
            self._shared = await self.shared.add(seconds)

    async def reset(self) -> None:
        self._local = self._shared = 0.0
        if self.shared is not None:
            await self.shared.reset()

    async def sleep(self, seconds: float) -> None:
        if self.virtual:
            await self.move(seconds)
        else:
            await asyncio.sleep(seconds)


def _forward(seconds: float) -> None:
    if seconds < 0:
        raise ValueError(f"the clock only moves forward; got {seconds} seconds")
