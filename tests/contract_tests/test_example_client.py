"""The well-behaved example client passes every client property on generated flows."""

from __future__ import annotations

from typing import get_args, get_type_hints

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from contract_tests.example_client import AsyncText2ImageClient, Policy, Text2ImageClient
from contract_tests.flows import Flow
from contract_tests.properties import FlowContext, check_client, check_client_async
from contract_tests.strategies import server_flows

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sync_client(ctx: FlowContext[httpx.Client]) -> list[bytes]:
    client = Text2ImageClient(
        ctx.base_url,
        ctx.api_key,
        http=ctx.http,
        sleep=ctx.sleep,
        monotonic=ctx.monotonic,
        policy=Policy(poll_interval=ctx.poll_floor, deadline=ctx.deadline),
    )
    return client.generate(ctx.request)


async def async_client(ctx: FlowContext[httpx.AsyncClient]) -> list[bytes]:
    client = AsyncText2ImageClient(
        ctx.base_url,
        ctx.api_key,
        http=ctx.http,
        sleep=ctx.sleep,
        monotonic=ctx.monotonic,
        policy=Policy(poll_interval=ctx.poll_floor, deadline=ctx.deadline),
    )
    return await client.generate(ctx.request)


@FUZZ
@given(flow=server_flows())
@pytest.mark.slow
def test_sync_example_client_keeps_the_contract(flow: Flow) -> None:
    check_client(flow, sync_client, poll_floor=1.0, deadline=120.0)


@settings(max_examples=150, deadline=None)
@given(flow=server_flows())
def test_async_example_client_keeps_the_contract(flow: Flow) -> None:
    anyio.run(lambda: check_client_async(flow, async_client, poll_floor=1.0, deadline=120.0))


def test_a_plain_flow_end_to_end() -> None:
    flow = Flow(pending_polls=2, samples=3)
    run = check_client(flow, sync_client)
    assert run.images is not None and len(run.images) == 3
    assert [e["status"] for e in run.exchanges] == [202, 200, 200, 200, 200, 200, 200]


def test_a_run_hands_the_client_the_httpx_client_of_its_kind() -> None:
    http = get_type_hints(FlowContext)["http"]
    assert http.__constraints__ == (httpx.Client, httpx.AsyncClient)
    sync_ctx = get_args(get_type_hints(check_client)["generate"])[0][0]
    async_ctx = get_args(get_type_hints(check_client_async)["generate"])[0][0]
    assert (sync_ctx, async_ctx) == (FlowContext[httpx.Client], FlowContext[httpx.AsyncClient])
