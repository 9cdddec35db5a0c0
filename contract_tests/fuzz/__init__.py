"""``ipmock fuzz``: judge a client in any language by running it, as a command, on
generated flows of the mock (``docs/any-language.md`` has the protocol).

    timed     the flows, timed for real time
    process   the protocol's process side: environment, time limit, captured output
    slot      a served mock playing one flow at a time to the command
    judging   the client properties' verdicts on one play
    search    hypothesis's search and shrinking, ``--jobs`` flows side by side
    report    the counterexample's report and its replay line
    cli       the command line
"""

from contract_tests.fuzz.search import FuzzOutcome, FuzzSettings, fuzz_command, replay
from contract_tests.fuzz.timed import timed_flows
from mock_server.cli.fuzz import PROTOCOL_VARIABLES

__all__ = [
    "PROTOCOL_VARIABLES",
    "FuzzOutcome",
    "FuzzSettings",
    "fuzz_command",
    "replay",
    "timed_flows",
]
