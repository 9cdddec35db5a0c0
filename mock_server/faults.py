"""What the engine knows of a fault beyond its data (``Fault``, ``FaultMix`` and the
kinds live in ``mock_server.scenarios``): the mark a faulted request's scope carries
for the journal, and the exception a deliberate drop raises. How a fault is delivered
on a socket or in an ASGI answer is ``mock_server.http.socket_faults``.
"""

from __future__ import annotations

from mock_server.exceptions import IpmockError

FAULT_SCOPE_KEY = "ipmock.fault"
"""Where a faulted request's scope names its fault kind, for the journal."""


class ConnectionDropped(IpmockError):
    """Raised mid-answer on purpose. A server closes the connection; an in-process
    transport (``contract_tests``) turns it into the client's own transport error."""
