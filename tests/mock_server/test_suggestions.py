"""A misspelt name gets the closest right one, wherever a user writes names: the config
file's top-level keys and tables, an admin queue body and its inline scenarios, the
scenario of a test key or of X-Ipmock-Scenario."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from mock_server.config import ConfigError, load_book

pytestmark = pytest.mark.anyio

BODY = {"model_id": "sdxl", "prompt": "a cat"}
SUBMIT = "/sdxl/text2image/v1"


def refusal_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ipmock.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_book(path)
    return str(refused.value).removeprefix(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'default_scenrio = "success"\n',
            "unknown field 'default_scenrio' (did you mean 'default_scenario'?), "
            "not one of default_scenario, scenarios, rules, chaos",
        ),
        (
            "[chaos]\nweigths = { success = 1 }\n",
            "chaos: unknown field 'weigths' (did you mean 'weights'?), not one of weights, faults",
        ),
        (
            '[[scenarios]]\nname = "slow"\npending_pols = 3\n',
            "scenarios.0: unknown field 'pending_pols' (did you mean 'pending_polls'?), not one "
            "of name, description, pending_polls, pending_seconds, outcome, error, "
            "expires_after, refusal, url_ttl, extra_fields, faults",
        ),
    ],
)
def test_a_misspelt_config_key_gets_a_suggestion(tmp_path: Path, text: str, message: str) -> None:
    assert refusal_of(tmp_path, text) == message


def test_several_unknown_keys_are_named_together(tmp_path: Path) -> None:
    text = "zzz = 1\nrulez = []\n"
    assert refusal_of(tmp_path, text) == (
        "unknown fields 'zzz', 'rulez' (did you mean 'rules'?), "
        "not one of default_scenario, scenarios, rules, chaos"
    )


def test_many_unknown_keys_are_counted_not_listed(tmp_path: Path) -> None:
    text = "".join(f"k{i} = 1\n" for i in range(500))
    message = refusal_of(tmp_path, text)
    assert "'k9' and 490 more, not one of" in message
    assert len(message) < 300


async def test_a_misspelt_queue_key_gets_a_suggestion(client: httpx.AsyncClient) -> None:
    response = await client.post("/__mock/queue", json={"scenario": ["success"]})
    assert response.status_code == 400
    assert response.json()["error"] == (
        "admin API: unknown key 'scenario' (did you mean 'scenarios'?): "
        'send {"scenarios": [name or scenario object, ...]}'
    )


async def test_a_misspelt_queued_scenario_field_gets_a_suggestion(
    client: httpx.AsyncClient,
) -> None:
    refusal = {"http_status": 429, "code": "rate_limited", "error": "slow", "retry_afer": 2}
    body = {"scenarios": ["success", {"pending_pols": 3, "refusal": refusal}]}
    response = await client.post("/__mock/queue", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith(
        "admin API: scenarios.1: unknown field 'pending_pols' (did you mean 'pending_polls'?)"
    ), error
    assert error.endswith(
        "; scenarios.1: refusal: unknown field 'retry_afer' (did you mean 'retry_after'?), "
        "not one of http_status, code, error, retry_after"
    ), error


@pytest.mark.parametrize("headers", [{"API-Key": "test_sucess"}, {"X-Ipmock-Scenario": "sucess"}])
async def test_a_misspelt_scenario_name_gets_a_suggestion(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post(SUBMIT, json=BODY, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "unknown scenario 'sucess' (did you mean 'success'?); known scenarios: "
    )


async def test_a_name_like_no_scenario_gets_no_suggestion(client: httpx.AsyncClient) -> None:
    response = await client.post(SUBMIT, json=BODY, headers={"API-Key": "test_zzzz"})
    assert response.json()["error"].startswith("unknown scenario 'zzzz'; known scenarios: ")
