"""ipmock's contract tests: fuzz a client against the mock, verify a server against the contract.

from hypothesis import given
from contract_tests import server_flows, check_client

@given(flow=server_flows())
def test_my_client(flow):
    check_client(flow, lambda ctx: MyClient(ctx.base_url, http=ctx.http, sleep=ctx.sleep,
                                            monotonic=ctx.monotonic, timeout=ctx.deadline,
                                            poll_interval=ctx.poll_floor).generate(ctx.request))

Give the client the deadline and poll floor it is judged by (``ctx.deadline``,
``ctx.poll_floor``); docs/fuzzing.md has the whole example.

Exported here: the strategies, the client properties (``mock_server.report``'s registry,
which ``ipmock fuzz`` and the live report judge with too) and their runner, the in-process
harness, the launcher of a real ``ipmock serve`` (``running_server``), and the example
client the suite holds up as correct; ``fuzz_command`` runs a client in any language,
as a command, on ``timed_flows`` (``ipmock fuzz``). ``ipmock verify`` is the command line's;
its module is ``contract_tests.verify``.
"""

from contract_tests.example_client import AsyncText2ImageClient, Text2ImageClient
from contract_tests.flows import Flow, FlowError
from contract_tests.fuzz import FuzzOutcome, FuzzSettings, fuzz_command, timed_flows
from contract_tests.inprocess import MockHarness
from contract_tests.properties import (
    PROPERTIES,
    ClientContractViolation,
    ClientProperty,
    FlowContext,
    FlowRun,
    check_client,
    check_client_async,
    client_property,
)
from contract_tests.server import RunningMock, ServerDidNotStart, running_server
from contract_tests.strategies import (
    BrokenRequest,
    invalid_requests,
    server_flows,
    valid_requests,
)
from mock_server.report import ClientResult, Evidence, Verdict
from mock_server.state.admin import AdminRefused

__all__ = [
    "PROPERTIES",
    "AdminRefused",
    "AsyncText2ImageClient",
    "BrokenRequest",
    "ClientContractViolation",
    "ClientProperty",
    "ClientResult",
    "Evidence",
    "Flow",
    "FlowContext",
    "FlowError",
    "FlowRun",
    "FuzzOutcome",
    "FuzzSettings",
    "MockHarness",
    "RunningMock",
    "ServerDidNotStart",
    "Text2ImageClient",
    "Verdict",
    "check_client",
    "check_client_async",
    "client_property",
    "fuzz_command",
    "invalid_requests",
    "running_server",
    "server_flows",
    "timed_flows",
    "valid_requests",
]
