"""Which scenario a submit gets: ScenarioBook.choose, docs/scenarios.md's list in one function.

Each of the six sources is present or absent in turn; the first present one wins. The
API asks for the named scenario (header, test key) before it reads the body, so an
unknown or refusing one refuses without reading it."""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

import pytest

from mock_server import Settings, api, create_app
from mock_server.contract import STATUS_PREFIX, SUBMIT_PATH
from mock_server.scenarios import (
    SCENARIO_HEADER,
    SCENARIO_SCOPE_KEY,
    Match,
    Rule,
    Scenario,
    ScenarioBook,
)
from mock_server.state import MemoryQueue, MockState
from tests.conftest import REPO

SOURCES = ("header", "key", "queue", "rule", "chaos")
PICKS = {
    "header": "success",
    "key": "stuck",
    "queue": "expired",
    "rule": "pending-then-failure",
    "chaos": "failure",
    "default": "pending-3-then-success",
}
"""The scenario each source names when present: six different ones."""


async def _chosen(present: dict[str, bool]) -> tuple[str, int]:
    """The scenario chosen with the given sources present, and what is left queued."""
    book = ScenarioBook(
        rules=[Rule(PICKS["rule"], (Match("prompt", contains="by rule"),))],
        chaos_weights={PICKS["chaos"]: 1} if present["chaos"] else None,
        default=PICKS["default"],
        seed=1,
    )
    headers = {SCENARIO_HEADER: PICKS["header"]} if present["header"] else {}
    key = f"test_{PICKS['key']}" if present["key"] else "sk-plain"
    queue = MemoryQueue()
    if present["queue"]:
        await queue.push([book.get(PICKS["queue"])])
    body = {"prompt": "chosen by rule" if present["rule"] else "a cat"}
    named = book.named_by_request(headers, key)
    scenario = await book.choose(named, queue, body)
    return scenario.name, len(await queue.queued())


@pytest.mark.parametrize(
    "present",
    [dict(zip(SOURCES, row, strict=True)) for row in itertools.product((True, False), repeat=5)],
    ids=lambda present: "+".join(s for s in SOURCES if present[s]) or "nothing",
)
def test_the_first_source_present_names_the_scenario(present: dict[str, bool]) -> None:
    first = next((source for source in SOURCES if present[source]), "default")
    name, left_queued = asyncio.run(_chosen(present))
    assert name == PICKS[first]
    # The queue gives its scenario only when it is the source chosen; else it keeps it.
    assert left_queued == (1 if present["queue"] and first != "queue" else 0)


def _numbered(text: str) -> list[str]:
    """The items of the first numbered list in ``text``, each on one line."""
    items = re.findall(r"^\s*\d\. (.+?)(?=\n\s*\d\. |\n\s*\n|\Z)", text, re.MULTILINE | re.DOTALL)
    return [" ".join(item.split()) for item in items]


def test_the_docstring_of_choose_is_the_docs_list() -> None:
    page = (REPO / "docs/scenarios.md").read_text(encoding="utf-8")
    section = page.split("For each submit the first of these that names a scenario wins:")[1]
    listed = _numbered(section.lstrip("\n"))
    assert len(listed) == 6
    documented = _numbered((ScenarioBook.choose.__doc__ or "").split("\n\n", 1)[1])
    assert documented == [item.replace("`", "``") for item in listed]


def _request(path: str, headers: dict[str, str], *, method: str = "POST") -> api.ApiRequest:
    async def receive() -> Any:
        raise AssertionError("the body was read")

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "path_params": {"id": path.rsplit("/", 1)[-1]},
    }
    return api.ApiRequest(scope, {"host": "mock"} | headers, receive=receive)


def _state() -> MockState:
    state: MockState = create_app(Settings()).state.mock
    return state


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"api-key": "sk-x", SCENARIO_HEADER: "nope"}, 400, "invalid_request"),
        ({"api-key": "test_nope"}, 400, "invalid_request"),
        ({"api-key": "sk-x", SCENARIO_HEADER: "busy"}, 503, "busy"),
        ({"api-key": "test_no-credits"}, 402, "insufficient_credits"),
    ],
)
def test_a_named_scenario_refuses_before_the_body_is_read(
    headers: dict[str, str], status: int, code: str
) -> None:
    # Reading the body would raise in receive, which the API answers 500.
    request = _request(SUBMIT_PATH, headers)
    response = asyncio.run(api.respond(_state(), api.submit, request))
    assert response.status_code == status
    assert f'"code":"{code}"'.encode() in bytes(response.body)


def test_a_status_request_refuses_as_its_named_scenario_does() -> None:
    state = _state()
    refused = _request(f"{STATUS_PREFIX}abc", {"api-key": "test_busy"}, method="GET")
    unknown = _request(f"{STATUS_PREFIX}abc", {"api-key": "test_nope"}, method="GET")
    plain = _request(f"{STATUS_PREFIX}abc", {"api-key": "sk-x"}, method="GET")
    answers = [asyncio.run(api.respond(state, api.status, r)) for r in (refused, unknown, plain)]
    assert [a.status_code for a in answers] == [503, 400, 404]


def test_the_queue_is_asked_only_after_a_valid_body() -> None:
    async def submit_invalid_then_valid() -> list[str]:
        state = _state()
        await state.queue.push([Scenario("queued", pending_polls=None)])
        names = []
        for body in (b'{"prompt": ""}', b'{"prompt": "a cat"}'):
            request = _request(SUBMIT_PATH, {"api-key": "sk-x"})
            request = api.ApiRequest(request.scope, request.headers, body=body)
            await api.respond(state, api.submit, request)
            names.append(request.scope.get(SCENARIO_SCOPE_KEY, "-"))
        return names

    assert asyncio.run(submit_invalid_then_valid()) == ["-", "queued"]
