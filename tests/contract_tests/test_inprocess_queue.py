"""The in-process harness queues what the HTTP admin queues, through the same admin logic
(``mock_server.state.admin.Admin``): names, inline objects, refused in the same words."""

from __future__ import annotations

from typing import Any

import pytest

from contract_tests import AdminRefused, MockHarness
from mock_server.contract import SUBMIT_PATH
from mock_server.scenarios import Scenario


def _admin_refusal(harness: MockHarness, spec: Any) -> str:
    with harness.client() as http:
        answer = http.post("/__mock/queue", json={"scenarios": [spec]})
    assert answer.status_code == 400, answer.text
    error: str = answer.json()["error"]
    return error


@pytest.mark.parametrize(
    "spec",
    ["rate-limitd", {"pending_polls": -1}, 7],
    ids=["misspelt name", "bad inline", "neither"],
)
def test_the_harness_refuses_an_entry_as_the_admin_does(spec: Any) -> None:
    harness = MockHarness()
    with pytest.raises(AdminRefused) as refused:
        harness.queue(spec)
    assert str(refused.value).startswith("scenarios.0")
    assert _admin_refusal(harness, spec) == f"admin API: {refused.value}"


def test_names_objects_and_scenarios_queue_in_order() -> None:
    harness = MockHarness()
    harness.queue("success", {"outcome": "failure"}, Scenario("mine", pending_polls=2))
    with harness.client() as http:
        answers = [http.post(SUBMIT_PATH, json={"prompt": "a cat"}).json() for _ in range(3)]
    assert [a["status"] for a in answers] == ["SUCCESS", "FAILURE", "PENDING"]
    assert [j["scenario"]["name"] for j in harness.jobs()] == ["success", "inline", "mine"]
