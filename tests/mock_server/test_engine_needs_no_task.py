"""The engine's no-task rule (mock_server.api's docstring): with the state in this
process, a submit or a status request completes on its first step, outside any event
loop or task, as the in-place protocol runs it: nothing on the path awaits a future."""

from __future__ import annotations

import json
from collections.abc import Coroutine, Generator
from typing import Any

import pytest
from starlette.responses import Response

from mock_server import api
from mock_server.contract import STATUS_PREFIX, SUBMIT_PATH
from mock_server.http.app import create_app
from mock_server.settings import Settings
from mock_server.state import MockState

BODY = {"prompt": "a cat", "negative_prompt": "blurry", "samples": 2, "width": 512}


def _state(**settings: Any) -> MockState:
    state: MockState = create_app(Settings(**settings)).state.mock
    return state


def _in_one_step(answering: Coroutine[Any, Any, Response]) -> Response:
    """The answer, if the coroutine finishes without awaiting anything; else fail."""
    try:
        awaited = answering.send(None)
    except StopIteration as done:
        response: Response = done.value
        return response
    answering.close()
    pytest.fail(f"the engine awaited {awaited!r}: it needs a task")


def _request(method: str, path: str, key: str | None, body: bytes = b"") -> api.ApiRequest:
    found = api.route(method, path)
    assert found is not None
    headers = {"host": "mock"} | ({} if key is None else {"api-key": key})
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "scheme": "http",
        "root_path": "",
        "server": ("127.0.0.1", 8000),
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "path_params": {"id": found[1]} if found[1] else {},
    }
    return api.ApiRequest(scope, headers, body=body)


def _answer(state: MockState, method: str, path: str, key: str | None, body: Any = None) -> Any:
    raw = b"" if body is None else json.dumps(body).encode()
    request = _request(method, path, key, raw)
    operation = api.submit if method == "POST" else api.status
    response = _in_one_step(api.respond(state, operation, request))
    return response.status_code, json.loads(bytes(response.body))


@pytest.mark.parametrize(
    ("key", "body", "expected"),
    [
        ("sk-anyone", BODY, (202, "PENDING")),
        ("test_success", BODY, (200, "SUCCESS")),
        ("test_pending-then-failure", BODY, (202, "PENDING")),
        ("test_rate-limited", BODY, (429, "FAILURE")),
        ("sk-anyone", {"prompt": "a cat", "samples": 99}, (400, "FAILURE")),
        (None, BODY, (401, "FAILURE")),
    ],
)
def test_a_submit_is_answered_without_a_task(key: str | None, body: Any, expected: Any) -> None:
    status, answer = _answer(_state(), "POST", SUBMIT_PATH, key, body)
    assert (status, answer["status"]) == expected, answer


def test_a_job_is_polled_to_its_end_without_a_task() -> None:
    state = _state()
    status, job = _answer(state, "POST", SUBMIT_PATH, "sk-anyone", BODY)
    assert status == 202
    seen = [_answer(state, "GET", STATUS_PREFIX + job["id"], "sk-anyone") for _ in range(3)]
    states = [(s, a["status"]) for s, a in seen]
    assert states == [(200, "PENDING"), (200, "SUCCESS"), (200, "SUCCESS")]
    assert _answer(state, "GET", STATUS_PREFIX + "nope", "sk-anyone")[0] == 404
    assert _answer(state, "GET", STATUS_PREFIX + job["id"], "sk-other")[0] == 404


def test_the_check_would_see_a_task_being_needed() -> None:
    """The test's own check: a coroutine that awaits a future does not finish in a step."""

    class Future:
        def __await__(self) -> Generator[Any, None, None]:
            yield self  # what an asyncio future yields to its task

    async def needs_a_loop() -> Response:
        await Future()
        return Response()

    with pytest.raises(pytest.fail.Exception, match="needs a task"):
        _in_one_step(needs_a_loop())
