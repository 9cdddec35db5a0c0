"""Config file checks past the JSON Schema: rules on fields the request has, finite
numbers, unknown scenarios named by where they are; any documented refusal loads. Their
wording: one message per problem, did-you-mean for values, and the why."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from mock_server.config import ConfigError, load_book
from mock_server.state import MemoryQueue
from tests.conftest import REPO


def refusal_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ipmock.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_book(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: "), message
    return message.removeprefix(f"{path}: ")


def test_a_rule_on_a_misspelt_field_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    text = '[[rules]]\nscenario = "failure"\nmatch = { promt = { contains = "x" } }\n'
    assert refusal_of(tmp_path, text) == (
        "rules.0.match: 'promt' is not a request field (did you mean 'prompt'?)"
    )


def test_a_rule_on_an_unknown_field_names_the_rule(tmp_path: Path) -> None:
    text = (
        '[[rules]]\nscenario = "failure"\nmatch = { prompt = "x" }\n'
        '[[rules]]\nscenario = "success"\nmatch = { samples = 2, zzzz = 1 }\n'
    )
    assert refusal_of(tmp_path, text) == "rules.1.match: 'zzzz' is not a request field"


def test_rules_on_request_fields_still_load(tmp_path: Path) -> None:
    path = tmp_path / "ipmock.toml"
    path.write_text('[[rules]]\nscenario = "failure"\nmatch = { prompt = "x", samples = 2 }\n')
    book = load_book(path)
    chosen = asyncio.run(book.choose(None, MemoryQueue(), {"prompt": "x", "samples": 2}))
    assert chosen.name == "failure"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[scenarios]]\nname = "x"\nexpires_after = 1e400\n', "scenarios.0.expires_after: inf"),
        ('[[scenarios]]\nname = "x"\nurl_ttl = nan\n', "scenarios.0.url_ttl: nan"),
        ("[chaos]\nweights = { success = inf }\n", "chaos.weights.success: inf"),
        ("[chaos]\nweights = { success = nan }\n", "chaos.weights.success: nan"),
    ],
)
def test_non_finite_numbers_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    assert refusal_of(tmp_path, text) == f"{problem} is not a finite number"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[[rules]]\nscenario = "nope"\nmatch = { prompt = "x" }\n', "rules.0.scenario"),
        ("[chaos]\nweights = { success = 1, nope = 2 }\n", "chaos.weights.nope"),
        ('default_scenario = "nope"\n', "default_scenario"),
    ],
)
def test_an_unknown_scenario_is_named_by_where_it_is(tmp_path: Path, text: str, where: str) -> None:
    message = refusal_of(tmp_path, text)
    assert re.fullmatch(
        rf"{re.escape(where)}: unknown scenario 'nope'; known scenarios: .*", message
    )
    assert "success" in message


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "unauthorized"),
        (402, "insufficient_credits"),
        (429, "rate_limited"),
        (500, "server_error"),
        (503, "busy"),
    ],
)
def test_documented_refusals_load(tmp_path: Path, status: int, code: str) -> None:
    path = tmp_path / "ipmock.toml"
    path.write_text(
        f'[[scenarios]]\nname = "x"\nrefusal = {{ http_status = {status}, code = "{code}", '
        'error = "e" }\n'
    )
    refusal = load_book(path).get("x").refusal
    assert refusal is not None and (refusal.http_status, refusal.code) == (status, code)


def test_a_top_level_problem_has_no_placeholder_path(tmp_path: Path) -> None:
    assert refusal_of(tmp_path, 'colour = "red"\n') == (
        "unknown field 'colour', not one of default_scenario, scenarios, rules, chaos"
    )


def test_a_built_in_scenario_cannot_be_redefined(tmp_path: Path) -> None:
    # redefined, "success" answered 202 PENDING to test_success, against the docs
    message = refusal_of(tmp_path, '[[scenarios]]\nname = "success"\npending_polls = 3\n')
    assert message.startswith(
        "scenarios.0.name: 'success' is a built-in scenario and cannot be redefined; "
        "give yours another name (built-in: "
    ), message
    assert "pending-then-success" in message and "generate" in message


def test_the_generate_scenario_is_reserved_in_mock_mode_too(tmp_path: Path) -> None:
    # it is the default under --backend diffusers: the same file must mean the same there
    assert "'generate' is a built-in scenario" in refusal_of(
        tmp_path, '[[scenarios]]\nname = "generate"\n'
    )


def test_a_scenario_defined_twice_is_refused(tmp_path: Path) -> None:
    text = "".join(f'[[scenarios]]\nname = "{name}"\n' for name in ("mine", "other", "mine"))
    message = refusal_of(tmp_path, text)
    assert message == "scenarios.2.name: 'mine' is already defined by scenarios.0"


def test_new_scenarios_still_load(tmp_path: Path) -> None:
    path = tmp_path / "ipmock.toml"
    path.write_text('[[scenarios]]\nname = "slow-success"\npending_polls = 3\n')
    book = load_book(path)
    assert book.scenarios["slow-success"].pending_polls == 3
    assert book.scenarios["success"].pending_polls == 0


def _config_error(tmp_path: Path, toml: str) -> str:
    path = tmp_path / "ipmock.toml"
    path.write_text(f'[[scenarios]]\nname = "x"\n{toml}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_book(path)
    return str(caught.value).removeprefix(f"{path}: ")


def test_an_infinite_number_is_said_once(tmp_path: Path) -> None:
    said = _config_error(tmp_path, "pending_polls = 1e400")
    assert said == "scenarios.0.pending_polls: inf is not a finite number"


def test_a_misspelt_value_gets_did_you_mean(tmp_path: Path) -> None:
    said = _config_error(tmp_path, 'faults = [{ at_request = 1, kind = "rest" }]')
    assert said.startswith("scenarios.0.faults.0.kind: 'rest' is not one of ['rate-limited'")
    assert said.endswith("(did you mean 'reset'?)")
    said = _config_error(tmp_path, 'outcome = "sucess"')
    assert "(did you mean 'success'?)" in said


def test_a_second_submit_request_says_why_there_is_none(tmp_path: Path) -> None:
    said = _config_error(tmp_path, 'faults = [{ on = "submit", at_request = 2, kind = "reset" }]')
    assert said == (
        "scenarios.0.faults.0.at_request: 2 is not 1: a job has one submit, so a fault on "
        '"submit" is at_request 1'
    )


def test_the_docs_say_which_fault_fields_are_required() -> None:
    schema = json.loads((REPO / "mock_server" / "config.schema.json").read_text("utf-8"))
    required = schema["$defs"]["scenario"]["properties"]["faults"]["items"]["required"]
    page = " ".join((REPO / "docs/scenarios.md").read_text("utf-8").split())
    assert "names its `kind` and its `at_request`, both required" in page
    assert sorted(required) == ["at_request", "kind"]
