"""``ipmock serve --workers N``: N processes serving one socket, each building its app from
the IPMOCK_* variables it inherits; one that dies is replaced, and a stop stops them all."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from multiprocessing.connection import wait
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.synchronize import Event
from typing import NamedTuple

from starlette.applications import Starlette

from mock_server.cli.serve import banner, prepare_to_serve, url
from mock_server.http import server as http_server
from mock_server.scenarios import ScenarioBook
from mock_server.settings import Settings

log = logging.getLogger("ipmock.server")

START_S = 60.0
"""How long every worker may take to answer, at the start."""
_STOP_S = http_server.GRACEFUL_S + 5.0


def app_from_environ() -> Starlette:
    """The app of each worker process: settings from IPMOCK_*."""
    from mock_server.http.app import create_app

    app = create_app(Settings.from_environ())
    prepare_to_serve()
    return app


def _work(sock: socket.socket, ready: Event) -> None:
    """A worker process: serve the inherited socket until SIGINT/SIGTERM."""
    http_server.configure_logging(Settings.from_environ().log_level)
    raise SystemExit(http_server.run(app_from_environ(), sock, on_ready=ready.set))


class _Worker(NamedTuple):
    process: SpawnProcess
    ready: Event


def _start(context: SpawnContext, sock: socket.socket) -> _Worker:
    ready = context.Event()
    process = context.Process(target=_work, args=(sock, ready), name="ipmock worker")
    process.start()
    return _Worker(process, ready)


def serve_workers(
    settings: Settings,
    book: ScenarioBook,
    backend: str,
    sock: socket.socket,
    *,
    seed_drawn: bool = False,
) -> int:
    """Run ``settings.workers`` processes until SIGINT/SIGTERM; the banner once every
    worker answers. 0, or 1 when a worker did not start."""
    os.environ.update(settings.to_environ())
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    workers: list[_Worker] = []
    try:
        workers = [_start(context, sock) for _ in range(settings.workers)]
        ready = _all_ready(workers, stop)
        if stop.is_set():
            return 0
        if not ready:
            log.error("a worker did not start; stopping")
            return 1
        print(banner(settings, book, url(sock), backend, seed_drawn=seed_drawn), flush=True)
        while not stop.is_set():
            wait([w.process.sentinel for w in workers], timeout=0.5)
            for i, worker in enumerate(workers):
                if worker.process.is_alive() or stop.is_set():
                    continue
                if not worker.ready.is_set():  # it died starting: another would too
                    log.error("a worker did not start; stopping")
                    return 1
                log.warning(
                    "worker process %d exited (code %s); starting another",
                    worker.process.pid,
                    worker.process.exitcode,
                )
                workers[i] = _start(context, sock)
        return 0
    finally:
        _stop_all(workers)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()


def _all_ready(workers: list[_Worker], stop: threading.Event) -> bool:
    """Wait (bounded) until every worker answers; False if one died or took too long."""
    for worker in workers:
        waited = 0.0
        while not worker.ready.wait(0.1):
            waited += 0.1
            if stop.is_set() or not worker.process.is_alive() or waited >= START_S:
                return False
    return True


def _stop_all(workers: list[_Worker]) -> None:
    """SIGTERM to each worker (they finish what they answer), SIGKILL to one that
    lingers past the graceful stop."""
    for worker in workers:
        if worker.process.is_alive():
            worker.process.terminate()
    for worker in workers:
        worker.process.join(_STOP_S)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
