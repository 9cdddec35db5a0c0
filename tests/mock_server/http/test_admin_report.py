"""GET /__mock/report: the live report through the admin API, on the memory store and
on Redis: clients by id (never by key), broken properties by seq, clear 400s, the guard."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from mock_server.report import client_id
from tests.conftest import KEY

pytestmark = pytest.mark.anyio

SUBMIT = "/sdxl/text2image/v1"
BODY = {"prompt": "a cat", "width": 64, "height": 64}
HASTY_KEY = "sk-hasty-client-0123456789"


@pytest.fixture
def store_url(both_stores: str) -> str:
    return both_stores


async def _advance(client: httpx.AsyncClient, seconds: float) -> None:
    assert (await client.post("/__mock/clock", json={"advance": seconds})).status_code == 200


async def _careful(client: httpx.AsyncClient) -> None:
    job = (await client.post(SUBMIT, json=BODY)).json()
    while job["status"] == "PENDING":
        await _advance(client, 1.0)
        job = (await client.get(f"{SUBMIT}/status/{job['id']}")).json()
    for url in job["download_urls"]:
        assert (await client.get(url)).status_code == 200


async def test_a_careful_client_and_a_hasty_one(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    async with make_client() as client:
        await _careful(client)
        hasty = {"API-Key": HASTY_KEY}
        job = (await client.post(SUBMIT, json=BODY, headers=hasty)).json()
        for _ in range(3):
            await client.get(f"{SUBMIT}/status/{job['id']}", headers=hasty)
        response = await client.get("/__mock/report")
    assert response.status_code == 200
    report = response.json()
    assert HASTY_KEY not in response.text and KEY not in response.text
    by_id = {c["client"]: c for c in report["clients"]}
    assert set(by_id) == {client_id(KEY), client_id(HASTY_KEY)}
    assert by_id[client_id(KEY)]["broken"] is False
    floor = by_id[client_id(HASTY_KEY)]["properties"]["respects_poll_floor"]
    assert floor["state"] == "broken"
    first = by_id[client_id(HASTY_KEY)]["first_seq"]
    assert floor["seqs"] == [first + 1, first + 2, first + 3]
    assert report["broken"] is True


async def test_key_selects_one_client_and_numbers_set_the_bar(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    async with make_client() as client:
        await _careful(client)
        one = await client.get("/__mock/report", params={"key": client_id(KEY)})
        strict = await client.get("/__mock/report", params={"poll_floor": "5", "deadline": "60"})
    assert [c["client"] for c in one.json()["clients"]] == [client_id(KEY)]
    assert strict.json()["poll_floor"] == 5.0 and strict.json()["deadline"] == 60.0
    (careful,) = strict.json()["clients"]
    assert careful["properties"]["respects_poll_floor"]["state"] == "broken"


async def test_the_journals_bound_is_said(make_client: Callable[..., httpx.AsyncClient]) -> None:
    async with make_client(journal_size=2) as client:
        await _careful(client)
        report = (await client.get("/__mock/report")).json()
    assert report["journal"]["first_seq"] > 1 and report["journal"]["dropped"] > 0
    (careful,) = report["clients"]
    assert "dropped" in careful["incomplete"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"poll_floor": "soon"}, 'poll_floor must be a number of seconds, got "soon"'),
        ({"poll_floor": "-1"}, "poll_floor must be a number of seconds from 0 to 3600, got -1"),
        ({"deadline": "nan"}, "deadline must be a number of seconds from 0.001 to 86400"),
        ({"deadline": "inf"}, "deadline must be a number of seconds from 0.001 to 86400"),
        ({"key": "x" * 101}, "key must be a client id of at most 100 characters"),
        ({"key": "sk-my-secret-key"}, "not an API key"),
        ({"pollfloor": "1"}, "unknown parameter 'pollfloor' (did you mean 'poll_floor'?)"),
    ],
)
async def test_bad_values_are_named_in_a_400(
    make_client: Callable[..., httpx.AsyncClient], params: dict[str, str], words: str
) -> None:
    async with make_client() as client:
        response = await client.get("/__mock/report", params=params)
    assert response.status_code == 400
    assert words in response.json()["error"]
    assert response.json()["error"].startswith("admin API: ")
    assert "sk-my-secret-key" not in response.text


async def test_the_report_is_guarded_as_the_admin_api_is(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    async with make_client(admin_token="s3cret") as client:
        assert (await client.get("/__mock/report")).status_code == 403
        headers = {"X-Ipmock-Admin-Token": "s3cret"}
        assert (await client.get("/__mock/report", headers=headers)).status_code == 200
