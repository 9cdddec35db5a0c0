"""Server flows timed for real time: what ``ipmock fuzz`` plays to a client it runs."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from contract_tests.flows import Flow
from contract_tests.strategies import server_flows

LONGEST_WAIT = 1.0
"""The longest Retry-After or slow answer of a timed flow, in seconds: long enough to
catch a client that ignores it, short enough that a run of flows takes a minute."""


def _timed(flow: Flow) -> Flow:
    """The flow with every slow answer at most LONGEST_WAIT late."""
    faults = tuple(replace(f, seconds=min(f.seconds, LONGEST_WAIT)) for f in flow.faults)
    return replace(flow, faults=faults)


def timed_flows() -> st.SearchStrategy[Flow]:
    """``server_flows`` for a client running on the wall clock: Retry-After 0 or 1 s,
    slow answers at most a second late, PENDING for up to 3 polls (counted in polls, so
    the client's own pace sets how long), or forever (a stuck job: the client is judged
    against its deadline). Shrinks toward the plainest flow, as ``server_flows`` does."""
    return server_flows(max_pending=3, max_retry_after=int(LONGEST_WAIT)).map(_timed)
