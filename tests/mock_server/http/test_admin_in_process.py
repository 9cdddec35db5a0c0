"""The admin API: access rules, reset, queue, clock, journal, jobs."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from mock_server import Clock, Settings, create_app
from mock_server.settings import Secret
from tests.conftest import KEY, _AppTransport

pytestmark = pytest.mark.anyio


@pytest.fixture
def store_url(both_stores: str) -> str:
    """Each test here runs against the memory store and against Redis."""
    return both_stores


SUBMIT = "/sdxl/text2image/v1"
BODY = {"prompt": "a cat"}


def client_from(host: str, **settings: object) -> httpx.AsyncClient:
    app = create_app(Settings(**settings))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://mock.test")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "127.8.9.10"])
async def test_open_to_loopback_without_token(host: str) -> None:
    async with client_from(host) as client:
        assert (await client.get("/__mock/jobs")).status_code == 200


@pytest.mark.parametrize("host", ["10.0.0.5", "192.168.1.2", "2001:db8::1", "not-an-ip"])
async def test_refused_off_loopback_without_token(host: str) -> None:
    async with client_from(host) as client:
        response = await client.get("/__mock/jobs")
        assert response.status_code == 403
        assert "--admin-token" in response.json()["error"]
        # The API itself stays open.
        assert (await client.post(SUBMIT, json=BODY, headers={"API-Key": "k"})).status_code == 202


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.5"])
async def test_token_required_everywhere_when_set(host: str) -> None:
    async with client_from(host, admin_token=Secret("s3cret")) as client:
        assert (await client.get("/__mock/jobs")).status_code == 403
        wrong = {"X-Ipmock-Admin-Token": "s3creT"}
        assert (await client.get("/__mock/jobs", headers=wrong)).status_code == 403
        right = {"X-Ipmock-Admin-Token": "s3cret"}
        assert (await client.get("/__mock/jobs", headers=right)).status_code == 200


async def test_journal_records_exchanges_with_the_key_redacted(client: httpx.AsyncClient) -> None:
    submitted = await client.post(SUBMIT, json={"prompt": "a cat", "samples": 2})
    await client.get(f"{SUBMIT}/status/{submitted.json()['id']}")
    await client.get("/__mock/jobs")  # admin calls are not journalled
    entries = (await client.get("/__mock/journal")).json()["entries"]
    assert [(e["method"], e["path"].split("/status/")[0], e["status"]) for e in entries] == [
        ("POST", SUBMIT, 202),
        ("GET", SUBMIT, 200),
    ]
    first = entries[0]
    assert first["headers"]["api-key"] == "<redacted>"
    assert KEY not in json.dumps(entries)
    assert json.loads(first["body"]) == {"prompt": "a cat", "samples": 2}
    assert json.loads(first["response_body"])["status"] == "PENDING"
    assert first["duration_ms"] >= 0
    only_status = (await client.get("/__mock/journal", params={"path": f"{SUBMIT}/status"})).json()
    assert len(only_status["entries"]) == 1
    assert (await client.delete("/__mock/journal")).json() == {"entries": []}


async def test_journal_is_bounded(make_client: Callable[..., httpx.AsyncClient]) -> None:
    async with make_client(journal_size=5) as client:
        for _ in range(8):
            await client.get(f"{SUBMIT}/status/nope-nope-nope-nope")
        assert len((await client.get("/__mock/journal")).json()["entries"]) == 5


async def test_reset_forgets_everything(client: httpx.AsyncClient, clock: Clock) -> None:
    job_id = (await client.post(SUBMIT, json=BODY)).json()["id"]
    await client.post("/__mock/queue", json={"scenarios": ["success"]})
    await client.post("/__mock/clock", json={"advance": 5})
    assert (await client.post("/__mock/reset")).status_code == 200
    assert (await client.get("/__mock/jobs")).json() == {"jobs": []}
    assert (await client.get("/__mock/queue")).json() == {"queue": []}
    assert (await client.get("/__mock/journal")).json() == {"entries": []}
    assert clock.offset == 0
    assert (await client.get(f"{SUBMIT}/status/{job_id}")).status_code == 404


async def test_clock(client: httpx.AsyncClient) -> None:
    before = (await client.get("/__mock/clock")).json()
    after = (await client.post("/__mock/clock", json={"advance": 30})).json()
    assert after["now"] - before["now"] == pytest.approx(30)
    for bad in ({"advance": -1}, {"advance": "soon"}, {"advance": True}, {}, [1]):
        response = await client.post("/__mock/clock", json=bad)
        assert response.status_code == 400, bad
        assert "advance" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"scenarios": ["nope"]}, "unknown scenario 'nope'"),
        ({"scenarios": [{"outcome": "maybe"}]}, "scenarios.0: outcome"),
        ({"scenarios": [{"pending_polls": -1}]}, "scenarios.0: pending_polls"),
        ({"scenarios": [{"colour": "red"}]}, "colour"),
        ({"scenarios": []}, "scenarios"),
        ({}, "scenarios"),
    ],
)
async def test_queue_refuses_bad_scenarios_clearly(
    client: httpx.AsyncClient, body: dict[str, object], needle: str
) -> None:
    response = await client.post("/__mock/queue", json=body)
    assert response.status_code == 400
    assert needle in response.json()["error"]
    assert (await client.get("/__mock/queue")).json() == {"queue": []}


async def test_queue_bad_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/__mock/queue", content=b"{nope")
    assert response.status_code == 400


async def test_scenarios_list_has_test_keys(client: httpx.AsyncClient) -> None:
    listing = (await client.get("/__mock/scenarios")).json()
    keys = {s["test_key"] for s in listing["scenarios"]}
    assert {"test_success", "test_pending-then-failure", "test_rate-limited"} <= keys
    assert listing["default"] == "pending-then-success"


async def test_jobs_show_polls_and_scenario(client: httpx.AsyncClient) -> None:
    job_id = (await client.post(SUBMIT, json=BODY)).json()["id"]
    await client.get(f"{SUBMIT}/status/{job_id}")
    job = (await client.get(f"/__mock/jobs/{job_id}")).json()
    assert (job["polls"], job["state"], job["scenario"]["name"]) == (
        1,
        "PENDING",
        "pending-then-success",
    )
    assert KEY not in json.dumps(job)
    assert (await client.get("/__mock/jobs/nope")).status_code == 404


async def test_the_clock_is_set_to_a_time(client: httpx.AsyncClient) -> None:
    iso = (await client.post("/__mock/clock", json={"set": "2030-01-01T00:00:00Z"})).json()
    assert (iso["now"], iso["time"], iso["frozen"]) == (
        1_893_456_000.0,
        "2030-01-01T00:00:00Z",
        False,
    )
    zoned = (await client.post("/__mock/clock", json={"set": "2030-01-01T02:00:00+02:00"})).json()
    assert zoned["now"] == 1_893_456_000.0
    back = (await client.post("/__mock/clock", json={"set": 86_400})).json()
    assert (back["now"], back["time"]) == (86_400.0, "1970-01-02T00:00:00Z")
    assert (await client.get("/__mock/clock")).json() == back


async def test_a_frozen_clock_keeps_a_timed_job_pending(store_url: str) -> None:
    wall = [1_000_000.0]
    app = create_app(Settings(store=store_url), clock=Clock(source=lambda: wall[0]))
    transport = _AppTransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mock.test") as client:
        key = {"API-Key": "test_pending-10s-then-success"}
        job_id = (await client.post(SUBMIT, json=BODY, headers=key)).json()["id"]
        frozen = (await client.post("/__mock/clock", json={"freeze": True})).json()
        assert frozen["frozen"] is True
        wall[0] += 60  # a minute of wall time: the mock's clock stands still
        assert (await client.get(f"{SUBMIT}/status/{job_id}", headers=key)).json()["status"] == (
            "PENDING"
        )
        assert (await client.get("/__mock/clock")).json()["now"] == frozen["now"]
        both = {"advance": 11, "freeze": False}  # moved on while frozen, then let run
        running = (await client.post("/__mock/clock", json=both)).json()
        assert (running["now"], running["frozen"]) == (frozen["now"] + 11, False)
        done = (await client.get(f"{SUBMIT}/status/{job_id}", headers=key)).json()
        assert done["status"] == "SUCCESS"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", 'admin API: send {"advance": seconds}'),
        (b"[1]", 'admin API: send {"advance": seconds}'),
        (b'{"set": NaN}', "admin API: set must be seconds since the epoch"),
        (b'{"set": Infinity}', "admin API: set must be seconds since the epoch"),
        (b'{"set": -1}', "admin API: set must be seconds since the epoch"),
        (b'{"set": 1e12}', "admin API: set must be seconds since the epoch"),
        (b'{"set": true}', "admin API: set must be seconds since the epoch"),
        (
            b'{"set": "tomorrow"}',
            'or an ISO 8601 time with its zone, such as "2030-01-01T00:00:00Z", got "tomorrow"',
        ),
        (b'{"set": "2030-01-01T00:00:00"}', 'got "2030-01-01T00:00:00" (no zone: add Z or +00:00)'),
        (b'{"advance": NaN}', "admin API: advance must be a number of seconds from 0 to 1e9"),
        (b'{"advance": -5}', "(the clock only moves forward; set goes back), got -5"),
        (b'{"freeze": "yes"}', 'admin API: freeze must be true or false, got "yes"'),
        (b'{"fraeze": true}', "admin API: unknown key 'fraeze' (did you mean 'freeze'?)"),
        (b'{"set": 10, "advance": -1}', "advance must be"),
    ],
)
async def test_bad_clock_values_are_refused_and_change_nothing(
    client: httpx.AsyncClient, body: bytes, message: str
) -> None:
    before = (await client.get("/__mock/clock")).json()
    response = await client.post("/__mock/clock", content=body)
    assert response.status_code == 400
    assert message in response.json()["error"], response.json()["error"]
    assert (await client.get("/__mock/clock")).json() == before


async def test_reset_unfreezes_the_clock(client: httpx.AsyncClient, clock: Clock) -> None:
    await client.post("/__mock/clock", json={"set": 5, "freeze": True})
    await client.post("/__mock/reset")
    after = (await client.get("/__mock/clock")).json()
    assert (after["frozen"], after["offset"]) == (False, 0)
