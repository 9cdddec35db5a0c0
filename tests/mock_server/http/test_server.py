"""ipmock's own server (mock_server.http.server) and ASGI cycle (mock_server.http.cycle)
with small ASGI apps on 127.0.0.1: the lifespan around the connections, a request body
in pieces, the answer's framing, and what a failing app's client gets."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from mock_server.http import server

pytestmark = pytest.mark.socket

TIMEOUT_S = 10.0


class _Served:
    """A server running ``app`` in a thread of its own, and what ``serve`` returned."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.address = self.sock.getsockname()
        self.ready = threading.Event()
        self.returned: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, args=(app,), daemon=True)

    def _main(self, app: Any) -> None:
        async def serve() -> None:
            self._stop = asyncio.Event()
            code = await server.serve(app, self.sock, on_ready=self.ready.set, stop=self._stop)
            self.returned.append(code)

        self._loop.run_until_complete(serve())
        self._loop.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(TIMEOUT_S)
        assert not self._thread.is_alive(), "the server did not stop"
        self.sock.close()


@contextmanager
def _serving(app: Any) -> Iterator[_Served]:
    served = _Served(app)
    served.start()
    try:
        assert served.ready.wait(TIMEOUT_S), "the server did not start"
        yield served
    finally:
        served.stop()


def _exchange(address: tuple[str, int], raw: bytes) -> bytes:
    """Send ``raw``, read until the server closes the connection."""
    with socket.create_connection(address, timeout=TIMEOUT_S) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def _get(path: str = "/", extra: bytes = b"") -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n" % (path.encode(), extra)


async def _answer(send: Send, body: bytes, status: int = 200) -> None:
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Recorder:
    """An app that records its lifespan's events and each request's, and answers the
    events so far."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"]["started"] = True
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self.events.append(f"request with state {scope['state']}")
        await _answer(send, ",".join(self.events).encode())


def test_the_lifespan_starts_before_the_first_request_and_ends_after_the_stop() -> None:
    app = _Recorder()
    with _serving(app) as served:
        answer = _exchange(served.address, _get())
        assert answer.endswith(b"lifespan.startup,request with state {'started': True}")
        assert app.events[-1] != "lifespan.shutdown"
    assert app.events[-1] == "lifespan.shutdown" and served.returned == [0]


def test_a_lifespan_that_fails_to_start_serves_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    served = _Served(app)
    served.start()
    served.stop()
    assert served.returned == [1] and not served.ready.is_set()
    assert "the app did not start: no database" in caplog.text


def test_an_app_without_a_lifespan_is_served() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http", "no lifespan here"
        await _answer(send, b"served")

    with _serving(app) as served:
        assert _exchange(served.address, _get()).endswith(b"\r\n\r\nserved")


async def _echo_pieces(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the size of each body message it received."""
    if scope["type"] != "http":
        return
    sizes = []
    while True:
        message = await receive()
        sizes.append(f"{len(message['body'])}{'+' if message['more_body'] else '.'}")
        if not message["more_body"]:
            break
    await _answer(send, " ".join(sizes).encode())


def test_a_body_in_pieces_reaches_the_app_in_pieces() -> None:
    head = b"POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 10\r\n\r\n"
    with (
        _serving(_echo_pieces) as served,
        socket.create_connection(served.address, timeout=TIMEOUT_S) as sock,
    ):
        sock.sendall(head + b"abcd")
        threading.Event().wait(0.2)  # the app reads the first piece meanwhile
        sock.sendall(b"efghij")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.endswith(b"4+ 6."), received


def test_expect_100_continue_is_answered_when_the_app_reads_the_body() -> None:
    head = (
        b"POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 3\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    with (
        _serving(_echo_pieces) as served,
        socket.create_connection(served.address, timeout=TIMEOUT_S) as sock,
    ):
        sock.sendall(head)
        assert sock.recv(25) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"abc")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(b"3.")


async def _streams(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for piece in (b"one ", b"two ", b"three"):
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def test_an_answer_without_a_length_is_chunked_and_a_head_has_no_body() -> None:
    with _serving(_streams) as served:
        answer = _exchange(served.address, _get())
        head = _exchange(served.address, _get().replace(b"GET", b"HEAD"))
    assert b"\r\ntransfer-encoding: chunked\r\n" in answer
    assert answer.endswith(b"\r\n\r\n4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\n\r\n")
    assert head.endswith(b"\r\n\r\n") and b"transfer-encoding" not in head


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_app_that_fails_gets_a_500_or_a_closed_connection(
    when: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if when == "after":
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("broken app")

    keep_alive = _get().replace(b"Connection: close\r\n", b"")
    with _serving(app) as served:
        answer = _exchange(served.address, keep_alive)  # closed by the server, not the client
    if when == "before":
        assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
        assert answer.endswith(b"connection: close\r\n\r\nInternal Server Error")
    else:
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"0\r\n\r\n" not in answer
    assert "broken app" in caplog.text


def test_pipelined_requests_run_one_at_a_time_in_order() -> None:
    running: list[str] = []
    overlaps: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if running:
            overlaps.append(scope["path"])
        running.append(scope["path"])
        await asyncio.sleep(0.05 if scope["path"] == "/1" else 0)
        running.remove(scope["path"])
        await _answer(send, scope["path"].encode())

    requests = b"".join(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(1, 5)) + _get(
        "/5"
    )
    with _serving(app) as served:
        answer = _exchange(served.address, requests)
    bodies = [part.split(b"\r\n\r\n", 1)[1][:2] for part in answer.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"/1", b"/2", b"/3", b"/4", b"/5"] and overlaps == []


def test_the_scope_carries_the_connection_and_the_proxys_scheme() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        seen.append(dict(scope))
        await _answer(send, b"")

    with _serving(app) as served:
        _exchange(served.address, _get("/a%20b?x=1", b"X-Forwarded-Proto: https\r\n"))
    (scope,) = seen
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/a b", b"/a%20b", b"x=1")
    assert scope["scheme"] == "https" and scope["client"][0] == "127.0.0.1"
    assert scope["server"] == served.address and scope["http_version"] == "1.1"
    transport = scope["extensions"]["ipmock.connection"]["transport"]
    assert hasattr(transport, "abort") and hasattr(transport, "write")
