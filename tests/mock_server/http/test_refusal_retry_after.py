"""A custom 429/503 refusal sends Retry-After (1 s unless it says otherwise): from a config
file, answered in place and through the ASGI app, and from the admin queue."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest

from contract_tests.server import running_server
from mock_server.scenarios import Refusal

SUBMIT = "/sdxl/text2image/v1"
BODY = json.dumps({"prompt": "a lighthouse at dusk", "width": 64, "height": 64})

REFUSING = """\
[[scenarios]]
name = "r429"
refusal = { http_status = 429, code = "rate_limited", error = "x" }

[[scenarios]]
name = "r503"
refusal = { http_status = 503, code = "busy", error = "x" }

[[scenarios]]
name = "r503-wait"
refusal = { http_status = 503, code = "busy", error = "x", retry_after = 7 }

[[scenarios]]
name = "r402"
refusal = { http_status = 402, code = "insufficient_credits", error = "x" }

[[scenarios]]
name = "r500-wait"
refusal = { http_status = 500, code = "server_error", error = "x", retry_after = 3 }
"""

EXPECTED_RETRY_AFTER = {"r429": "1", "r503": "1", "r503-wait": "7", "r402": None, "r500-wait": "3"}


def test_a_refusal_of_429_or_503_defaults_to_retry_after_1() -> None:
    assert Refusal(429, "rate_limited", "x").retry_after == 1
    assert Refusal(503, "busy", "x").retry_after == 1
    assert Refusal(503, "busy", "x", retry_after=0).retry_after == 0
    assert Refusal(402, "insufficient_credits", "x").retry_after is None


@pytest.fixture(scope="module")
def refusing_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = tmp_path_factory.mktemp("refusals") / "ipmock.toml"
    config.write_text(REFUSING, encoding="utf-8")
    with running_server("--config", str(config)) as url:
        yield url


def _raw_submit(base_url: str, key: str) -> tuple[int, dict[str, str]]:
    """A submit over a raw socket, as the in-place protocol answers it."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    body = BODY.encode()
    head = (
        f"POST {SUBMIT} HTTP/1.1\r\nHost: mock\r\nAPI-Key: {key}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head_text = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status_line, *lines = head_text.split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers


@pytest.mark.parametrize("name", sorted(EXPECTED_RETRY_AFTER))
@pytest.mark.socket
def test_a_config_refusal_sends_retry_after_in_place(refusing_url: str, name: str) -> None:
    status, headers = _raw_submit(refusing_url, f"test_{name}")
    assert status == int(name[1:4])
    assert headers.get("retry-after") == EXPECTED_RETRY_AFTER[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_RETRY_AFTER))
@pytest.mark.socket
def test_a_config_refusal_sends_retry_after_through_asgi(refusing_url: str, name: str) -> None:
    # A query string keeps a poll off the in-place path: an ASGI cycle of the app answers
    # it (the key's refusal answers every call).
    response = httpx.get(
        f"{refusing_url}{SUBMIT}/status/nope?via=asgi",
        headers={"API-Key": f"test_{name}"},
        timeout=10,
    )
    assert response.status_code == int(name[1:4])
    assert response.headers.get("retry-after") == EXPECTED_RETRY_AFTER[name]


@pytest.mark.anyio
async def test_a_queued_refusal_sends_retry_after(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    async with make_client() as client:
        refusal = {"http_status": 503, "code": "busy", "error": "x"}
        queued = await client.post("/__mock/queue", json={"scenarios": [{"refusal": refusal}]})
        assert queued.status_code == 200, queued.text
        response = await client.post(SUBMIT, content=BODY)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
