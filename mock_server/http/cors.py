"""CORS, so that a browser front end can call the mock: which origins may read its
answers (``--cors-origins``), the headers that say so, and the preflights.

On by default for any origin, as Prism and WireMock do for a local mock: the API sends
no cookies and asks for no browser credentials, so ``Access-Control-Allow-Origin: *``
lets any page read the answers, and no answer depends on the page's origin. A list of
origins lets only those pages read answers (each answer then names the page's origin
and varies on it); ``none`` sends no CORS headers at all, and a preflight then gets the
405 of a method the path does not allow.

The admin API (``/__mock/``) is left out with ``*``: any page the developer opens could
otherwise read the journal or reset the mock. Origins listed by name reach it too.

Every header is built once per setting (``cors_for``): the in-place answers
(``mock_server.http.inplace``) append the bytes to theirs as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_server.errors import ApiError
from mock_server.settings import cors_origins
from mock_server.words import shorten

ADMIN_PREFIX = "/__mock/"

EXPOSED = "Retry-After, ETag, Date, Allow"
"""The answer headers a page may read besides the CORS-safelisted ones (Content-Type,
Content-Length, Cache-Control...): Retry-After above all, for rate limits and busy."""

METHODS = "GET, POST, DELETE, OPTIONS"
ALLOWED_HEADERS = "API-Key, Content-Type, If-None-Match, X-Ipmock-Scenario, X-Ipmock-Admin-Token"
"""Allowed request headers when a preflight lists none that can be echoed."""

MAX_AGE = b"600"
"""Seconds a browser may reuse a preflight's answer."""

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")

Headers = tuple[tuple[bytes, bytes], ...]


class Cors:
    """The CORS headers for one ``--cors-origins`` setting (not ``none``), built once."""

    def __init__(self, setting: str) -> None:
        self.any_origin = setting == "*"
        self.origins = () if self.any_origin else tuple(setting.split(","))
        exposed = (b"access-control-expose-headers", EXPOSED.encode())
        self.any_headers: Headers = ((b"access-control-allow-origin", b"*"), exposed)
        vary = (b"vary", b"Origin")
        self.refused_headers: Headers = (vary,)
        self.origin_headers: dict[str, Headers] = {
            origin: ((b"access-control-allow-origin", origin.encode()), exposed, vary)
            for origin in self.origins
        }
        self.any_bytes = _encoded(self.any_headers)
        self.refused_bytes = _encoded(self.refused_headers)
        self.origin_bytes = {o: _encoded(h) for o, h in self.origin_headers.items()}

    def headers(self, origin: str | None, path: str) -> Headers:
        """What an answer to a request from ``origin`` (its Origin header) carries."""
        if self.any_origin:
            return () if path.startswith(ADMIN_PREFIX) else self.any_headers
        return self.origin_headers.get(origin or "", self.refused_headers)

    def api_bytes(self, origin: str | None) -> bytes:
        """``headers`` for submits and polls, as header lines (the in-place protocol)."""
        if self.any_origin:
            return self.any_bytes
        return self.origin_bytes.get(origin or "", self.refused_bytes)

    def preflight(
        self, origin: str, path: str, requested: str, *, private_network: bool = False
    ) -> tuple[int, Headers, bytes]:
        """The answer to a preflight (an OPTIONS with Origin and
        Access-Control-Request-Method): 204 with what the page may send, or 403.
        ``private_network``: the browser asks whether a public page may reach this
        address (Chrome's Private Network Access), which a mock on 127.0.0.1 allows."""
        allowed = self.headers(origin, path)
        if not any(name == b"access-control-allow-origin" for name, _ in allowed):
            where = "the admin API" if self.any_origin else "this mock"
            shown = ", ".join(self.origins) or "none by name (--cors-origins *)"
            refused = ApiError(
                403,
                "unauthorized",
                f"CORS: origin {shorten(origin)!r} may not call {where}; origins allowed "
                f"by name (--cors-origins): {shown}",
            ).response()
            return 403, (*refused.raw_headers, *allowed), bytes(refused.body)
        names = [name.strip() for name in requested.split(",") if name.strip()]
        echoed = len(names) <= 32 and all(_TOKEN.fullmatch(name) for name in names)
        request_headers = ", ".join(names) if names and echoed else ALLOWED_HEADERS
        private = ((b"access-control-allow-private-network", b"true"),) if private_network else ()
        return (
            204,
            (
                *allowed,
                (b"access-control-allow-methods", METHODS.encode()),
                (b"access-control-allow-headers", request_headers.encode()),
                *private,
                (b"access-control-max-age", MAX_AGE),
                (b"vary", b"Access-Control-Request-Method, Access-Control-Request-Headers"),
            ),
            b"",
        )


def _encoded(headers: Headers) -> bytes:
    return b"".join(b"%s: %s\r\n" % pair for pair in headers)


@cache
def cors_for(setting: str) -> Cors | None:
    """The CORS headers of a ``--cors-origins`` setting, built once; None for ``none``."""
    normalised = cors_origins(setting)
    return None if normalised == "none" else Cors(normalised)


class CorsMiddleware:
    """Adds the CORS headers to every answer and answers preflights, for the whole app
    (submits and polls included, which skip Starlette's own middleware)."""

    def __init__(self, app: ASGIApp, cors: Cors) -> None:
        self.app, self.cors = app, cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _request_headers(scope["headers"])
        origin, path = headers.get("origin"), scope["path"]
        method = headers.get("access-control-request-method")
        if scope["method"] == "OPTIONS" and origin is not None and method is not None:
            status, answer, body = self.cors.preflight(
                origin,
                path,
                headers.get("access-control-request-headers", ""),
                private_network=headers.get(_PRIVATE, "").strip().lower() == "true",
            )
            await send({"type": "http.response.start", "status": status, "headers": answer})
            await send({"type": "http.response.body", "body": body})
            return
        extra = self.cors.headers(origin, path)
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _request_headers(raw: list[tuple[bytes, bytes]]) -> Mapping[str, str]:
    """The few request headers CORS reads (the first of each)."""
    found: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        if key in _READ and key not in found:
            found[key] = value.decode("latin-1")
    return found


_PRIVATE = "access-control-request-private-network"
_READ = frozenset(
    {"origin", "access-control-request-method", "access-control-request-headers", _PRIVATE}
)
