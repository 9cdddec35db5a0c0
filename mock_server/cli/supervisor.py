"""``ipmock serve --workers N``: several uvicorn processes on one socket, each building its
app from the IPMOCK_* variables it inherits."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from starlette.applications import Starlette

from mock_server.cli.serve import banner, prepare_to_serve, url
from mock_server.scenarios import ScenarioBook
from mock_server.settings import Settings


def app_from_environ() -> Starlette:
    """The app of each worker process: settings from IPMOCK_*."""
    from mock_server.http.app import create_app

    app = create_app(Settings.from_environ())
    prepare_to_serve()
    return app


def serve_workers(
    settings: Settings,
    book: ScenarioBook,
    backend: str,
    options: dict[str, Any],
    sock: socket.socket,
    *,
    seed_drawn: bool = False,
) -> int:
    """Run ``settings.workers`` processes until SIGINT/SIGTERM; the banner once every worker
    answers."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class Workers(Multiprocess):
        def init_processes(self) -> None:
            super().init_processes()
            timeout = self.config.timeout_worker_healthcheck * 6
            if all(p.wait_until_ready(timeout, self.should_exit) for p in self.processes):
                print(
                    banner(settings, book, url(sock), backend, seed_drawn=seed_drawn),
                    flush=True,
                )
            else:
                logging.getLogger("uvicorn.error").error("a worker did not start; stopping")
                self.should_exit.set()

    os.environ.update(settings.to_environ())
    config = uvicorn.Config(
        "mock_server.cli.supervisor:app_from_environ",
        factory=True,
        workers=settings.workers,
        **options,
    )
    Workers(config, sockets=[sock]).run()
    return 0
