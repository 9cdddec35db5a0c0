"""The admin queue: scenarios for the next valid submits, in this process or in Redis."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Protocol

from mock_server.scenarios import Scenario


class ScenarioQueue(Protocol):
    async def push(self, scenarios: Iterable[Scenario]) -> None: ...
    async def pop(self) -> Scenario | None:
        """The next queued scenario (taken off the queue), or None when it is empty."""
        ...

    async def queued(self) -> list[Scenario]: ...
    async def clear(self) -> None: ...


class MemoryQueue:
    def __init__(self) -> None:
        self.waiting: deque[Scenario] = deque()

    async def push(self, scenarios: Iterable[Scenario]) -> None:
        self.waiting.extend(scenarios)

    async def pop(self) -> Scenario | None:
        return self.waiting.popleft() if self.waiting else None

    async def queued(self) -> list[Scenario]:
        return list(self.waiting)

    async def clear(self) -> None:
        self.waiting.clear()
