"""`ipmock serve --workers 2` (mock_server.cli.supervisor) on a real Redis: a worker that
dies is replaced while the others answer, and SIGTERM stops the supervisor and every
worker, exit status 0."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.socket, pytest.mark.redis]

IPMOCK_SERVE = [sys.executable, "-m", "mock_server.cli", "serve", "--host", "127.0.0.1"]
IPMOCK_SERVE += ["--port", "0"]
TIMEOUT_S = 60.0
BODY = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64}


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def _workers(pid: int) -> set[int]:
    """The supervisor's worker processes (multiprocessing's resource tracker left out)."""
    found = set()
    for child in _children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"resource_tracker" not in command:
            found.add(child)
    return found


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {TIMEOUT_S:g} s: {what}")


def test_a_dead_worker_is_replaced_and_sigterm_stops_them_all(redis_url: str) -> None:
    process = subprocess.Popen(
        [*IPMOCK_SERVE, "--store", redis_url, "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # a group of its own: a failing test stops every worker too
    )
    assert process.stdout is not None
    try:
        url = ""
        for line in process.stdout:
            if match := re.search(r"serving .* at (http://\S+)", line):
                url = match.group(1)
                break
        assert url, "ipmock serve --workers 2 did not start"
        first = _workers(process.pid)
        assert len(first) == 2, first
        dead = min(first)
        os.kill(dead, signal.SIGKILL)
        _wait_for(lambda: len(_workers(process.pid) - {dead}) == 2, "a worker in its place")
        with httpx.Client(base_url=url, headers={"API-Key": "sk-workers"}, timeout=10) as client:
            for _ in range(5):  # answered whichever worker takes the connection
                assert client.post("/sdxl/text2image/v1", json=BODY).status_code == 202
        workers = _workers(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT_S) == 0
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"worker {pid} is left"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # nothing, when all went well
        process.wait()
        output = process.stdout.read()
        process.stdout.close()
    assert f"worker process {dead} exited" in output, output
    assert "Traceback" not in output, output


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True
