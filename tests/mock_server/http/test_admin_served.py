"""The admin API (/__mock/...) over the socket: queue, journal, clock, reset.

These change server-wide state, so they run on their own server (`mutable_api`), reset
before each test, never on the session server the other tests share.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.support.served import SUBMIT, Api, check_download, poll_until_done


def _submits(api: Api) -> list[dict[str, Any]]:
    response = api.admin("GET", "/__mock/journal")
    assert response.status_code == 200, response.text
    return [e for e in response.json()["entries"] if e["method"] == "POST" and e["path"] == SUBMIT]


def test_queued_scenario_picks_the_next_submit(
    mutable_api: Api, small_body: dict[str, Any]
) -> None:
    queued = mutable_api.admin("POST", "/__mock/queue", {"scenarios": ["success"]})
    assert queued.status_code == 200, queued.text
    assert [s["name"] for s in queued.json()["queue"]] == ["success"]

    first = mutable_api.submit("client-key", small_body)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "SUCCESS"
    assert len(first.json()["download_urls"]) == 1

    # The queue is used up: the next submit gets the default scenario again.
    assert mutable_api.admin("GET", "/__mock/queue").json() == {"queue": []}
    second = mutable_api.submit("client-key", small_body)
    assert second.status_code == 202, second.text
    assert second.json()["status"] == "PENDING"


def test_journal_shows_the_submit_with_the_key_redacted(
    mutable_api: Api, small_body: dict[str, Any]
) -> None:
    secret = f"sk-live-{uuid.uuid4().hex}"
    response = mutable_api.submit(secret, small_body)
    assert response.status_code == 202, response.text

    journal = mutable_api.admin("GET", "/__mock/journal")
    assert journal.status_code == 200
    assert secret not in journal.text
    [entry] = _submits(mutable_api)
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    assert "api-key" in headers
    assert headers["api-key"] != secret and secret not in headers["api-key"]
    assert entry["status"] == 202
    assert json.loads(entry["body"]) == small_body
    assert json.loads(entry["response_body"])["id"] == response.json()["id"]


def test_advancing_the_clock_finishes_a_timed_job(
    mutable_api: Api, small_body: dict[str, Any]
) -> None:
    key = "test_pending-10s-then-success"
    submitted = mutable_api.submit(key, small_body)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    before = mutable_api.poll(key, job_id)
    assert before.status_code == 200
    assert before.json()["status"] == "PENDING"

    moved = mutable_api.admin("POST", "/__mock/clock", {"advance": 11})
    assert moved.status_code == 200, moved.text
    assert moved.json()["offset"] >= 11

    after = mutable_api.poll(key, job_id)
    assert after.status_code == 200, after.text
    assert after.json()["status"] == "SUCCESS", after.json()
    [url] = after.json()["download_urls"]
    check_download(url, small_body["width"], small_body["height"], {"API-Key": key})


def test_reset_empties_jobs_queue_and_journal(mutable_api: Api, small_body: dict[str, Any]) -> None:
    job_id = mutable_api.submit("client-key", small_body).json()["id"]
    assert mutable_api.admin("POST", "/__mock/queue", {"scenarios": ["failure"]}).ok
    jobs = mutable_api.admin("GET", "/__mock/jobs")
    assert jobs.status_code == 200
    assert [j["id"] for j in jobs.json()["jobs"]] == [job_id]
    assert _submits(mutable_api)

    reset = mutable_api.admin("POST", "/__mock/reset")
    assert reset.status_code == 200, reset.text
    assert mutable_api.admin("GET", "/__mock/jobs").json() == {"jobs": []}
    assert mutable_api.admin("GET", "/__mock/queue").json() == {"queue": []}
    assert _submits(mutable_api) == []
    gone = mutable_api.poll("client-key", job_id)
    assert gone.status_code == 404, gone.text

    # With the queue emptied, a new submit follows the default scenario again.
    fresh = mutable_api.submit("client-key", small_body)
    assert fresh.status_code == 202, fresh.text
    statuses = [p["status"] for p in poll_until_done(mutable_api, "client-key", fresh.json()["id"])]
    assert statuses == ["PENDING", "SUCCESS"]
