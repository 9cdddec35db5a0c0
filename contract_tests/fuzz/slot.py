"""One fuzzing slot: a mock served on 127.0.0.1 for its lifetime, playing one flow at a
time to the client command, and what each play left (``Play``)."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from contract_tests.flows import Flow
from contract_tests.fuzz.process import ClientExit, Protocol, run_client
from contract_tests.server import RunningMock, running_server
from mock_server.cli.fuzz import PROTOCOL_VARIABLES

_FETCH_TRIES = 4
"""Tries to fetch one served image for the comparison: a flow faults at most two
download requests, and the client may have left them unspent."""


@dataclass(frozen=True)
class Play:
    """One flow played to the client: the flow, how the client ended, the journal of its
    exchanges (oldest first), and the images the mock served for its SUCCESS answers (by
    download URL; None where the mock would not give one back)."""

    flow: Flow
    api_key: str
    exit: ClientExit
    exchanges: list[dict[str, Any]]
    served: dict[str, bytes | None]


class Slot:
    """A served mock (its own ``ipmock serve``, reset before each flow) and the command's
    runs on it, one at a time."""

    def __init__(self, mock: RunningMock, number: int, work: Path, base_env: Mapping[str, str]):
        self.mock, self.number, self.work, self.base_env = mock, number, work, base_env
        self._plays = itertools.count(1)

    def play(
        self,
        flow: Flow,
        command: Sequence[str],
        *,
        poll_floor: float,
        deadline: float,
        cwd: Path | None = None,
    ) -> Play:
        """Reset the mock, queue the flow's scenarios, run the command once under the
        protocol with a key of its own (in ``cwd``), and collect what happened."""
        n = next(self._plays)
        api_key = f"sk-ipmock-fuzz-{self.number}-{n}"
        self.mock.reset()
        self.mock.queue(*(s.to_json() for s in flow.scenarios()))
        out = Path(tempfile.mkdtemp(prefix=f"flow-{n}-", dir=self.work))
        protocol = Protocol(self.mock.url, api_key, flow.body(), out, poll_floor, deadline)
        ended = run_client(command, protocol, base_env=self.base_env, cwd=cwd)
        exchanges = self.mock.journal()  # before fetching the served images ourselves
        return Play(flow, api_key, ended, exchanges, _served_images(exchanges))


def _served_images(exchanges: list[dict[str, Any]]) -> dict[str, bytes | None]:
    """The bytes behind every download URL of a SUCCESS answer in ``exchanges``."""
    urls: list[str] = []
    for entry in exchanges:
        answer = entry.get("response_json")
        if isinstance(answer, dict) and answer.get("status") == "SUCCESS":
            urls += [u for u in answer.get("download_urls", []) if u not in urls]
    with httpx.Client(timeout=10.0) as http:
        return {url: _fetch(http, url) for url in urls}


def _fetch(http: httpx.Client, url: str) -> bytes | None:
    for _ in range(_FETCH_TRIES):
        try:
            response = http.get(url)
        except httpx.TransportError:
            continue
        if response.status_code == 200:
            return response.content
    return None


def _server_env() -> dict[str, str]:
    """This process's environment without any IPMOCK_ variable: the fuzzer's mock takes
    every key and plays only the queue, whatever the caller's shell has set."""
    return {k: v for k, v in os.environ.items() if not k.startswith("IPMOCK_")}


def _client_env() -> dict[str, str]:
    """This process's environment less the protocol's variables (each run sets them)."""
    return {k: v for k, v in os.environ.items() if k not in PROTOCOL_VARIABLES}


@contextmanager
def slots(count: int, work: Path) -> Iterator[list[Slot]]:
    """``count`` slots, each its own mock, started side by side (about 2 s each on a busy
    machine) and stopped at the end."""
    with ExitStack() as stack:
        servers = [running_server(base_env=_server_env()) for _ in range(count)]
        with ThreadPoolExecutor(count) as pool:
            starting = [pool.submit(server.__enter__) for server in servers]
            wait(starting)
        for server, started in zip(servers, starting, strict=True):
            if started.exception() is None:
                stack.push(server.__exit__)  # each started one is stopped, whatever fails
        urls = [started.result() for started in starting]  # the first failure, raised
        found = []
        for number, url in enumerate(urls, start=1):
            mock = RunningMock(url)
            stack.callback(mock.close)
            found.append(Slot(mock, number, work, _client_env()))
        yield found
