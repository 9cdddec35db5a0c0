"""A uvicorn HTTP protocol that hands the app each request's raw connection, for socket faults."""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mock_server.faults import CONNECTION_EXTENSION, quiet_drops


class RawConnectionProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus ``scope["extensions"]["ipmock.connection"]``
    = ``{"transport": <the connection's asyncio transport>}`` in every HTTP scope.

    The socket faults (``mock_server.faults``) write raw bytes to it, close it or reset
    it. Each process that uses it (every ``--workers`` process too) also keeps deliberate
    drops out of uvicorn's error log.
    """

    def on_message_begin(self) -> None:
        super().on_message_begin()
        extensions = self.scope.setdefault("extensions", {})
        extensions[CONNECTION_EXTENSION] = {"transport": self.transport}

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        logging.getLogger("uvicorn.error").addFilter(quiet_drops)  # idempotent
        super().connection_made(transport)
