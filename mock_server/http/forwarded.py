"""A proxy's ``X-Forwarded-Proto`` and ``X-Forwarded-For``, read into an ASGI scope as
uvicorn's ProxyHeadersMiddleware reads them with its default trust (127.0.0.1 only)."""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

_TRUSTED_PROXY = "127.0.0.1"
_TRUSTED_PROXY_IP = ipaddress.ip_address(_TRUSTED_PROXY)


def apply_proxy_headers(scope: dict[str, Any]) -> None:
    """``X-Forwarded-Proto`` and ``X-Forwarded-For`` from a proxy on 127.0.0.1, read as
    uvicorn reads them: the scheme, and the nearest client that is not that proxy."""
    client = scope["client"]
    if client is None or client[0] != _TRUSTED_PROXY:
        return
    proto: bytes | None = None
    forwarded_for: list[bytes] = []
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto":
            proto = value
        elif name == b"x-forwarded-for":
            forwarded_for.append(value)
    if proto is not None:
        scheme = proto.decode("latin-1").strip()
        if scheme in {"http", "https", "ws", "wss"}:
            scope["scheme"] = scheme
    if forwarded_for:
        hosts = [h.strip() for h in b", ".join(forwarded_for).decode("latin-1").split(",")]
        nearest = next(
            (a for a in map(_host_port, reversed(hosts)) if not _is_proxy(a[0])),
            _host_port(hosts[0]),
        )
        if nearest[0]:
            scope["client"] = nearest


def _host_port(value: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` as (host, port); port 0 when none."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if not rest:
            return (host, 0) if value.endswith("]") else (value, 0)
        if not rest.startswith(":"):
            return value, 0
        return (host, int(rest[1:])) if rest[1:].isdigit() else (host, 0)
    if value.count(":") == 1:
        host, port = value.split(":")
        return (host, int(port)) if port.isdigit() else (value, 0)
    return value, 0


@functools.lru_cache(maxsize=1024)
def _is_proxy(host: str) -> bool:
    try:
        return ipaddress.ip_address(host) == _TRUSTED_PROXY_IP
    except ValueError:
        return host == _TRUSTED_PROXY
