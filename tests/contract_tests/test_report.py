"""What check_client's report says: the root cause before `finishes`, runs of like
exchanges in one line, and flows that print as themselves (in hypothesis too)."""

from __future__ import annotations

from typing import Any

import hypothesis.core
import pytest
from hypothesis import given, settings
from hypothesis.vendor.pretty import RepresentationPrinter, pretty

from contract_tests.example_client import Policy, SubmitUncertain, Text2ImageClient
from contract_tests.flows import Flow
from contract_tests.properties import (
    ClientContractViolation,
    FlowContext,
    check_client,
    exchange_lines,
)
from contract_tests.strategies import server_flows
from mock_server.faults import Fault


def _client(ctx: FlowContext, deadline: float) -> Text2ImageClient:
    return Text2ImageClient(
        ctx.base_url,
        ctx.api_key,
        http=ctx.http,
        sleep=ctx.sleep,
        monotonic=ctx.monotonic,
        policy=Policy(poll_interval=ctx.poll_floor, deadline=deadline),
    )


def own_timeout(ctx: FlowContext) -> list[bytes]:
    """A correct client that keeps its own 300 s timeout instead of ctx.deadline."""
    return _client(ctx, 300.0).generate(ctx.request)


def test_a_client_past_its_deadline_is_told_so_before_finishes() -> None:
    with pytest.raises(ClientContractViolation) as caught:
        check_client(Flow(pending_polls=None), own_timeout, poll_floor=1.0, deadline=120.0)
    report = str(caught.value)
    cause = report.index("gives_up_at_deadline: kept going 199 s, past its 120 s deadline")
    assert cause < report.index("finishes: made more than 200 requests")
    assert "is ctx.deadline passed to the client?" in report
    lines = report.split("exchanges:\n")[1].split("\nreplay:")[0].splitlines()
    assert len(lines) == 2, lines  # 200 polls in one line, not 200
    assert lines[0].endswith("POST /sdxl/text2image/v1 -> 202 PENDING")
    assert lines[1].endswith("-> 200 PENDING x 199 (to 199.00s)")


def test_a_client_stopped_before_its_deadline_is_not_blamed_for_it() -> None:
    def hammers(ctx: FlowContext) -> list[bytes]:  # 0.1 s polls: 200 requests in 20 s
        return Text2ImageClient(
            ctx.base_url,
            ctx.api_key,
            http=ctx.http,
            sleep=ctx.sleep,
            monotonic=ctx.monotonic,
            policy=Policy(poll_interval=0.1, deadline=ctx.deadline),
        ).generate(ctx.request)

    with pytest.raises(ClientContractViolation) as caught:
        check_client(Flow(pending_polls=None), hammers, poll_floor=1.0, deadline=120.0)
    report = str(caught.value)
    assert "respects_poll_floor" in report
    assert "finishes" in report
    assert "gives_up_at_deadline" not in report


def _entry(at: float, path: str, status: int | None, **more: Any) -> dict[str, Any]:
    return {"at": at, "method": "GET", "path": path, "status": status, **more}


def test_exchange_lines_collapse_runs_of_like_answers_only() -> None:
    pending = {"response_json": {"status": "PENDING", "id": "x"}}
    entries = [
        _entry(10.0, "/s/x", 200, **pending),
        _entry(11.0, "/s/x", 200, **pending),
        _entry(12.0, "/s/x", 200, **pending),
        _entry(13.0, "/s/x", 503, fault="busy", response_json={"status": "FAILURE"}),
        _entry(14.0, "/s/x", None, dropped=True, fault="drop"),
        _entry(15.0, "/s/x", 200, **pending),
        _entry(16.0, "/images/x/0.png", 200, response_json=None),
    ]
    assert exchange_lines(entries) == [
        "      0.00s GET /s/x -> 200 PENDING x 3 (to 2.00s)",
        "      3.00s GET /s/x -> 503 FAILURE [busy]",
        "      4.00s GET /s/x -> dropped [drop]",
        "      5.00s GET /s/x -> 200 PENDING",
        "      6.00s GET /images/x/0.png -> 200",
    ]
    assert exchange_lines([]) == []


def test_a_flow_prints_the_fields_that_differ_and_replays_from_it() -> None:
    flow = Flow(pending_polls=None, faults=(Fault(1, "drop", on="submit"),), samples=2)
    shown = repr(flow)
    assert shown.startswith("Flow(pending_polls=None, faults=(Fault(at_request=1, kind='drop'")
    assert "samples=2" in shown and "outcome=" not in shown
    assert eval(shown, {"Flow": Flow, "Fault": Fault}) == flow
    assert repr(Flow()) == "Flow()"
    assert pretty(flow) == shown  # what hypothesis prints for a failing example


def test_hypothesis_shows_the_flow_of_a_failing_example(monkeypatch: pytest.MonkeyPatch) -> None:
    # schemathesis's pytest plugin swaps hypothesis's printer for one that prints nothing
    # (for its own speed), in every test of the process: that, not Flow, gave `flow=,`.
    # With hypothesis's own printer, a failing flow prints as itself.
    monkeypatch.setattr(hypothesis.core, "RepresentationPrinter", RepresentationPrinter)

    @settings(max_examples=5, database=None, deadline=None)
    @given(flow=server_flows())
    def fails(flow: Flow) -> None:
        raise AssertionError("always")

    with pytest.raises(AssertionError) as caught:
        fails()
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "flow=Flow(" in notes, notes


def test_a_lost_submit_answer_must_be_surfaced_not_papered_over() -> None:
    flow = Flow(faults=(Fault(1, "drop", on="submit"),))

    def correct(ctx: FlowContext) -> list[bytes]:
        return _client(ctx, ctx.deadline).generate(ctx.request)

    run = check_client(flow, correct)
    assert isinstance(run.error, SubmitUncertain)
    (submit,) = run.exchanges
    assert submit["job_id"] and submit["dropped"]

    def shrugs(ctx: FlowContext) -> list[bytes]:
        try:
            return correct(ctx)
        except SubmitUncertain:
            return []

    with pytest.raises(ClientContractViolation) as caught:
        check_client(flow, shrugs)
    assert "surfaces_lost_submit: returned 0 image(s) though the submit's answer was lost" in (
        str(caught.value)
    )
    assert "submit accepted, then connection dropped: the answer is lost" in str(caught.value)


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault(1, "delay", seconds=5, on="submit"), "submit: answer 5 s late; submit accepted: "),
        (Fault(1, "server-error", on="submit"), "submit accepted, then 500: the answer is lost; "),
        (Fault(2, "reset", on="download"), "; download request 2: connection broken (reset)"),
        (Fault(3, "garbage"), "; status request 3: connection broken (garbage)"),
        (Fault(1, "dribble", seconds=2), "; status request 1: answer sent slowly over 2 s"),
    ],
)
def test_a_flow_in_words_names_each_fault_and_its_step(fault: Fault, words: str) -> None:
    assert words in Flow(pending_polls=3, faults=(fault,)).describe()
