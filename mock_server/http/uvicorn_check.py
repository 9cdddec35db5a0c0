"""Whether the installed uvicorn is one ``mock_server.http.inplace`` was written for.

``inplace.MockHttpProtocol`` subclasses uvicorn's httptools protocol, which is not
uvicorn's public API: it overrides and calls private methods, reads attributes uvicorn's
own methods set, and builds a ``RequestResponseCycle`` with its keyword arguments. So
pyproject.toml pins uvicorn to the minor range it was written and tested against
(``TESTED_MINOR``), and ``ipmock serve`` asks ``http_protocol()`` which protocol to run:
on any other uvicorn, or one without a name the protocol uses, it serves on uvicorn's
own protocol (every request through the ASGI app: slower, and a socket fault becomes a
dropped connection) and says so in one warning line. This module looks without importing
``inplace``, which cannot even be imported on a uvicorn that lacks these names.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

TESTED_MINOR = (0, 55)
"""The uvicorn minor version the in-place protocol was written for (pyproject.toml:
``uvicorn>=0.55,<0.56``)."""

IN_PLACE_PROTOCOL = "mock_server.http.inplace:MockHttpProtocol"
FALLBACK_PROTOCOL = "auto"
"""uvicorn's own choice: its httptools protocol, or h11 without httptools."""

MODULE_NAMES = {
    "uvicorn.protocols.http.httptools_impl": (
        "HttpToolsProtocol",
        "RequestResponseCycle",
        "STATUS_LINE",
    ),
    "uvicorn.middleware.proxy_headers": ("ProxyHeadersMiddleware",),
    "uvicorn.server": ("ServerState",),
}
"""What ``inplace`` imports from uvicorn, by module."""

PROTOCOL_METHODS = (
    "_start_asgi_task",
    "_unset_keepalive_if_required",
    "connection_lost",
    "connection_made",
    "on_body",
    "on_header",
    "on_headers_complete",
    "on_message_begin",
    "on_message_complete",
    "on_response_complete",
    "send_400_response",
    "timeout_keep_alive_handler",
)
"""The methods of ``HttpToolsProtocol`` that ``MockHttpProtocol`` overrides or calls."""

PROTOCOL_ATTRIBUTES = (
    "access_log",
    "access_logger",
    "app",
    "app_state",
    "asgi_version",
    "client",
    "cycle",
    "flow",
    "limit_concurrency",
    "logger",
    "loop",
    "parser",
    "pipeline",
    "root_path",
    "scheme",
    "server",
    "server_state",
    "timeout_keep_alive",
    "timeout_keep_alive_task",
    "transport",
)
"""The attributes of a connected ``HttpToolsProtocol`` it reads (a test checks them on a
real one: they exist only once the protocol is made and connected)."""

CYCLE_KEYWORDS = (
    "access_log",
    "access_logger",
    "default_headers",
    "expect_100_continue",
    "flow",
    "keep_alive",
    "logger",
    "message_event",
    "on_response",
    "scope",
    "transport",
)
"""The keyword arguments it builds a ``RequestResponseCycle`` with."""


def installed_version() -> str:
    try:
        return version("uvicorn")
    except PackageNotFoundError:
        return "unknown"


def misfit() -> str | None:
    """Why the installed uvicorn will not do for the in-place protocol, or None."""
    found = installed_version()
    parts = found.split(".")
    if tuple(int(p) for p in parts[:2] if p.isdigit()) != TESTED_MINOR:
        tested = ".".join(map(str, TESTED_MINOR))
        return f"uvicorn {found} is not the {tested}.x the in-place protocol was written for"
    missing = []
    for module_name, names in MODULE_NAMES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(module_name)
            continue
        missing += [f"{module_name}.{n}" for n in names if not hasattr(module, n)]
    if missing:
        return f"uvicorn {found} lacks {', '.join(missing)}"
    from uvicorn.protocols.http import httptools_impl

    protocol, cycle = httptools_impl.HttpToolsProtocol, httptools_impl.RequestResponseCycle
    missing = [f"HttpToolsProtocol.{n}" for n in PROTOCOL_METHODS if not hasattr(protocol, n)]
    accepted = inspect.signature(cycle).parameters
    missing += [f"RequestResponseCycle({n}=)" for n in CYCLE_KEYWORDS if n not in accepted]
    if missing:
        return f"uvicorn {found} lacks {', '.join(missing)}"
    return None


def http_protocol(warn: Callable[[str], None] | None = None) -> str:
    """The ``http`` protocol for uvicorn's Config: the in-place protocol when the installed
    uvicorn fits it, else uvicorn's own, with one warning line (to stderr by default)."""
    problem = misfit()
    if problem is None:
        return IN_PLACE_PROTOCOL
    line = (
        f"ipmock: warning: {problem}; serving on uvicorn's own protocol instead (slower; "
        "socket faults become dropped connections). Install the uvicorn pyproject.toml pins."
    )
    if warn is None:
        print(line, file=sys.stderr, flush=True)
    else:
        warn(line)
    return FALLBACK_PROTOCOL
