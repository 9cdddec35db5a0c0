"""A transport that records what a protocol asks of it (writes, closing, pausing reads),
for driving ``ipmock serve``'s HTTP protocol on one connection without a socket."""

from __future__ import annotations

import asyncio
from typing import Any

POLL = b"GET /sdxl/text2image/v1/status/nope HTTP/1.1\r\nHost: mock\r\nAPI-Key: k\r\n\r\n"
"""A poll of a job that does not exist: answered in place, a 404."""


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.reading = True
        self.closed = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )
