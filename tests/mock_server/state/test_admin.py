"""One admin: the HTTP admin's routes, the in-process harness and a served mock's helpers
do what ``mock_server.state.admin.Admin`` does, and refuse with its words and its
exception (``AdminRefused``, an ``IpmockError`` and a ``ValueError``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from contract_tests import AdminRefused, MockHarness, RunningMock
from mock_server import Clock, Settings, create_app
from mock_server.contract import SUBMIT_PATH
from mock_server.exceptions import IpmockError
from tests.conftest import _AppTransport

pytestmark = pytest.mark.anyio

START = 1_000_000.0
BODY = {"prompt": "a cat", "width": 64, "height": 64}


async def _observed(http: httpx.AsyncClient) -> dict[str, Any]:
    """What the admin API shows of a mock: queue, clock, jobs and journal (ids left out:
    they are random)."""
    jobs = (await http.get("/__mock/jobs")).json()["jobs"]
    entries = (await http.get("/__mock/journal")).json()["entries"]
    return {
        "queue": (await http.get("/__mock/queue")).json(),
        "clock": (await http.get("/__mock/clock")).json(),
        # Redis lists jobs of the same time in no set order.
        "jobs": sorted((j["scenario"]["name"], j["state"], j["created_at"]) for j in jobs),
        "journal": [(e["method"], e["status"], e["at"]) for e in entries],
    }


async def _submit_twice(http: httpx.AsyncClient) -> list[str]:
    answers = [await http.post(SUBMIT_PATH, json=BODY) for _ in range(2)]
    return [a.json()["status"] for a in answers]


def _harness_steps(harness: MockHarness) -> None:
    harness.queue("success", {"outcome": "failure"}, "pending-10s-then-success")
    harness.set_time("2030-01-01T00:00:00Z")
    harness.freeze()
    harness.advance(5)


async def _http_steps(http: httpx.AsyncClient) -> None:
    for path, body in [
        ("queue", {"scenarios": ["success", {"outcome": "failure"}, "pending-10s-then-success"]}),
        ("clock", {"set": "2030-01-01T00:00:00Z"}),
        ("clock", {"freeze": True}),
        ("clock", {"advance": 5}),
    ]:
        answer = await http.post(f"/__mock/{path}", json=body)
        assert answer.status_code == 200, answer.text


@pytest.fixture
async def http_admin(both_stores: str) -> AsyncIterator[httpx.AsyncClient]:
    """An app on the memory store or Redis, started at the harness's time, driven over HTTP."""
    app = create_app(Settings(store=both_stores), clock=Clock(source=lambda: START, virtual=True))
    async with httpx.AsyncClient(
        transport=_AppTransport(app=app), base_url="http://mock.test", headers={"API-Key": "k"}
    ) as http:
        yield http


async def test_the_same_admin_calls_leave_the_same_state(http_admin: httpx.AsyncClient) -> None:
    harness = MockHarness(start=START)
    _harness_steps(harness)
    await _http_steps(http_admin)
    async with harness.async_client(api_key="k") as local:
        assert (
            await _submit_twice(local)
            == await _submit_twice(http_admin)
            == [
                "SUCCESS",
                "FAILURE",
            ]
        )
        seen = await _observed(local)
        assert seen == await _observed(http_admin)
        assert seen["clock"]["time"] == "2030-01-01T00:00:05Z" and seen["clock"]["frozen"]
        assert [s["name"] for s in seen["queue"]["queue"]] == ["pending-10s-then-success"]
        # The harness's own helpers read the same state the routes show.
        assert harness.now() == seen["clock"]["now"]
        assert (
            sorted((j["scenario"]["name"], j["state"], j["created_at"]) for j in harness.jobs())
            == (seen["jobs"])
        )
        assert [(e["method"], e["status"], e["at"]) for e in harness.journal()] == seen["journal"]

        harness.reset()
        assert (await http_admin.post("/__mock/reset")).status_code == 200
        assert await _observed(local) == await _observed(http_admin)
        assert harness.jobs() == harness.journal() == []


def _admin_error(harness: MockHarness, path: str, body: Any) -> str:
    with harness.client() as http:
        answer = http.post(f"/__mock/{path}", json=body)
    assert answer.status_code == 400, answer.text
    error: str = answer.json()["error"]
    return error


@pytest.mark.parametrize(
    ("call", "path", "body"),
    [
        (lambda h: h.advance(-1), "clock", {"advance": -1}),
        (lambda h: h.advance(float("nan")), "clock", {"advance": None}),
        (lambda h: h.set_time("2030-01-01T00:00:00"), "clock", {"set": "2030-01-01T00:00:00"}),
        (lambda h: h.set_time("soon"), "clock", {"set": "soon"}),
        (lambda h: h.queue({"pending_pols": 1}), "queue", {"scenarios": [{"pending_pols": 1}]}),
        (
            lambda h: h.queue("success", "rate-limitd"),
            "queue",
            {"scenarios": ["success", "rate-limitd"]},
        ),
    ],
    ids=[
        "advance back",
        "advance nan",
        "set without zone",
        "set a word",
        "misspelt field",
        "misspelt name",
    ],
)
def test_the_harness_refuses_as_the_admin_api_does(call: Any, path: str, body: Any) -> None:
    harness = MockHarness()
    before = harness.now()
    with pytest.raises(AdminRefused) as refused:
        call(harness)
    assert isinstance(refused.value, IpmockError) and isinstance(refused.value, ValueError)
    assert refused.value.status == 400
    said = _admin_error(harness, path, body)
    if "nan" in said or "null" in said:  # JSON has no NaN: the API was sent null instead
        assert (
            str(refused.value).split(", got")[0]
            == said.removeprefix("admin API: ").split(", got")[0]
        )
    else:
        assert said == f"admin API: {refused.value}"
    assert harness.now() == before  # nothing was changed
    assert harness.jobs() == [] and _queued(harness) == []


def _queued(harness: MockHarness) -> list[Any]:
    with harness.client() as http:
        queue: list[Any] = http.get("/__mock/queue").json()["queue"]
    return queue


def test_a_refused_queue_queues_none_of_its_entries() -> None:
    harness = MockHarness()
    with pytest.raises(AdminRefused, match=r"^scenarios\.1: "):
        harness.queue("success", "rate-limitd")
    assert _queued(harness) == []


def test_a_served_mock_refuses_with_the_admin_message(ipmock_server: RunningMock) -> None:
    harness = MockHarness()
    calls: list[tuple[str, Any]] = [
        ("queue", {"pending_pols": 1}),
        ("set_time", "2030-01-01T00:00:00"),
        ("advance", -1),
    ]
    for name, argument in calls:
        with pytest.raises(AdminRefused) as over_http:
            getattr(ipmock_server, name)(argument)
        with pytest.raises(AdminRefused) as in_process:
            getattr(harness, name)(argument)
        assert str(over_http.value) == str(in_process.value)
        assert (over_http.value.status, over_http.value.code) == (400, "invalid_request")


def test_a_served_mock_names_the_misspelt_field(ipmock_server: RunningMock) -> None:
    with pytest.raises(AdminRefused, match=r"did you mean 'pending_polls'\?") as refused:
        ipmock_server.queue({"pending_pols": 1})
    assert str(refused.value).startswith("scenarios.0")
    with pytest.raises(AdminRefused, match="no zone: add Z"):
        ipmock_server.set_time("2030-01-01T00:00:00")


async def test_the_harness_admin_is_awaitable_on_redis(redis_url: str) -> None:
    harness = MockHarness(Settings(store=redis_url), start=START)
    try:
        await harness.admin.queue(["failure"])
        await harness.admin.clock({"advance": 30})
        async with harness.async_client() as http:
            assert (await http.post(SUBMIT_PATH, json=BODY)).json()["status"] == "FAILURE"
        assert [j["scenario"]["name"] for j in await harness.admin.jobs()] == ["failure"]
        assert (await harness.admin.clock())["now"] == START + 30
        with pytest.raises(AdminRefused, match="advance must be"):
            await harness.admin.clock({"advance": -1})
    finally:
        await harness.state.aclose()
