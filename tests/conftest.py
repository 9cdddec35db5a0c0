"""Shared fixtures: the app in process (httpx.ASGITransport) and a real `ipmock serve`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from mock_server import Clock, Settings, create_app

KEY = "sk-test-client"
PROMPT = "cinematic still woman holding mango juice"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> Clock:
    """A clock frozen at t=1,000,000 that only the test moves."""
    return Clock(source=lambda: 1_000_000.0, virtual=True)


@pytest.fixture
def make_client(clock: Clock) -> Callable[..., httpx.AsyncClient]:
    """Build an in-process client for an app with the given Settings fields."""

    def make(**settings: object) -> httpx.AsyncClient:
        app = create_app(Settings(**settings), clock=clock)  # type: ignore[arg-type]
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://mock.test",
            headers={"API-Key": KEY},
        )

    return make


@pytest.fixture
async def client(make_client: Callable[..., httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as c:
        yield c


_URL = re.compile(r"serving .* at (http://\S+)")


@contextmanager
def running_server(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start `ipmock serve --port 0 ARGS` on 127.0.0.1; yield its base URL; stop it."""
    command = [
        sys.executable,
        "-m",
        "mock_server.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *args,
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    lines: list[str] = []
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if not found and (m := _URL.search(line)):
                found.append(m.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(30) or not found:
            raise RuntimeError("ipmock serve did not start:\n" + "".join(lines))
        yield found[0]
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """One real `ipmock serve` on 127.0.0.1 for the whole session (default settings)."""
    with running_server() as url:
        yield url


REPO = Path(__file__).resolve().parent.parent
