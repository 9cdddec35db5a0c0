"""One ``ipmock serve`` process's server: the app's ASGI lifespan, ipmock's HTTP protocol
(``mock_server.http.protocol``) on a bound socket with asyncio's own server
(``loop.create_server``), and a graceful stop on SIGINT or SIGTERM.

A stop closes the socket, closes idle connections, lets each answer being made finish
(its connection then closes) for up to ``GRACEFUL_S``, cancels what is left, and ends the
app's lifespan. A second SIGINT skips the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message

from mock_server.http.inplace import InPlace
from mock_server.http.protocol import KEEP_ALIVE_S, HttpProtocol, ServerState

log = logging.getLogger("ipmock.server")

GRACEFUL_S = 10.0
"""How long a stop waits for answers being made before it cancels them."""
_LIFESPAN_S = 30.0
"""How long the app's lifespan may take to start or to end."""
_BACKLOG = 2048


def configure_logging(level: str) -> None:
    """ipmock's log lines on stderr at ``level``; the access log (``ipmock.access``, one
    line per request answered in an ASGI cycle) only at ``debug``."""
    logger = logging.getLogger("ipmock")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logging.getLogger("ipmock.access").setLevel("DEBUG" if level == "debug" else "WARNING")


def run(
    app: ASGIApp,
    sock: socket.socket,
    *,
    on_ready: Callable[[], None] = lambda: None,
    keep_alive_s: float = KEEP_ALIVE_S,
) -> int:
    """Serve ``app`` on the bound socket ``sock`` until SIGINT or SIGTERM, on uvloop when
    it is installed; ``on_ready`` is called once it answers. 0, or 1 when the app's
    lifespan did not start."""
    loop_factory: Any = None
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(serve(app, sock, on_ready=on_ready, keep_alive_s=keep_alive_s))


async def serve(
    app: ASGIApp,
    sock: socket.socket,
    *,
    on_ready: Callable[[], None] = lambda: None,
    keep_alive_s: float = KEEP_ALIVE_S,
    stop: asyncio.Event | None = None,
) -> int:
    """``run``'s server on the running loop; it stops when ``stop`` is set too."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event() if stop is None else stop
    lifespan = _Lifespan(app)
    if not await lifespan.startup():
        log.error("the app did not start: %s", lifespan.failure)
        return 1
    access_log = logging.getLogger("ipmock.access").isEnabledFor(logging.INFO)
    state = ServerState(
        app,
        app_state=lifespan.state,
        in_place=None if access_log else InPlace.for_app(app),  # the access log: cycles
        keep_alive_s=keep_alive_s,
    )
    server = await loop.create_server(lambda: HttpProtocol(state), sock=sock, backlog=_BACKLOG)
    force = asyncio.Event()
    handled = _handle_signals(loop, stop, force)
    ticking = _Ticker(loop, state)
    try:
        on_ready()
        await stop.wait()
        server.close()
        await _finish_connections(state, force)
    finally:
        ticking.cancel()
        for sig in handled:
            loop.remove_signal_handler(sig)
        await lifespan.shutdown()
    return 0


def _handle_signals(
    loop: asyncio.AbstractEventLoop, stop: asyncio.Event, force: asyncio.Event
) -> list[signal.Signals]:
    """SIGINT and SIGTERM stop the server; a second SIGINT forces it. Only the main
    thread can handle signals: elsewhere (a test's thread) only ``stop`` does."""

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set() and sig == signal.SIGINT:
            force.set()
        stop.set()

    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
            continue
        handled.append(sig)
    return handled


class _Ticker:
    """Renews the server's ``date`` header each second until cancelled."""

    def __init__(self, loop: asyncio.AbstractEventLoop, state: ServerState) -> None:
        self._loop, self._state = loop, state
        self._timer = loop.call_later(1.0, self._tick)

    def _tick(self) -> None:
        self._state.tick()
        self._timer = self._loop.call_later(1.0, self._tick)

    def cancel(self) -> None:
        self._timer.cancel()


async def _finish_connections(state: ServerState, force: asyncio.Event) -> None:
    """Close idle connections, wait (bounded) for answers being made, then cancel them
    and abort what is still open."""
    for connection in list(state.connections):
        connection.shutdown()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GRACEFUL_S
    while (state.connections or state.tasks) and not force.is_set() and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if state.tasks:
        log.warning("stopping: %d answer(s) still being made were cancelled", len(state.tasks))
        for task in list(state.tasks):
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
    for connection in list(state.connections):
        connection.abort()


class _Lifespan:
    """The app's ASGI lifespan: ``startup`` before the first connection, ``shutdown``
    after the last. An app that does not speak it is served without one."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self.state: dict[str, Any] = {}
        self.failure: str | None = None
        self._messages: asyncio.Queue[Message] = asyncio.Queue()
        self._started = asyncio.Event()
        self._ended = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> bool:
        """Whether the app started (or speaks no lifespan)."""
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._messages.put({"type": "lifespan.startup"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._started.wait(), _LIFESPAN_S)
        if not self._started.is_set():
            self.failure = f"its lifespan did not start in {_LIFESPAN_S:g} s"
        return self.failure is None

    async def shutdown(self) -> None:
        if self._task is None or self._task.done():
            return
        await self._messages.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self._ended.wait(), _LIFESPAN_S)
        except TimeoutError:
            log.error("the app's lifespan did not end in %g s", _LIFESPAN_S)
            self._task.cancel()

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self._app(scope, self._messages.get, self._send)
        except Exception as exc:
            if self._started.is_set() and self.failure is None:
                log.error("the app's lifespan failed", exc_info=exc)
            # else: an app without a lifespan (or one that failed starting: said already)
        finally:
            self._started.set()
            self._ended.set()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.failed":
            self.failure = message.get("message") or "its lifespan's startup failed"
        elif kind == "lifespan.shutdown.failed":
            log.error("the app's lifespan failed to end: %s", message.get("message", ""))
        if kind.startswith("lifespan.startup."):
            self._started.set()
        elif kind.startswith("lifespan.shutdown."):
            self._ended.set()
