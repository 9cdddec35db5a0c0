"""check_client judges through the one registry (``mock_server.report``): the names the
toolkit exports are the registry's, a user's property is judged beside the built-in
ones, and what the client returned reaches the properties as a ClientResult."""

from __future__ import annotations

import pytest

import contract_tests
import mock_server.report
from contract_tests import (
    ClientContractViolation,
    Evidence,
    Flow,
    FlowContext,
    Verdict,
    check_client,
    client_property,
)
from contract_tests.example_client import Text2ImageClient


def careful(ctx: FlowContext) -> list[bytes]:
    return Text2ImageClient(
        ctx.base_url, ctx.api_key, http=ctx.http, sleep=ctx.sleep, monotonic=ctx.monotonic
    ).generate(ctx.request)


def test_the_toolkit_exports_the_registry_itself() -> None:
    assert contract_tests.PROPERTIES is mock_server.report.PROPERTIES
    assert contract_tests.client_property is mock_server.report.client_property


def test_a_users_property_breaks_check_client_with_its_words() -> None:
    @client_property("polls_at_most_once", "one poll is enough")
    def _once(evidence: Evidence) -> Verdict:
        polls = [i for i, e in enumerate(evidence.exchanges) if "/status/" in e["path"]]
        if len(polls) > 1:
            return Verdict("broken", f"polled {len(polls)} times", tuple(polls))
        return Verdict("held")

    try:
        check_client(Flow(pending_polls=0), careful)
        with pytest.raises(ClientContractViolation, match="polls_at_most_once: polled 3 times"):
            check_client(Flow(pending_polls=2), careful)
    finally:
        del contract_tests.PROPERTIES["polls_at_most_once"]


def test_the_properties_read_what_the_client_returned() -> None:
    run = check_client(Flow(samples=2), careful)
    assert run.result.images == run.images and run.result.error is None
    assert len(run.evidence.exchanges) == len(run.exchanges) > 0

    def loses_one(ctx: FlowContext) -> list[bytes]:
        return careful(ctx)[:1]

    with pytest.raises(ClientContractViolation) as caught:
        check_client(Flow(samples=2), loses_one)
    assert "returns_every_sample: returned 1 image(s) for 2 sample(s)" in str(caught.value)
    assert "fetches_every_image" not in str(caught.value)  # it fetched both, kept one


def test_only_the_named_properties_are_judged() -> None:
    def loses_one(ctx: FlowContext) -> list[bytes]:
        return careful(ctx)[:1]

    check_client(Flow(samples=2), loses_one, properties=["submits_once", "finishes"])
    with pytest.raises(ValueError, match="did you mean 'submits_once'"):
        check_client(Flow(), careful, properties=["submit_once"])
