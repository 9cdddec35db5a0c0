"""CORS on a real `ipmock serve`: submits and polls answered in place
(mock_server.http.inplace) carry the same CORS headers as the ASGI path's answers, those
finished in an ASGI cycle (a delay fault) too, and a preflight on a kept-alive
connection is answered 204 between them."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from contract_tests.server import running_server

pytestmark = [pytest.mark.socket]

SUBMIT = "/sdxl/text2image/v1"
STATUS = "/sdxl/text2image/v1/status/"
BODY = json.dumps({"prompt": "a lighthouse at dusk", "width": 64, "height": 64}).encode()
PAGE = "http://localhost:3000"
CONFIG = """\
[[scenarios]]
name = "slow"
pending_polls = 1
faults = [{ at_request = 1, kind = "delay", seconds = 0.2 }]
"""
CORS_HEADERS = ("access-control-allow-origin", "access-control-expose-headers", "vary")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cors") / "ipmock.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def any_page(config: str) -> Iterator[str]:
    with running_server("--config", config) as url:
        yield url


@pytest.fixture(scope="module")
def one_page(config: str) -> Iterator[str]:
    env = {"IPMOCK_CORS_ORIGINS": f"{PAGE},https://app.example.com"}
    with running_server("--config", config, env=env) as url:
        yield url


def _cors(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in CORS_HEADERS if name in response.headers}


def _submit(base_url: str, key: str, origin: str = PAGE) -> httpx.Response:
    return httpx.post(base_url + SUBMIT, content=BODY, headers={"API-Key": key, "Origin": origin})


def test_answers_in_place_carry_the_cors_headers(any_page: str) -> None:
    submitted = _submit(any_page, "test_pending-then-success")
    polled = httpx.get(
        any_page + STATUS + submitted.json()["id"], headers={"API-Key": "test_success"}
    )
    for answer in (submitted, polled):
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "Retry-After" in answer.headers["access-control-expose-headers"]


@pytest.mark.parametrize("origin", [PAGE, "https://app.example.com", "https://evil.test"])
def test_in_place_and_asgi_answers_carry_the_same_cors_headers(
    any_page: str, one_page: str, origin: str
) -> None:
    for base_url in (any_page, one_page):
        job = _submit(base_url, "test_success", origin).json()["id"]
        headers = {"API-Key": "test_success", "Origin": origin}
        in_place = httpx.get(base_url + STATUS + job, headers=headers)
        # X-Forwarded-For sends a request through the ASGI cycle (the proxy's headers)
        usual = httpx.get(
            base_url + STATUS + job, headers={**headers, "X-Forwarded-For": "10.0.0.1"}
        )
        assert _cors(in_place) == _cors(usual), base_url
        assert sorted(in_place.headers) == sorted(usual.headers)


def test_listed_origins_are_named_and_others_are_not(one_page: str) -> None:
    mine = _submit(one_page, "test_success", PAGE)
    assert _cors(mine)["access-control-allow-origin"] == PAGE
    assert _cors(mine)["vary"] == "Origin"
    other = _submit(one_page, "test_success", "https://evil.test")
    assert other.status_code == 200
    assert _cors(other) == {"vary": "Origin"}


def test_an_answer_finished_in_an_asgi_cycle_carries_them_too(any_page: str) -> None:
    job = _submit(any_page, "test_slow").json()["id"]
    delayed = httpx.get(any_page + STATUS + job, headers={"API-Key": "test_slow", "Origin": PAGE})
    assert delayed.json()["status"] == "PENDING"
    assert delayed.headers["access-control-allow-origin"] == "*"


def test_a_preflight_between_in_place_answers_on_one_connection(any_page: str) -> None:
    host, port = any_page.removeprefix("http://").rsplit(":", 1)
    head = f"Host: mock\r\nOrigin: {PAGE}\r\n"
    submit = (
        f"POST {SUBMIT} HTTP/1.1\r\n{head}API-Key: test_success\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    preflight = (
        f"OPTIONS {SUBMIT} HTTP/1.1\r\n{head}Access-Control-Request-Method: POST\r\n"
        "Access-Control-Request-Headers: api-key, content-type\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(submit + preflight + submit)
        answers = _read(sock, 3)
    (first, second, third) = answers
    assert first[0] == third[0] == 200 and second[0] == 204
    assert second[1]["access-control-allow-headers"] == "api-key, content-type"
    assert "POST" in second[1]["access-control-allow-methods"]
    assert all(answer[1]["access-control-allow-origin"] == "*" for answer in answers)


def _read(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str]]]:
    """``count`` HTTP answers off a socket (bodies by Content-Length; none without)."""
    buffer, answers = b"", []
    while len(answers) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection mid-answer")
            buffer += chunk
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            buffer += sock.recv(65536)
        buffer = buffer[length:]
        answers.append((int(status_line.split()[1]), headers))
    return answers
