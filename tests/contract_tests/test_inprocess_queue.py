"""The in-process harness queues what the HTTP admin queues, through the same function
(``mock_server.config.queued_scenario``): names, inline objects, refused alike."""

from __future__ import annotations

from typing import Any

import pytest

from contract_tests import MockHarness
from mock_server.config import ConfigError
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
    with pytest.raises(ConfigError) as refused:
        harness.queue(spec)
    said = str(refused.value).removeprefix("scenario 1")
    assert _admin_refusal(harness, spec) == "admin API: scenarios.0" + said


def test_names_objects_and_scenarios_queue_in_order() -> None:
    harness = MockHarness()
    harness.queue("success", {"outcome": "failure"}, Scenario("mine", pending_polls=2))
    with harness.client() as http:
        answers = [http.post(SUBMIT_PATH, json={"prompt": "a cat"}).json() for _ in range(3)]
    assert [a["status"] for a in answers] == ["SUCCESS", "FAILURE", "PENDING"]
    assert [j["scenario"]["name"] for j in harness.jobs()] == ["success", "inline", "mine"]
