"""ipmock serve reads a proxy's X-Forwarded-Proto and X-Forwarded-For as uvicorn's
ProxyHeadersMiddleware (trusting 127.0.0.1, its default) does: same scheme, same client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from mock_server.http.forwarded import apply_proxy_headers

FORWARDED_FOR = [
    "10.1.2.3",
    "10.1.2.3, 127.0.0.1",
    "10.1.2.3,10.4.5.6",
    "127.0.0.1, 127.0.0.1",
    "10.1.2.3:8080",
    "[2001:db8::1]:443",
    "[2001:db8::1]",
    "2001:db8::1",
    "[2001:db8::1",
    "host.example:notaport",
    "unknown, 127.0.0.1",
    " , ",
]


def _scope(client: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "client": (client, 5000), "scheme": "http", "headers": headers}


def _uvicorns(scope: dict[str, Any]) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    asyncio.run(ProxyHeadersMiddleware(app)(dict(scope), None, None))  # type: ignore[arg-type]
    return seen[0]


@pytest.mark.parametrize("client", ["127.0.0.1", "10.0.0.9"])
@pytest.mark.parametrize("forwarded_for", FORWARDED_FOR)
def test_the_client_is_read_as_uvicorn_reads_it(client: str, forwarded_for: str) -> None:
    headers = [(b"x-forwarded-for", forwarded_for.encode())]
    ours = _scope(client, headers)
    apply_proxy_headers(ours)
    assert ours["client"] == _uvicorns(_scope(client, headers))["client"]


@pytest.mark.parametrize("client", ["127.0.0.1", "10.0.0.9"])
@pytest.mark.parametrize("proto", ["https", " https ", "wss", "HTTPS", "gopher", ""])
def test_the_scheme_is_read_as_uvicorn_reads_it(client: str, proto: str) -> None:
    headers = [(b"x-forwarded-proto", proto.encode())]
    ours = _scope(client, headers)
    apply_proxy_headers(ours)
    assert ours["scheme"] == _uvicorns(_scope(client, headers))["scheme"]


def test_repeated_forwarded_for_headers_are_one_list() -> None:
    headers = [(b"x-forwarded-for", b"10.1.1.1"), (b"x-forwarded-for", b"10.2.2.2, 127.0.0.1")]
    ours = _scope("127.0.0.1", headers)
    apply_proxy_headers(ours)
    assert ours["client"] == ("10.2.2.2", 0) == _uvicorns(_scope("127.0.0.1", headers))["client"]
