"""ipmock serve's own HTTP/1.1 protocol (mock_server.http.protocol) over raw sockets to a
real `ipmock serve`: requests the ASGI cycle answers pipelined in order, bodies in pieces,
keep-alive, a client that does not read, bytes that are not HTTP, and a stop on SIGTERM
or SIGINT that finishes the answer being made."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from contract_tests.server import running_server
from mock_server.contract import STATUS_PREFIX, SUBMIT_PATH

SUBMIT, STATUS = SUBMIT_PATH, STATUS_PREFIX
BODY = json.dumps({"prompt": "a lighthouse at dusk", "width": 64, "height": 64}).encode()
CONFIG = """\
[[scenarios]]
name = "slow"
pending_polls = 1
faults = [{ at_request = 1, kind = "delay", seconds = 1.0 }]
"""
TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("protocol") / "ipmock.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def base_url(config: str) -> Iterator[str]:
    with running_server("--config", config) as url:
        yield url


def _connect(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=TIMEOUT_S)


def _request(method: str, path: str, key: str = "test_success", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: mock\r\nAPI-Key: {key}\r\n{extra}\r\n".encode()


def _submit_request(body: bytes = BODY, key: str = "test_success") -> bytes:
    extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return _request("POST", SUBMIT, key, extra) + body


class _Answers:
    """Reads HTTP/1.1 answers (Content-Length or chunked bodies) off one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def next(self, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        head = self._until(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        status = int(status_line.split()[1])
        if method == "HEAD" or status in (204, 304):
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(self._until(b"\r\n"), 16):
                body += self._take(size)
                self._until(b"\r\n")
            self._until(b"\r\n")
            return status, headers, body
        return status, headers, self._take(int(headers["content-length"]))

    def closed(self) -> bool:
        return self.buffer == b"" and self.sock.recv(1) == b""

    def _until(self, end: bytes) -> bytes:
        while end not in self.buffer:
            self._more()
        found, self.buffer = self.buffer.split(end, 1)
        return found

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._more()
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        self.buffer += chunk


@pytest.mark.socket
def test_requests_for_the_asgi_cycle_are_answered_in_order_when_pipelined(
    base_url: str,
) -> None:
    slow = httpx.post(base_url + SUBMIT, content=BODY, headers={"API-Key": "test_slow"})
    slow_id = slow.json()["id"]
    with _connect(base_url) as sock:
        sock.sendall(
            _request("GET", STATUS + slow_id, "test_slow")  # a delay fault: a cycle, 1 s
            + _request("GET", "/openapi.json")
            + _request("HEAD", "/openapi.json")
            + _request("GET", "/__mock/clock")
            + _request("GET", STATUS + slow_id + "?verbose=1", "test_slow")  # the cycle parses
            + _request("GET", "/nowhere")
        )
        answers = _Answers(sock)
        polled = answers.next()
        contract = answers.next()
        head = answers.next("HEAD")
        clock = answers.next()
        again = answers.next()
        missing = answers.next()
    assert (polled[0], json.loads(polled[2])["status"]) == (200, "PENDING")
    assert contract[0] == 200 and json.loads(contract[2])["openapi"].startswith("3.")
    assert head[0] == 200 and head[1]["content-length"] == contract[1]["content-length"]
    assert clock[0] == 200 and "now" in json.loads(clock[2])
    assert (again[0], json.loads(again[2])["status"]) == (200, "SUCCESS")
    assert missing[0] == 404 and json.loads(missing[2])["code"] == "not_found"


@pytest.mark.socket
def test_a_body_sent_in_pieces_is_read_whole(base_url: str) -> None:
    with _connect(base_url) as sock:
        request = _submit_request()
        for i in range(0, len(request), 7):  # the head and the body, split mid-line
            sock.sendall(request[i : i + 7])
            time.sleep(0.002)
        status, _, body = _Answers(sock).next()
    assert (status, json.loads(body)["status"]) == (200, "SUCCESS")


@pytest.mark.socket
def test_a_chunked_body_in_many_chunks_is_read_whole(base_url: str) -> None:
    head = (
        f"POST {SUBMIT} HTTP/1.1\r\nHost: mock\r\nAPI-Key: test_success\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (BODY[:10], BODY[10:11], BODY[11:]))
    with _connect(base_url) as sock:
        sock.sendall(head)
        for i in range(0, len(chunks), 5):
            sock.sendall(chunks[i : i + 5])
            time.sleep(0.002)
        sock.sendall(b"0\r\n\r\n")
        status, _, body = _Answers(sock).next()
    assert (status, json.loads(body)["status"]) == (200, "SUCCESS")


@pytest.mark.socket
def test_a_body_past_the_read_buffer_reaches_the_app_whole(base_url: str) -> None:
    # 300 KB, chunked: more than the 64 KB reading pauses at, so reading pauses and goes on
    prompt = "a lighthouse " * 23_000
    big = json.dumps({"prompt": prompt, "width": 64, "height": 64}).encode()
    head = f"POST {SUBMIT} HTTP/1.1\r\nHost: mock\r\nAPI-Key: test_success\r\n"
    chunked = (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"".join(
        b"%x\r\n%s\r\n" % (len(big[i : i + 4096]), big[i : i + 4096])
        for i in range(0, len(big), 4096)
    )
    with _connect(base_url) as sock:
        sock.sendall(chunked + b"0\r\n\r\n" + _submit_request())
        answers = _Answers(sock)
        status, _, body = answers.next()
        after = answers.next()
    answer = json.loads(body)
    # the whole prompt was read: validation names its length, not a JSON error
    assert status == 400 and answer["code"] == "invalid_request", answer
    assert "prompt" in answer["error"] and "JSON" not in answer["error"], answer
    assert after[0] == 200


@pytest.mark.socket
def test_one_connection_serves_request_after_request(base_url: str) -> None:
    with _connect(base_url) as sock:
        answers = _Answers(sock)
        for i in range(30):
            if i % 3 == 0:
                sock.sendall(_submit_request())
            elif i % 3 == 1:
                sock.sendall(_request("GET", "/openapi.json"))
            else:
                sock.sendall(_request("GET", "/__mock/jobs"))
            assert answers.next()[0] == 200, i
            if i == 15:
                time.sleep(1.0)  # idle, but for less than the keep-alive timeout
        sock.sendall(_request("GET", "/openapi.json", extra="Connection: close\r\n"))
        status, headers, _ = answers.next()
        assert (status, headers["connection"]) == (200, "close")
        assert answers.closed()


@pytest.mark.socket
def test_a_client_that_reads_late_gets_every_answer_whole(base_url: str) -> None:
    # Some 8 MB of answers while the client reads nothing for a while: more than the
    # sockets buffer, so the server's writing pauses (test_protocol_flow.py sees it do so)
    contract = httpx.get(base_url + "/openapi.json").content
    count = 8 * 1024 * 1024 // len(contract) + 1
    with _connect(base_url) as sock:
        sock.sendall(_request("GET", "/openapi.json") * count)
        time.sleep(0.5)
        answers = _Answers(sock)
        bodies = [answers.next()[2] for _ in range(count)]
    assert bodies == [contract] * count


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /openapi.json HTTP/1.1\r\nHost: mock\r\nBad Header: x\r\n\r\n",
        b"GET /openapi.json HTTP/1.1\r\nHost: mock\r\nContent-Length: 1\r\nContent-Length: 2"
        b"\r\n\r\nab",
        b"GET /openapi.json HTTP/9.9\r\nHost: mock\r\n\r\n",
    ],
    ids=["header-name", "two-lengths", "version"],
)
@pytest.mark.socket
def test_bytes_that_are_not_http_after_a_good_request_end_the_connection(
    base_url: str, raw: bytes
) -> None:
    with _connect(base_url) as sock:
        sock.sendall(_request("GET", "/openapi.json") + raw)
        answers = _Answers(sock)
        good, bad = answers.next(), answers.next()
        assert answers.closed()
    assert good[0] == 200
    assert (bad[0], bad[1]["connection"]) == (400, "close")
    assert json.loads(bad[2])["code"] == "invalid_request"


# -- stopping ----------------------------------------------------------------------


def _start(
    *args: str, python: tuple[str, ...] = ("-m", "mock_server.cli")
) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, *python, "serve", "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if match := re.search(r"serving .* at (http://\S+)", line):
            return process, match.group(1)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"ipmock serve did not start: exit {process.wait()}")


def _rest_of_output(process: subprocess.Popen[str]) -> str:
    """What a served process printed after its start line; killed first if still running."""
    if process.poll() is None:
        process.kill()
        process.wait()
    assert process.stdout is not None
    with process.stdout:
        return process.stdout.read()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.socket
def test_a_stop_finishes_the_answer_being_made_then_exits(config: str, sig: int) -> None:
    process, url = _start("--config", config)
    try:
        job = httpx.post(url + SUBMIT, content=BODY, headers={"API-Key": "test_slow"}).json()
        with _connect(url) as busy, _connect(url) as idle:
            busy.sendall(_request("GET", STATUS + job["id"], "test_slow"))  # 1 s delay
            idle.sendall(_request("GET", "/openapi.json"))
            idle_answers = _Answers(idle)
            assert idle_answers.next()[0] == 200
            time.sleep(0.3)
            started = time.monotonic()
            process.send_signal(sig)
            assert idle_answers.closed()  # an idle connection closes at once
            answers = _Answers(busy)
            status, headers, body = answers.next()
            assert (status, json.loads(body)["status"]) == (200, "PENDING")
            assert headers["connection"] == "close" and answers.closed()
        assert process.wait(TIMEOUT_S) == 0
        assert time.monotonic() - started < 5
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/openapi.json", timeout=2)
    finally:
        output = _rest_of_output(process)
    assert "Traceback" not in output and "ERROR" not in output, output


NO_UVICORN = (
    "import sys; sys.modules['uvicorn'] = None; from mock_server.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)
"""``ipmock`` with uvicorn made unimportable: any import of it fails."""


@pytest.mark.socket
def test_ipmock_serve_needs_no_uvicorn() -> None:
    process, url = _start(python=("-c", NO_UVICORN))
    try:
        submitted = httpx.post(url + SUBMIT, content=BODY, headers={"API-Key": "test_success"})
        assert submitted.json()["status"] == "SUCCESS"
        assert httpx.get(url + "/openapi.json").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT_S) == 0
    finally:
        output = _rest_of_output(process)
    assert "uvicorn" not in output, output


@pytest.mark.socket
def test_log_level_debug_logs_a_line_per_request() -> None:
    process, url = _start("--log-level", "debug")
    try:
        httpx.post(url + SUBMIT, content=BODY, headers={"API-Key": "test_success"})
        httpx.get(url + "/openapi.json?x=1")
        httpx.get(url + "/a%0Aforged%20line")  # a newline, escaped: still one log line
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT_S) == 0
    finally:
        output = _rest_of_output(process)
    assert f'"POST {SUBMIT} HTTP/1.1" 200' in output, output  # not answered in place
    assert '"GET /openapi.json?x=1 HTTP/1.1" 200' in output, output
    assert '"GET /a%0Aforged%20line HTTP/1.1" 404' in output, output
