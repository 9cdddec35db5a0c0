"""Judging clients by their traffic: the client properties and the live report.

``properties`` holds the one registry of client properties (the in-process fuzzer,
``ipmock fuzz`` and the live report all judge with it); ``clients`` names a client by
its API key without showing the key. Nothing here imports hypothesis, schemathesis or
the toolkit: ``ipmock serve`` uses it.
"""

from mock_server.report.clients import client_id
from mock_server.report.properties import (
    PROPERTIES,
    ClientProperty,
    ClientResult,
    Evidence,
    Verdict,
    client_property,
    judge,
)

__all__ = [
    "PROPERTIES",
    "ClientProperty",
    "ClientResult",
    "Evidence",
    "Verdict",
    "client_id",
    "client_property",
    "judge",
]
