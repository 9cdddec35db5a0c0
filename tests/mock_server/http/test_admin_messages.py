"""The admin API's index at /__mock/, and what its queue says of a body it cannot use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from mock_server import Settings, create_app
from mock_server.http.admin import admin_routes
from mock_server.settings import Secret

pytestmark = pytest.mark.anyio

TOKEN = {"X-Ipmock-Admin-Token": "s3cret"}


async def test_the_index_lists_every_admin_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/__mock/")
    assert response.status_code == 200
    routes = response.json()["routes"]
    expected = [r.path for r in admin_routes() if isinstance(r, Route)]
    assert [r["path"] for r in routes] == expected
    assert "/__mock/queue" in expected and "/__mock/" in expected
    by_path = {r["path"]: r for r in routes}
    assert by_path["/__mock/queue"]["methods"] == ["DELETE", "GET", "POST"]
    assert by_path["/__mock/reset"]["methods"] == ["POST"]
    assert all(r["description"] for r in routes)


async def test_the_index_follows_the_admin_token_rule() -> None:
    app = create_app(Settings(admin_token=Secret("s3cret")))
    transport = httpx.ASGITransport(app=app, client=("10.0.0.5", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://mock.test") as client:
        refused = await client.get("/__mock/")
        assert refused.status_code == 403 and refused.json()["code"] == "unauthorized"
        assert (await client.get("/__mock/", headers=TOKEN)).status_code == 200


async def test_the_index_is_loopback_only_without_a_token() -> None:
    app = create_app(Settings())
    transport = httpx.ASGITransport(app=app, client=("10.0.0.5", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://mock.test") as client:
        assert (await client.get("/__mock/")).status_code == 403


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"bogus": 1},
            "admin API: unknown key 'bogus': send {\"scenarios\": [name or scenario object, ...]}",
        ),
        (
            {"scenarios": ["success"], "bogus": 1, "extra": 2},
            "admin API: unknown keys 'bogus', 'extra': "
            'send {"scenarios": [name or scenario object, ...]}',
        ),
        ([1], "admin API: scenarios.0 must be a scenario name or a scenario object, got 1"),
        (
            {"scenarios": ["success", None]},
            "admin API: scenarios.1 must be a scenario name or a scenario object, got null",
        ),
        (
            {"scenarios": [{"colour": "red"}]},
            "admin API: scenarios.0: unknown field 'colour', not one of "
            "name, description, pending_polls, pending_seconds, outcome, error, "
            "expires_after, refusal, url_ttl, extra_fields, faults",
        ),
    ],
)
async def test_queue_says_what_is_wrong(client: httpx.AsyncClient, body: Any, message: str) -> None:
    response = await client.post("/__mock/queue", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == message
    assert (await client.get("/__mock/queue")).json() == {"queue": []}


async def test_queue_names_where_an_unknown_scenario_is(client: httpx.AsyncClient) -> None:
    response = await client.post("/__mock/queue", json={"scenarios": ["success", "nope"]})
    assert response.status_code == 400
    assert response.json()["error"].startswith("admin API: scenarios.1: unknown scenario 'nope'")


async def test_queue_refuses_an_infinite_number(client: httpx.AsyncClient) -> None:
    body = b'{"scenarios": [{"expires_after": Infinity}]}'
    response = await client.post("/__mock/queue", content=body)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "admin API: scenarios.0: expires_after: inf is not a finite number"
    )


async def test_a_huge_unknown_key_is_shortened(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    async with make_client() as client:
        response = await client.post("/__mock/queue", json={"k" * 20_000: 1})
    assert response.status_code == 400
    assert "20000 characters" in response.json()["error"]
    assert len(response.json()["error"]) < 300
