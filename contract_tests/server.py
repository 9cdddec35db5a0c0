"""A real `ipmock serve` in a subprocess on 127.0.0.1, and its admin API over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

import httpx

from mock_server.contract import STATUS_PREFIX, SUBMIT_PATH
from mock_server.exceptions import IpmockError
from mock_server.state.admin import AdminRefused

_URL = re.compile(r"serving .* at (http://\S+)")


class ServerDidNotStart(IpmockError, RuntimeError):
    """`ipmock serve` exited, or did not announce its URL in time."""


@contextmanager
def running_server(
    *args: str,
    env: dict[str, str] | None = None,
    start_timeout: float = 30.0,
    echo: bool = False,
    output: list[str] | None = None,
    base_env: Mapping[str, str] | None = None,
    new_session: bool = False,
) -> Iterator[str]:
    """Start `ipmock serve --host 127.0.0.1 --port 0 ARGS`, yield its base URL, stop it.

    ``echo`` prints the server's start-up output (and later errors), for servers that
    take minutes to start, such as the reference with full-size weights. ``output``, when
    given, receives every line the server printed, complete once the server has stopped.
    The server's environment is ``base_env`` (default: this process's) updated with
    ``env``. ``new_session`` runs it in a session and process group of its own, stopped
    whole at the end (worker processes included), and out of reach of a terminal's
    Ctrl-C: a benchmark measures that group's CPU time and stops it itself.
    """
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
        env={
            **(os.environ if base_env is None else base_env),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        },
        start_new_session=new_session,
    )
    lines: list[str] = [] if output is None else output
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if not found and (match := _URL.search(line)):
                found.append(match.group(1))
                ready.set()
            if echo and (not found or "Traceback" in line or "ERROR" in line):
                print(f"  server: {line.rstrip()}", flush=True)
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(start_timeout) or not found:
            raise ServerDidNotStart(
                f"ipmock serve did not start (exit {process.poll()}):\n" + "".join(lines[-50:])
            )
        yield found[0]
    finally:
        _stop(process, group=new_session)
        reader.join(10)


def _stop(process: subprocess.Popen[str], *, group: bool) -> None:
    """SIGTERM, then SIGKILL after 10 s; to the whole process group when it has one."""

    def signal_it(sig: signal.Signals) -> None:
        with suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)

    signal_it(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        signal_it(signal.SIGKILL)
        process.wait()
    if group:  # whatever the leader started and left behind: the group is the server's
        signal_it(signal.SIGKILL)


def _refusal(response: httpx.Response) -> AdminRefused:
    """The admin API's refusal as the in-process admin raises it: its message without
    the ``admin API: `` the server puts before it (an answer that is no ipmock refusal:
    its status line)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(error, str):
        error = f"{response.status_code} {response.reason_phrase}: {response.text[:200]}"
    return AdminRefused(
        error.removeprefix("admin API: "),
        status=response.status_code,
        code=code if isinstance(code, str) else "invalid_request",
    )


class RunningMock:
    """A served mock's URL and its admin API, for clients that open their own sockets."""

    def __init__(self, url: str, admin_token: str | None = None) -> None:
        self.url = url
        headers = {"X-Ipmock-Admin-Token": admin_token} if admin_token else {}
        self._admin = httpx.Client(base_url=url, headers=headers, timeout=10.0)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The admin API's answer; AdminRefused with its message when it refuses (4xx)."""
        response = self._admin.request(method, "/__mock/" + path, **kwargs)
        if response.is_client_error:
            raise _refusal(response) from None
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._call("POST", "reset")

    def queue(self, *scenarios: str | dict[str, Any]) -> None:
        self._call("POST", "queue", json={"scenarios": list(scenarios)})

    def advance(self, seconds: float) -> None:
        self._call("POST", "clock", json={"advance": seconds})

    def set_time(self, at: float | str) -> None:
        """Set the mock's clock: seconds since the epoch or an ISO 8601 time with its zone."""
        self._call("POST", "clock", json={"set": at})

    def freeze(self) -> None:
        """Stop the mock's clock (advance and set_time still move it)."""
        self._call("POST", "clock", json={"freeze": True})

    def unfreeze(self) -> None:
        """Let the mock's clock run on from where it stands."""
        self._call("POST", "clock", json={"freeze": False})

    def journal(self, path_prefix: str = "") -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self._call("GET", "journal", params={"path": path_prefix})[
            "entries"
        ]
        return entries

    def submits(self) -> list[dict[str, Any]]:
        return [e for e in self.journal(SUBMIT_PATH) if e["method"] == "POST"]

    def polls(self, job_id: str | None = None) -> list[dict[str, Any]]:
        return self.journal(STATUS_PREFIX + (job_id or ""))

    def jobs(self) -> list[dict[str, Any]]:
        """The stored jobs (``GET /__mock/jobs``): poll counts, scenario."""
        jobs: list[dict[str, Any]] = self._call("GET", "jobs")["jobs"]
        return jobs

    def now(self) -> float:
        """The mock's clock (``GET /__mock/clock``): wall time plus what ``advance`` added."""
        now: float = self._call("GET", "clock")["now"]
        return now

    def close(self) -> None:
        self._admin.close()
