"""Servers other than ipmock (the baseline app, Prism, WireMock, the CPython ceiling),
each run in a session of its own until a block ends. ipmock itself is started by
`contract_tests.server.running_server`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import httpx


def free_ports(count: int) -> list[int]:
    """Distinct free ports: all sockets stay open until every port is chosen."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def stop_group(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Stop a server and every process it started (its own process group)."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    # Whatever the leader started and left behind: the group is this server's alone.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def served(
    name: str,
    command: Sequence[str],
    port: int,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 90.0,
) -> Iterator[tuple[str, int]]:
    """Run a server until the block ends (errors and Ctrl-C included); yield (base, pid).

    Ready once anything answers on the port. The server runs in a session of its own,
    so Ctrl-C in the terminal reaches only this script, which then stops the server's
    whole process group; the pid is that group's id.
    """
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=None if env is None else dict(env),
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + ready_timeout
            while True:
                if process.poll() is not None:
                    output.seek(0)
                    tail = output.read()[-3000:].decode(errors="replace")
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
                try:
                    httpx.get(f"{base}/__bench_ready", timeout=2.0)  # any answer means up
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} did not answer on {base}") from None
                    time.sleep(0.1)
            yield base, process.pid
        finally:
            stop_group(process)
