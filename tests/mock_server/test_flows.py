"""Every flow, in process: SUCCESS, PENDING then SUCCESS/FAILURE, refusals, expiry, isolation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mock_server import Clock
from tests.conftest import PROMPT

pytestmark = pytest.mark.anyio


@pytest.fixture
def store_url(both_stores: str) -> str:
    """Each test here runs against the memory store and against Redis."""
    return both_stores


SUBMIT = "/sdxl/text2image/v1"
BODY = {"prompt": PROMPT, "samples": 2, "width": 512, "height": 512}


def status_url(job_id: str) -> str:
    return f"{SUBMIT}/status/{job_id}"


async def test_default_flow_is_pending_for_one_poll_then_success(client: httpx.AsyncClient) -> None:
    submitted = await client.post(SUBMIT, json=BODY)
    assert submitted.status_code == 202
    assert submitted.json()["status"] == "PENDING"
    job_id = submitted.json()["id"]

    first = await client.get(status_url(job_id))
    assert (first.status_code, first.json()) == (200, {"status": "PENDING", "id": job_id})

    second = await client.get(status_url(job_id))
    assert second.status_code == 200
    body = second.json()
    assert body["status"] == "SUCCESS"
    assert body["download_urls"] == [
        f"http://mock.test/images/{job_id}/0.png",
        f"http://mock.test/images/{job_id}/1.png",
    ]
    # A finished job stays finished.
    assert (await client.get(status_url(job_id))).json() == body


@pytest.mark.parametrize("samples", [1, 2, 3, 4])
async def test_success_carries_one_url_per_sample(client: httpx.AsyncClient, samples: int) -> None:
    response = await client.post(
        SUBMIT, json={**BODY, "samples": samples}, headers={"API-Key": "test_success"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "SUCCESS"
    assert len(response.json()["download_urls"]) == samples


async def test_pending_then_failure(client: httpx.AsyncClient) -> None:
    headers = {"API-Key": "test_pending-then-failure"}
    job_id = (await client.post(SUBMIT, json=BODY, headers=headers)).json()["id"]
    assert (await client.get(status_url(job_id), headers=headers)).json()["status"] == "PENDING"
    final = await client.get(status_url(job_id), headers=headers)
    assert final.status_code == 200
    assert final.json()["status"] == "FAILURE"
    assert final.json()["code"] == "generation_failed"
    assert "GPU memory" in final.json()["error"]


async def test_failure_at_once_is_http_200_with_the_message(client: httpx.AsyncClient) -> None:
    response = await client.post(SUBMIT, json=BODY, headers={"X-Ipmock-Scenario": "failure"})
    assert response.status_code == 200
    assert response.json()["status"] == "FAILURE"
    assert response.json()["error"]


async def test_pending_three_polls(client: httpx.AsyncClient) -> None:
    headers = {"X-Ipmock-Scenario": "pending-3-then-success"}
    job_id = (await client.post(SUBMIT, json=BODY, headers=headers)).json()["id"]
    states = [(await client.get(status_url(job_id))).json()["status"] for _ in range(5)]
    assert states == ["PENDING", "PENDING", "PENDING", "SUCCESS", "SUCCESS"]


async def test_pending_by_time_follows_the_movable_clock(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    headers = {"API-Key": "test_pending-10s-then-success"}
    job_id = (await client.post(SUBMIT, json=BODY, headers=headers)).json()["id"]
    for _ in range(3):
        assert (await client.get(status_url(job_id), headers=headers)).json()["status"] == "PENDING"
    clock.advance(9.9)
    assert (await client.get(status_url(job_id), headers=headers)).json()["status"] == "PENDING"
    clock.advance(0.1)
    assert (await client.get(status_url(job_id), headers=headers)).json()["status"] == "SUCCESS"


async def test_stuck_stays_pending(client: httpx.AsyncClient, clock: Clock) -> None:
    job_id = (await client.post(SUBMIT, json=BODY, headers={"API-Key": "test_stuck"})).json()["id"]
    clock.advance(3000)
    for _ in range(20):
        response = await client.get(status_url(job_id), headers={"API-Key": "test_stuck"})
        assert response.json()["status"] == "PENDING"


@pytest.mark.parametrize(
    ("scenario", "http_status", "code", "retry_after"),
    [
        ("rate-limited", 429, "rate_limited", "2"),
        ("busy", 503, "busy", "5"),
        ("no-credits", 402, "insufficient_credits", None),
        ("unauthorized", 401, "unauthorized", None),
        ("server-error", 500, "server_error", None),
    ],
)
@pytest.mark.parametrize("via", ["key", "header"])
async def test_refusals(
    client: httpx.AsyncClient,
    scenario: str,
    http_status: int,
    code: str,
    retry_after: str | None,
    via: str,
) -> None:
    headers = {"API-Key": f"test_{scenario}"} if via == "key" else {"X-Ipmock-Scenario": scenario}
    response = await client.post(SUBMIT, json=BODY, headers=headers)
    assert response.status_code == http_status
    assert response.json()["status"] == "FAILURE"
    assert response.json()["code"] == code
    assert response.headers.get("retry-after") == retry_after
    assert (await client.get("/__mock/jobs")).json()["jobs"] == []


async def test_a_test_key_refusal_applies_to_polls_too(client: httpx.AsyncClient) -> None:
    response = await client.get(status_url("x" * 24), headers={"API-Key": "test_rate-limited"})
    assert response.status_code == 429


async def test_unknown_scenario_names_the_known_ones(client: httpx.AsyncClient) -> None:
    response = await client.post(SUBMIT, json=BODY, headers={"X-Ipmock-Scenario": "sucess"})
    assert response.status_code == 400
    assert "unknown scenario 'sucess'" in response.json()["error"]
    assert "success" in response.json()["error"]
    unknown_key = await client.post(SUBMIT, json=BODY, headers={"API-Key": "test_nope"})
    assert unknown_key.status_code == 400


async def test_missing_key(client: httpx.AsyncClient) -> None:
    response = await client.post(SUBMIT, json=BODY, headers={"API-Key": ""})
    assert response.status_code == 401
    assert "API-Key" in response.json()["error"]


async def test_unknown_id(client: httpx.AsyncClient) -> None:
    response = await client.get(status_url("does-not-exist-1234"))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_a_key_never_reads_another_keys_job(client: httpx.AsyncClient) -> None:
    job_id = (await client.post(SUBMIT, json=BODY, headers={"API-Key": "alice"})).json()["id"]
    stolen = await client.get(status_url(job_id), headers={"API-Key": "bob"})
    assert stolen.status_code == 404
    assert (await client.get(status_url(job_id), headers={"API-Key": "alice"})).status_code == 200


async def test_expired_scenario_and_ttl(
    make_client: Callable[..., httpx.AsyncClient], clock: Clock
) -> None:
    async with make_client(job_ttl=60) as client:
        expired = (await client.post(SUBMIT, json=BODY, headers={"API-Key": "test_expired"})).json()
        response = await client.get(status_url(expired["id"]), headers={"API-Key": "test_expired"})
        assert response.status_code == 410
        assert response.json()["code"] == "expired"

        job_id = (await client.post(SUBMIT, json=BODY)).json()["id"]
        clock.advance(59)
        assert (await client.get(status_url(job_id))).status_code == 200
        clock.advance(1)
        assert (await client.get(status_url(job_id))).status_code == 410


async def test_queue_then_rules_then_default(
    make_client: Callable[..., httpx.AsyncClient], tmp_path: Path
) -> None:
    config = tmp_path / "ipmock.toml"
    config.write_text(
        '[[rules]]\nscenario = "pending-then-failure"\n[rules.match]\n'
        'prompt = { contains = "explode" }\n'
    )
    async with make_client(config=config) as client:
        queued = await client.post(
            "/__mock/queue",
            json={
                "scenarios": [
                    "success",
                    {"pending_polls": 0, "outcome": "failure", "error": "queued failure"},
                ]
            },
        )
        assert queued.status_code == 200
        assert len(queued.json()["queue"]) == 2
        explode = {**BODY, "prompt": "explode"}
        # The queue comes before the rules, first in first out.
        assert (await client.post(SUBMIT, json=explode)).json()["status"] == "SUCCESS"
        second = (await client.post(SUBMIT, json=explode)).json()
        assert (second["status"], second["error"]) == ("FAILURE", "queued failure")
        # Then the rules.
        job_id = (await client.post(SUBMIT, json=explode)).json()["id"]
        await client.get(status_url(job_id))
        assert (await client.get(status_url(job_id))).json()["status"] == "FAILURE"
        # Then the default.
        job_id = (await client.post(SUBMIT, json=BODY)).json()["id"]
        await client.get(status_url(job_id))
        assert (await client.get(status_url(job_id))).json()["status"] == "SUCCESS"


async def test_header_beats_key_and_queue(client: httpx.AsyncClient) -> None:
    await client.post("/__mock/queue", json={"scenarios": ["failure"]})
    response = await client.post(
        SUBMIT, json=BODY, headers={"API-Key": "test_busy", "X-Ipmock-Scenario": "success"}
    )
    assert response.json()["status"] == "SUCCESS"
    # The invalid or refused request did not consume the queue: the next valid one does.
    assert (await client.post(SUBMIT, json=BODY)).json()["status"] == "FAILURE"


async def test_invalid_request_does_not_consume_the_queue(client: httpx.AsyncClient) -> None:
    await client.post("/__mock/queue", json={"scenarios": ["success"]})
    assert (await client.post(SUBMIT, json={"samples": 9})).status_code == 400
    assert (await client.post(SUBMIT, json=BODY)).json()["status"] == "SUCCESS"


async def test_seeded_chaos_is_reproducible(make_client: Callable[..., httpx.AsyncClient]) -> None:
    async def run() -> list[int]:
        async with make_client(chaos=True, seed=7) as client:
            return [(await client.post(SUBMIT, json=BODY)).status_code for _ in range(40)]

    first, second = await run(), await run()
    assert first == second
    assert {200, 202} <= set(first)
    assert len(set(first)) >= 3


async def test_random_seed_is_picked_and_kept(client: httpx.AsyncClient) -> None:
    headers = {"API-Key": "test_success"}
    a = (await client.post(SUBMIT, json=BODY, headers=headers)).json()["id"]
    b = (await client.post(SUBMIT, json={**BODY, "seed": 42}, headers=headers)).json()["id"]
    jobs = {j["id"]: j for j in (await client.get("/__mock/jobs")).json()["jobs"]}
    assert 0 <= jobs[a]["seed"] < 2**32
    assert jobs[b]["seed"] == 42


async def test_warnings_reach_the_client(client: httpx.AsyncClient) -> None:
    response = await client.post(SUBMIT, json={**BODY, "sampels": 3})
    assert response.status_code == 202
    assert response.json()["warnings"] == [
        "unknown field sampels is ignored (did you mean samples?)"
    ]


async def test_job_ids_are_unguessable(client: httpx.AsyncClient) -> None:
    ids = {(await client.post(SUBMIT, json=BODY)).json()["id"] for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) >= 24 for i in ids)


async def test_download_urls_follow_the_host_the_client_used(client: httpx.AsyncClient) -> None:
    headers = {"API-Key": "test_success", "Host": "images.example.test:9999"}
    urls = (await client.post(SUBMIT, json=BODY, headers=headers)).json()["download_urls"]
    assert urls[0].startswith("http://images.example.test:9999/images/")


async def test_public_url_overrides_the_host(make_client: Callable[..., httpx.AsyncClient]) -> None:
    async with make_client(public_url="https://cdn.example.test/mock/") as client:
        response = await client.post(SUBMIT, json=BODY, headers={"API-Key": "test_success"})
        assert response.json()["download_urls"][0].startswith(
            "https://cdn.example.test/mock/images/"
        )


async def test_faults_replace_chosen_status_answers(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    scenario = {
        "pending_polls": 1,
        "extra_fields": True,
        "faults": [
            {"at_request": 1, "kind": "rate-limited", "retry_after": 3},
            {"at_request": 2, "kind": "delay", "seconds": 7.5},
            {"at_request": 3, "kind": "server-error"},
            {"at_request": 4, "kind": "busy", "retry_after": 4},
        ],
    }
    await client.post("/__mock/queue", json={"scenarios": [scenario]})
    job_id = (await client.post(SUBMIT, json=BODY)).json()["id"]
    limited = await client.get(status_url(job_id))
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    before = clock.now()
    delayed = await client.get(status_url(job_id))  # answered as usual, 7.5 s later
    assert (delayed.status_code, delayed.json()["status"]) == (200, "PENDING")
    assert clock.now() - before == pytest.approx(7.5)
    assert delayed.json()["meta"] == {"queue_position": 3, "worker": "mock"}
    assert (await client.get(status_url(job_id))).status_code == 500
    busy = await client.get(status_url(job_id))
    assert (busy.status_code, busy.headers["retry-after"]) == (503, "4")
    # Faulted requests were not polls: the job needed one PENDING poll (the delayed one).
    done = await client.get(status_url(job_id))
    assert done.json()["status"] == "SUCCESS"
    assert done.json()["x_trace"] == "ab12"


async def test_drop_breaks_the_answer_off(client: httpx.AsyncClient) -> None:
    from mock_server.faults import ConnectionDropped

    await client.post(
        "/__mock/queue",
        json={
            "scenarios": [
                {
                    "pending_polls": 0,
                    "pending_seconds": 1,
                    "faults": [{"at_request": 1, "kind": "drop"}],
                }
            ]
        },
    )
    job_id = (await client.post(SUBMIT, json=BODY)).json()["id"]
    with pytest.raises(ConnectionDropped):
        await client.get(status_url(job_id))
    journal = (await client.get("/__mock/journal")).json()["entries"]
    assert journal[-1]["dropped"] is True


async def test_scenario_url_ttl(client: httpx.AsyncClient, clock: Clock) -> None:
    await client.post("/__mock/queue", json={"scenarios": [{"url_ttl": 5}]})
    url = (await client.post(SUBMIT, json=BODY)).json()["download_urls"][0]
    assert (await client.get(url)).status_code == 200
    clock.advance(5)
    assert (await client.get(url)).status_code == 410


async def test_a_submit_fault_comes_after_the_job_exists(client: httpx.AsyncClient) -> None:
    from mock_server.faults import ConnectionDropped

    faults = [{"at_request": 1, "kind": "drop", "on": "submit"}]
    await client.post("/__mock/queue", json={"scenarios": [{"faults": faults}]})
    with pytest.raises(ConnectionDropped):  # a plain ASGITransport passes the drop on
        await client.post(SUBMIT, json=BODY)
    (entry,) = (await client.get("/__mock/journal")).json()["entries"]
    assert (entry["fault"], entry["dropped"], entry["scenario"]) == ("drop", True, "inline")
    jobs = (await client.get("/__mock/jobs")).json()["jobs"]
    assert [j["id"] for j in jobs] == [entry["job_id"]]  # made, though the client never knew
    done = await client.get(status_url(entry["job_id"]))
    assert (done.status_code, done.json()["status"]) == (200, "SUCCESS")


async def test_a_500_submit_fault_has_made_the_job_a_refusing_one_has_not(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    scenarios = [
        {"faults": [{"at_request": 1, "kind": "server-error", "on": "submit"}]},
        {"faults": [{"at_request": 1, "kind": "busy", "on": "submit", "retry_after": 6}]},
        {"faults": [{"at_request": 1, "kind": "delay", "on": "submit", "seconds": 4}]},
    ]
    await client.post("/__mock/queue", json={"scenarios": scenarios})
    failed = await client.post(SUBMIT, json=BODY)
    assert (failed.status_code, failed.json()["code"]) == (500, "server_error")
    busy = await client.post(SUBMIT, json=BODY)
    assert (busy.status_code, busy.headers["retry-after"]) == (503, "6")
    before = clock.now()
    late = await client.post(SUBMIT, json=BODY)
    assert (late.status_code, late.json()["status"]) == (200, "SUCCESS")
    assert clock.now() - before == pytest.approx(4)
    entries = (await client.get("/__mock/journal")).json()["entries"]
    made = [e["job_id"] for e in entries]
    assert made[0] is not None and made[1] is None and made[2] == late.json()["id"]
    jobs = (await client.get("/__mock/jobs")).json()["jobs"]
    assert sorted(j["id"] for j in jobs) == sorted([made[0], made[2]])


async def test_download_faults_count_every_url_of_the_job(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    scenario = {
        "url_ttl": 60,
        "faults": [
            {"at_request": 1, "kind": "rate-limited", "on": "download", "retry_after": 2},
            {"at_request": 3, "kind": "delay", "on": "download", "seconds": 9},
            {"at_request": 1, "kind": "server-error"},  # a poll fault: downloads unaffected
        ],
    }
    await client.post("/__mock/queue", json={"scenarios": [scenario]})
    first, second = (await client.post(SUBMIT, json=BODY)).json()["download_urls"]
    limited = await client.get(second)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
    assert (await client.get(first)).status_code == 200
    before = clock.now()
    late = await client.get(second)  # the job's third download
    assert (late.status_code, late.headers["content-type"]) == (200, "image/png")
    assert clock.now() - before == pytest.approx(9)
    assert (await client.get(second)).status_code == 200
    clock.advance(60)
    assert (await client.get(first)).status_code == 410  # expired: the URL's own answer
    faults = [
        e["fault"] for e in (await client.get("/__mock/journal?path=/images/")).json()["entries"]
    ]
    assert faults == ["rate-limited", None, "delay", None, None]


async def test_downloads_are_not_counted_when_no_fault_can_hit_them(
    client: httpx.AsyncClient,
) -> None:
    url = (await client.post(SUBMIT, json=BODY, headers={"API-Key": "test_success"})).json()[
        "download_urls"
    ][0]
    for _ in range(3):
        assert (await client.get(url)).status_code == 200
    (job,) = (await client.get("/__mock/jobs")).json()["jobs"]
    assert job["downloads"] == 0  # no store write per download


async def test_configured_api_keys_refuse_others(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    from mock_server.settings import Secret

    async with make_client(api_keys=(Secret("sk-alpha"), Secret("sk-beta"))) as client:
        for key in ("sk-alpha", "sk-beta", "test_success"):
            response = await client.post(SUBMIT, json=BODY, headers={"API-Key": key})
            assert response.status_code in (200, 202), key
        for key in ("sk-alph", "sk-alpha2", "SK-ALPHA"):
            response = await client.post(SUBMIT, json=BODY, headers={"API-Key": key})
            assert (response.status_code, response.json()["error"]) == (401, "invalid API key")
        poll = await client.get(status_url("x" * 24), headers={"API-Key": "nope"})
        assert poll.status_code == 401


async def test_a_job_keeps_only_the_documented_fields(client: httpx.AsyncClient) -> None:
    submitted = await client.post(SUBMIT, json={**BODY, "x_huge": ["a" * 1000] * 100})
    assert any("x_huge" in w for w in submitted.json()["warnings"])
    job = (await client.get(f"/__mock/jobs/{submitted.json()['id']}")).json()
    assert "x_huge" not in job["request"] and job["request"]["prompt"] == PROMPT


async def test_a_body_cut_short_is_a_quiet_400(
    make_client: Callable[..., httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    messages = iter(
        [
            {"type": "http.request", "body": b'{"prompt": "a', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, object]] = []

    async def receive() -> object:
        return next(messages)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": SUBMIT,
        "raw_path": SUBMIT.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "headers": [(b"api-key", b"k"), (b"content-length", b"1000")],
    }
    async with make_client() as client:
        await client._transport.app(scope, receive, send)  # type: ignore[attr-defined]
    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
