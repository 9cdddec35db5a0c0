"""The protocol's process side: run a client command with the IPMOCK_* variables, bounded
in time and in what it may print, and collect what it wrote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mock_server.cli.fuzz import PROTOCOL_VARIABLES

OUTPUT_CAP = 64 * 1024
"""Bytes kept of each of the client's streams (the last ones): a client that floods its
output is judged on what it did, and the fuzzer's memory stays bounded."""

FILES_CAP = 100
FILE_CAP = 16 * 1024 * 1024
"""How much of the out folder is read back: a client writing junk is judged on it, the
fuzzer's memory stays bounded (the mock's images are far smaller)."""


@dataclass(frozen=True)
class Protocol:
    """One run's protocol values: where and as whom, what to ask, where to write, and
    what the client is held to."""

    base_url: str
    api_key: str
    request: Mapping[str, Any]
    out: Path
    poll_floor: float
    deadline: float

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with the protocol's variables set (they win over any already set)."""
        values = (
            self.base_url,
            self.api_key,
            json.dumps(self.request),
            str(self.out),
            f"{self.poll_floor:g}",
            f"{self.deadline:g}",
        )
        return {**base, **dict(zip(PROTOCOL_VARIABLES, values, strict=True))}


@dataclass(frozen=True)
class ClientExit:
    """How one client run ended and what it left: its status, the tails of its streams,
    and the files in its out folder (name to bytes)."""

    started_at: float
    """When it was started, in seconds since the epoch (the mock's clock, unmoved)."""
    returncode: int | None
    """The exit status; negative: killed by that signal; None: never ended by itself."""
    killed_after: float | None
    """Seconds after which the fuzzer killed its process group (it ran too long)."""
    stdout_tail: str
    stderr_tail: str
    printed: int
    """Bytes it printed on both streams, kept or not."""
    files: dict[str, bytes]

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and self.killed_after is None

    def ending(self) -> str:
        """How it ended, in words: exit status 1, killed by SIGSEGV, killed by ipmock."""
        if self.killed_after is not None:
            return f"still running after {self.killed_after:g} s: its process group was killed"
        assert self.returncode is not None
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"killed by {name}"
        return f"exit status {self.returncode}"


class _Tail:
    """Drains one stream in a thread, keeping its last OUTPUT_CAP bytes."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.kept = bytearray()
        self.total = 0
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: IO[bytes]) -> None:
        with stream:
            while chunk := os.read(stream.fileno(), OUTPUT_CAP):
                self.total += len(chunk)
                self.kept += chunk
                if len(self.kept) > OUTPUT_CAP:
                    del self.kept[: len(self.kept) - OUTPUT_CAP]

    def text(self, timeout: float) -> str:
        """What it kept, once the stream closed (or ``timeout`` passed)."""
        self._thread.join(timeout)
        return bytes(self.kept).decode("utf-8", "replace")


def run_client(
    command: Sequence[str],
    protocol: Protocol,
    *,
    base_env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ClientExit:
    """Run ``command`` once under ``protocol`` (in ``cwd``, default this process's), in a
    process group of its own, killed whole (SIGKILL) at 3 x the deadline; what it left
    in the out folder is read back."""
    protocol.out.mkdir(parents=True, exist_ok=True)
    limit = 3 * protocol.deadline
    started_at, started = time.time(), time.monotonic()
    process = subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=protocol.environment(os.environ if base_env is None else base_env),
        start_new_session=True,
        cwd=cwd,
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = _Tail(process.stdout), _Tail(process.stderr)
    killed_after: float | None = None
    try:
        process.wait(limit)
    except subprocess.TimeoutExpired:
        killed_after = round(time.monotonic() - started, 2)
    finally:
        # The whole group goes, the leader's leftovers too: nothing outlives its flow.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        returncode = process.wait()
    return ClientExit(
        started_at=started_at,
        returncode=None if killed_after is not None else returncode,
        killed_after=killed_after,
        stdout_tail=out.text(5.0),
        stderr_tail=err.text(5.0),
        printed=out.total + err.total,
        files=_files(protocol.out),
    )


def _files(folder: Path) -> dict[str, bytes]:
    """What the client left in its out folder, by name: the first FILES_CAP names, each
    file's first FILE_CAP + 1 bytes (enough to tell it from any image served; a folder or
    other non-file: empty)."""
    found: dict[str, bytes] = {}
    for path in sorted(folder.iterdir())[:FILES_CAP]:
        if path.is_file():
            with path.open("rb") as file:
                found[path.name] = file.read(FILE_CAP + 1)
        else:
            found[path.name] = b""
    return found
