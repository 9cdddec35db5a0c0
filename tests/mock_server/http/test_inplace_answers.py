"""Submits and polls answered in place by `ipmock serve` (mock_server.http.inplace), over
raw sockets: the answers match the usual ASGI path's, in order on one connection even
when one of them has to wait, and the connection's HTTP rules hold."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from contract_tests.server import running_server
from mock_server.http.inplace import _resume

SUBMIT = "/sdxl/text2image/v1"
STATUS = "/sdxl/text2image/v1/status/"
BODY = json.dumps({"prompt": "a lighthouse at dusk", "width": 64, "height": 64}).encode()
CONFIG = """\
[[scenarios]]
name = "slow"
pending_polls = 1
faults = [{ at_request = 1, kind = "delay", seconds = 0.3 }]

[[scenarios]]
name = "one-poll"
pending_polls = 1
"""


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = tmp_path_factory.mktemp("in-place") / "ipmock.toml"
    config.write_text(CONFIG, encoding="utf-8")
    with running_server("--config", str(config), "--max-body-bytes", "4096") as url:
        yield url


def _address(base_url: str) -> tuple[str, int]:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _request(method: str, path: str, key: str, body: bytes = b"", extra: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: mock\r\nAPI-Key: {key}\r\n{extra}"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


class _Answers:
    """Reads HTTP/1.1 answers (with Content-Length bodies) off one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def next(self) -> tuple[int, dict[str, str], Any]:
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, json.loads(body)

    def closed(self) -> bool:
        return self.buffer == b"" and self.sock.recv(1) == b""

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        self.buffer += chunk


def _connect(base_url: str) -> socket.socket:
    sock = socket.create_connection(_address(base_url), timeout=10)
    return sock


def _submit(base_url: str, key: str) -> str:
    response = httpx.post(base_url + SUBMIT, content=BODY, headers={"API-Key": key})
    job_id: str = response.json()["id"]
    return job_id


@pytest.mark.socket
def test_pipelined_answers_keep_their_order_when_one_has_to_wait(base_url: str) -> None:
    slow, fast = _submit(base_url, "test_slow"), _submit(base_url, "test_success")
    with _connect(base_url) as sock:
        sock.sendall(
            _request("GET", STATUS + slow, "test_slow")  # delayed 0.3 s: a task finishes it
            + _request("GET", STATUS + fast, "test_success")  # ready at once
            + _request("POST", SUBMIT, "test_success", BODY)
            + _request("GET", STATUS + "nope", "test_success")
        )
        answers = _Answers(sock)
        first, second, third, fourth = (answers.next() for _ in range(4))
    assert (first[0], first[2]["id"], first[2]["status"]) == (200, slow, "PENDING")
    assert (second[0], second[2]["id"], second[2]["status"]) == (200, fast, "SUCCESS")
    assert (
        third[0] == 200 and third[2]["status"] == "SUCCESS" and third[2]["id"] not in (slow, fast)
    )
    assert fourth[0] == 404 and fourth[2]["code"] == "not_found"


@pytest.mark.socket
def test_answers_in_place_match_the_asgi_path(base_url: str) -> None:
    job = _submit(base_url, "test_success")
    # X-Forwarded-For sends a request through the ASGI cycle (the proxy's headers).
    plain = httpx.get(base_url + STATUS + job, headers={"API-Key": "test_success"})
    proxied = httpx.get(
        base_url + STATUS + job,
        headers={"API-Key": "test_success", "X-Forwarded-For": "10.1.2.3"},
    )
    assert plain.status_code == proxied.status_code == 200
    assert plain.json() == proxied.json()
    assert sorted(plain.headers) == sorted(proxied.headers)
    assert plain.headers["content-type"] == "application/json"


@pytest.mark.socket
def test_a_forwarded_scheme_still_shapes_download_urls(base_url: str) -> None:
    job = _submit(base_url, "test_success")
    answer = httpx.get(
        base_url + STATUS + job,
        headers={"API-Key": "test_success", "X-Forwarded-Proto": "https"},
    )
    assert answer.json()["download_urls"][0].startswith("https://")


@pytest.mark.parametrize(
    ("version", "extra"), [("HTTP/1.0", ""), ("HTTP/1.1", "Connection: close\r\n")]
)
@pytest.mark.socket
def test_the_connection_closes_when_the_client_asks(
    base_url: str, version: str, extra: str
) -> None:
    job = _submit(base_url, "test_success")
    with _connect(base_url) as sock:
        request = _request("GET", STATUS + job, "test_success", extra=extra)
        sock.sendall(request.replace(b"HTTP/1.1", version.encode(), 1))
        answers = _Answers(sock)
        status, headers, body = answers.next()
        assert (status, body["status"]) == (200, "SUCCESS")
        assert headers.get("connection") == "close"
        assert answers.closed()


@pytest.mark.socket
def test_a_body_over_the_limit_is_refused_and_the_connection_goes_on(base_url: str) -> None:
    big = json.dumps({"prompt": "x" * 5000}).encode()
    with _connect(base_url) as sock:
        sock.sendall(_request("POST", SUBMIT, "test_success", big))
        sock.sendall(_request("POST", SUBMIT, "test_success", BODY))
        answers = _Answers(sock)
        refused, accepted = answers.next(), answers.next()
    assert refused[0] == 413 and refused[2]["code"] == "payload_too_large"
    assert accepted[0] == 200 and accepted[2]["status"] == "SUCCESS"


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x01garbage\r\n\r\n",
        b"GET /openapi.json HTTP/1.1\r\nHost: mock\r\nContent-Length: -5\r\n\r\n",
        b"POST /sdxl/text2image/v1 HTTP/1.1\r\nHost: mock\r\nTransfer-Encoding: chunked\r\n"
        b"\r\nzz\r\n",
    ],
    ids=["request-line", "content-length", "chunk-size"],
)
@pytest.mark.socket
def test_bytes_that_are_not_http_get_the_apis_json_failure(base_url: str, raw: bytes) -> None:
    with _connect(base_url) as sock:
        sock.sendall(raw)
        answers = _Answers(sock)
        status, headers, body = answers.next()
        assert answers.closed()
    assert (status, headers["content-type"]) == (400, "application/json")
    assert body["status"] == "FAILURE" and body["code"] == "invalid_request"
    assert "not valid HTTP/1.1" in body["error"]


@pytest.mark.socket
def test_answers_in_place_are_journaled(base_url: str) -> None:
    httpx.post(base_url + "/__mock/reset")
    job = _submit(base_url, "test_success")
    httpx.get(base_url + STATUS + job, headers={"API-Key": "test_success"})
    entries = httpx.get(base_url + "/__mock/journal").json()["entries"]
    submit, poll = entries[-2:]
    assert (submit["method"], submit["path"], submit["status"]) == ("POST", SUBMIT, 200)
    assert json.loads(submit["body"]) == json.loads(BODY)
    assert submit["headers"]["api-key"] == "<redacted>"
    assert json.loads(submit["response_body"])["id"] == job
    assert (poll["path"], poll["status"], poll["dropped"]) == (STATUS + job, 200, False)


@pytest.mark.socket
def test_each_answer_follows_the_jobs_state_and_the_host_it_was_asked_through(
    base_url: str,
) -> None:
    job = _submit(base_url, "test_one-poll")

    def poll(host: str) -> dict[str, Any]:
        headers = {"API-Key": "test_one-poll", "Host": host}
        answer: dict[str, Any] = httpx.get(base_url + STATUS + job, headers=headers).json()
        return answer

    assert poll("a.test")["status"] == "PENDING"
    first = poll("a.test")
    assert first["status"] == "SUCCESS"
    assert first["download_urls"][0].startswith("http://a.test/images/")
    assert poll("b.test:81")["download_urls"][0].startswith("http://b.test:81/images/")
    assert poll("a.test") == first


@pytest.mark.socket
def test_expect_100_continue_gets_its_interim_answer(base_url: str) -> None:
    with _connect(base_url) as sock:
        head = _request("POST", SUBMIT, "test_success", BODY, extra="Expect: 100-continue\r\n")
        sock.sendall(head.removesuffix(BODY))
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(1)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(BODY)
        status, _, body = _Answers(sock).next()
    assert (status, body["status"]) == (200, "SUCCESS")


@pytest.mark.socket
def test_a_chunked_submit_then_a_poll_on_one_connection(base_url: str) -> None:
    chunked = (
        f"POST {SUBMIT} HTTP/1.1\r\nHost: mock\r\nAPI-Key: test_success\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
    with _connect(base_url) as sock:
        sock.sendall(chunked)
        answers = _Answers(sock)
        status, _, submitted = answers.next()
        assert (status, submitted["status"]) == (200, "SUCCESS")
        sock.sendall(_request("GET", STATUS + submitted["id"], "test_success"))
        status, _, polled = answers.next()
    assert (status, polled["id"], polled["status"]) == (200, submitted["id"], "SUCCESS")


@pytest.mark.socket
def test_a_query_string_or_an_escaped_id_is_read_by_the_asgi_cycle(base_url: str) -> None:
    job = _submit(base_url, "test_success")
    escaped = job[:3] + "".join(f"%{ord(c):02X}" for c in job[3:6]) + job[6:]
    for path in (STATUS + job + "?verbose=1", STATUS + escaped):
        with _connect(base_url) as sock:
            sock.sendall(_request("GET", path, "test_success"))
            status, _, body = _Answers(sock).next()
        assert (status, body["id"], body["status"]) == (200, job, "SUCCESS"), path


# -- the coroutine runner behind the in-place answers ------------------------------


async def _waits_then(outcome: asyncio.Future[str], log: list[str]) -> str:
    log.append("started")
    await asyncio.sleep(0)  # a bare yield
    try:
        value = await outcome
    except ValueError as exc:
        return f"caught {exc}"
    except asyncio.CancelledError:
        log.append("cancelled")
        raise
    return f"got {value}"


def _started(coroutine: Any) -> Any:
    return coroutine.send(None)  # what it yields first, as the protocol starts it


def test_a_coroutine_started_by_hand_resumes_as_a_task_would() -> None:
    asyncio.run(_resume_cases())


async def _resume_cases() -> None:
    loop = asyncio.get_running_loop()
    for settle, expected in [
        (lambda f: f.set_result("ok"), "got ok"),
        (lambda f: f.set_exception(ValueError("bad")), "caught bad"),
    ]:
        outcome: asyncio.Future[str] = loop.create_future()
        log: list[str] = []
        coroutine = _waits_then(outcome, log)
        task = asyncio.ensure_future(_resume(coroutine, _started(coroutine)))
        await asyncio.sleep(0.01)
        assert not task.done() and log == ["started"]
        settle(outcome)
        assert await task == expected

    outcome = loop.create_future()
    log = []
    coroutine = _waits_then(outcome, log)
    task = asyncio.ensure_future(_resume(coroutine, _started(coroutine)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["started", "cancelled"] and outcome.cancelled()


@pytest.mark.socket
def test_a_host_unfit_for_a_url_gives_the_servers_address_in_place(base_url: str) -> None:
    job = _submit(base_url, "test_success")
    with _connect(base_url) as sock:
        for host in ('a b"<>', "mock", 'a b"<>'):
            poll = _request("GET", STATUS + job, "test_success").replace(b"mock", host.encode())
            sock.sendall(poll)
        answers = _Answers(sock)
        bad, good, bad_again = (answers.next()[2] for _ in range(3))
    assert bad["download_urls"][0].startswith(f"{base_url}/images/{job}/")
    assert good["download_urls"][0].startswith(f"http://mock/images/{job}/")
    assert bad_again == bad
