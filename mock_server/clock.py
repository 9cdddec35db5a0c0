"""The mock's clock: wall time plus an offset that tests move through the admin API, or a
time it is frozen at."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mock_server.words import shorten

if TYPE_CHECKING:
    from mock_server.state import SharedOffset

LATEST = 253_402_300_799.0
"""The last second a clock may be set to: 9999-12-31T23:59:59Z (an ISO time still)."""


class Clock:
    """Seconds since the epoch, movable forward so tests never sleep, settable to a given
    time, and freezable.

    A virtual clock also sleeps by moving forward: a delayed answer then costs the test
    no time at all. With a ``shared`` offset, ``sync`` (at the start of each request)
    takes the offset and the frozen time other workers set, and ``move``, ``set`` and
    ``freeze`` change them for all of them.

    ``advance`` and ``move`` only go forward. ``set`` may go back: jobs keep the times
    they were stamped with, so after going back a time scenario waits longer and a
    download URL lives longer (nothing is expired by it); ``POST /__mock/reset`` starts
    over from wall time.
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
        self._frozen: float | None = None  # the time it stands at (shared: as last read)

    @property
    def offset(self) -> float:
        """How far the clock is from wall time (frozen: at this moment)."""
        if self._frozen is not None:
            return self._frozen + self._local - self._source()
        return self._local + self._shared

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def now(self) -> float:
        if self._frozen is not None:
            return self._frozen + self._local
        return self._source() + self._local + self._shared

    def advance(self, seconds: float) -> None:
        """Move this process's clock forward (in-process tests)."""
        _forward(seconds)
        self._local += seconds

    async def sync(self) -> None:
        if self.shared is not None:
            self._shared, self._frozen = await self.shared.read()

    async def move(self, seconds: float) -> None:
        """Move the clock forward, for every worker sharing it (frozen, it stays frozen
        at the later time)."""
        _forward(seconds)
        if self.shared is None:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._local += seconds
        elif self._frozen is not None:
            self._frozen = await self.shared.add_frozen(seconds)
        else:
            self._shared = await self.shared.add(seconds)

    async def set(self, at: float) -> None:
        """Set the clock to ``at`` (seconds since the epoch), forward or back; frozen, it
        stays frozen there."""
        _a_time(at)
        if self._frozen is not None:
            await self._freeze_at(at - self._local)
        elif self.shared is None:
            self._local += at - self.now()
        else:
            self._shared = await self.shared.add(at - self.now())

    async def freeze(self) -> None:
        """Stop the clock where it is, until ``unfreeze``; ``move`` and ``set`` still
        move it."""
        if self._frozen is None:
            await self._freeze_at(self.now() - self._local)

    async def unfreeze(self) -> None:
        """Let the clock run on from where it stood (no jump to wall time)."""
        if self._frozen is None:
            return
        stood = self.now()
        if self.shared is None:
            self._frozen = None
            self._local += stood - self.now()
        else:
            await self.shared.freeze(None)
            self._frozen = None
            self._shared = await self.shared.add(stood - self.now())

    async def _freeze_at(self, at: float) -> None:
        self._frozen = at
        if self.shared is not None:
            await self.shared.freeze(at)

    async def reset(self) -> None:
        self._local = self._shared = 0.0
        self._frozen = None
        if self.shared is not None:
            await self.shared.reset()

    async def sleep(self, seconds: float) -> None:
        if self.virtual:
            await self.move(seconds)
        else:
            await asyncio.sleep(seconds)


def _forward(seconds: float) -> None:
    if not math.isfinite(seconds):
        raise ValueError(f"the clock moves by a finite number of seconds; got {seconds}")
    if seconds < 0:
        raise ValueError(f"the clock only moves forward; got {seconds} seconds")


TIME_FORMS = (
    "seconds since the epoch (0 to 253402300799) or an ISO 8601 time with its zone, such "
    'as "2030-01-01T00:00:00Z"'
)


def parse_time(value: object) -> float:
    """A time to set the clock to: seconds since the epoch, or an ISO 8601 text with its
    zone; ValueError saying what is allowed."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            zone = " (no zone: add Z or +00:00)" if parsed is not None else ""
            raise ValueError(f"must be {TIME_FORMS}, got {json.dumps(shorten(value))}{zone}")
        value = parsed.timestamp()
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not (0 <= value <= LATEST)  # NaN and infinities fail too
    ):
        shown = repr(value) if not isinstance(value, int | float) else json.dumps(value)
        raise ValueError(f"must be {TIME_FORMS}, got {shown}")
    return float(value)


def iso(at: float) -> str:
    """A clock time as ISO 8601 in UTC, Z for the zone."""
    text = datetime.fromtimestamp(min(max(at, 0.0), LATEST), UTC).isoformat()
    return text.replace("+00:00", "Z")


def _a_time(at: float) -> None:
    if not (math.isfinite(at) and 0 <= at <= LATEST):
        raise ValueError(
            f"the clock is set to seconds since the epoch from 0 to {LATEST:.0f} "
            f"(9999-12-31T23:59:59Z); got {at}"
        )
