"""The strategies follow the contract: valid requests pass strict validation, each broken
request is refused naming its field, flows replay exactly."""

from __future__ import annotations

import json

import anyio
import pytest
from hypothesis import given, settings

from contract_tests import BrokenRequest, Flow, MockHarness, invalid_requests, server_flows
from contract_tests import valid_requests as valid
from mock_server import Settings
from mock_server.validation import InvalidRequest, validate


@settings(max_examples=300, deadline=None)
@given(body=valid())
def test_valid_requests_pass_strict_validation(body: dict[str, object]) -> None:
    accepted = validate(json.dumps(body).encode(), strict=True)
    assert accepted.warnings == ()


@settings(max_examples=60, deadline=None)
@given(body=valid(max_side=128))
def test_valid_requests_succeed_over_http(body: dict[str, object]) -> None:
    harness = MockHarness(Settings(strict=True))

    async def go() -> None:
        async with harness.async_client("test_success") as http:
            response = await http.post("/sdxl/text2image/v1", json=body)
            assert response.status_code == 200, response.text
            assert len(response.json()["download_urls"]) == body.get("samples", 1)

    anyio.run(go)


@settings(max_examples=600, deadline=None)
@given(case=invalid_requests())
@pytest.mark.slow
def test_each_broken_request_is_refused_naming_its_field(case: BrokenRequest) -> None:
    with pytest.raises(InvalidRequest) as refused:
        validate(json.dumps(case.body).encode())
    assert case.named_by([e.field for e in refused.value.errors]), (case, refused.value.errors)


@settings(max_examples=200, deadline=None)
@given(flow=server_flows())
def test_flows_replay_from_json(flow: Flow) -> None:
    assert Flow.from_json(flow.to_json()) == flow
    assert flow.describe()
