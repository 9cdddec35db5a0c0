"""Flow.from_json, as a recorded flow is replayed: missing keys take the defaults, every
field round-trips, and a bad flow is a clear IpmockError naming what is wrong."""

from __future__ import annotations

import json

import pytest

from contract_tests.flows import Flow, FlowError
from mock_server import IpmockError
from mock_server.faults import Fault


def test_a_flow_without_every_key_takes_the_defaults() -> None:
    assert Flow.from_json("{}") == Flow()
    old_line = json.dumps({"pending_polls": 3, "faults": [{"at_request": 1, "kind": "reset"}]})
    flow = Flow.from_json(old_line)
    assert flow.pending_polls == 3
    assert flow.submit_refusals == ()
    assert flow.faults == (Fault(1, "reset"),)


def test_every_flow_field_round_trips() -> None:
    flow = Flow(
        submit_refusals=(("busy", 2),),
        pending_polls=None,
        faults=(Fault(1, "busy", retry_after=3, on="download"),),
        outcome="failure",
        samples=2,
        extra_fields=True,
        url_ttl=5.0,
    )
    assert Flow.from_json(flow.to_json()) == flow


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('{"pending_pols": 1}', "'pending_pols' (did you mean 'pending_polls'?)"),
        ('{"samples": 9}', "flow samples: 9 is not an integer from 1 to 4"),
        ('{"submit_refusals": [["slow", 1]]}', "flow submit_refusals"),
        ('{"faults": [{"at_request": 1, "kind": "rest"}]}', "faults.0.kind"),
        ('{"outcome": "maybe"}', 'flow outcome: "maybe" is not "success" or "failure"'),
        ("[1]", "a flow must be a JSON object"),
        ("{", "a flow must be JSON"),
    ],
)
def test_a_bad_flow_is_a_clear_ipmock_error(text: str, named: str) -> None:
    with pytest.raises(IpmockError) as caught:
        Flow.from_json(text)
    assert isinstance(caught.value, FlowError)
    assert named in str(caught.value)
