"""Every documented flow over the socket, chosen by a test API key (test_<scenario>),
and the API-key rules: missing key, unknown id, another key's job."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.served import Api, poll_until_done


def _failure_body(body: dict[str, Any]) -> str:
    """A FAILURE answer's error message; checks the body has the FAILURE shape."""
    assert body["status"] == "FAILURE", body
    assert isinstance(body["error"], str) and body["error"].strip(), body
    assert "download_urls" not in body
    error: str = body["error"]
    return error


def test_success_key_answers_success_at_once(api: Api, small_body: dict[str, Any]) -> None:
    response = api.submit("test_success", {**small_body, "samples": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "SUCCESS", body
    assert body["id"]
    assert len(body["download_urls"]) == 2
    polled = api.poll("test_success", body["id"])
    assert polled.status_code == 200
    assert polled.json()["status"] == "SUCCESS"
    assert polled.json()["download_urls"] == body["download_urls"]


def test_pending_then_failure_key_fails_on_the_status_endpoint(
    api: Api, small_body: dict[str, Any]
) -> None:
    expected = api.scenario("pending-then-failure")["error"]
    response = api.submit("test_pending-then-failure", small_body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "PENDING"
    job_id = response.json()["id"]

    polls = poll_until_done(api, "test_pending-then-failure", job_id)
    assert [p["status"] for p in polls] == ["PENDING", "FAILURE"]
    assert _failure_body(polls[-1]) == expected
    # FAILURE is final.
    again = api.poll("test_pending-then-failure", job_id)
    assert again.status_code == 200
    assert _failure_body(again.json()) == expected


def test_failure_key_fails_at_once_with_http_200(api: Api, small_body: dict[str, Any]) -> None:
    expected = api.scenario("failure")["error"]
    response = api.submit("test_failure", small_body)
    assert response.status_code == 200, response.text
    assert _failure_body(response.json()) == expected


@pytest.mark.parametrize(
    ("scenario", "http_status", "retry_after"),
    [
        ("rate-limited", 429, True),
        ("busy", 503, True),
        ("no-credits", 402, False),
        ("unauthorized", 401, False),
    ],
)
def test_refusal_keys(
    api: Api, small_body: dict[str, Any], scenario: str, http_status: int, retry_after: bool
) -> None:
    refusal = api.scenario(scenario)["refusal"]
    key = f"test_{scenario}"
    response = api.submit(key, small_body)
    assert response.status_code == http_status, response.text
    body = response.json()
    assert _failure_body(body) == refusal["error"]
    assert "id" not in body, "a refused request makes no job"
    if retry_after:
        header = response.headers.get("Retry-After", "")
        assert header.isdigit(), response.headers
        assert int(header) == refusal["retry_after"] > 0
    else:
        assert "Retry-After" not in response.headers

    # A key that names a refusal is refused on the status endpoint too.
    polled = api.poll(key, "some-job-id")
    assert polled.status_code == http_status, polled.text
    assert _failure_body(polled.json()) == refusal["error"]


def test_expired_key_answers_410_on_the_first_poll(api: Api, small_body: dict[str, Any]) -> None:
    response = api.submit("test_expired", small_body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "PENDING"
    polled = api.poll("test_expired", response.json()["id"])
    assert polled.status_code == 410, polled.text
    assert "expired" in _failure_body(polled.json())


@pytest.mark.parametrize("key", [None, ""], ids=["no-header", "empty"])
def test_missing_key_is_401(api: Api, small_body: dict[str, Any], key: str | None) -> None:
    headers = {} if key is None else {"API-Key": key}
    response = api.submit(None, small_body, headers=headers)
    assert response.status_code == 401, response.text
    assert "API-Key" in _failure_body(response.json())

    owner = f"owner-{uuid.uuid4().hex}"
    job_id = api.submit(owner, small_body).json()["id"]
    polled = api.poll(None, job_id, headers=headers)
    assert polled.status_code == 401, polled.text
    _failure_body(polled.json())


def test_unknown_id_is_404(api: Api) -> None:
    response = api.poll(f"client-{uuid.uuid4().hex}", "no-such-job-" + uuid.uuid4().hex)
    assert response.status_code == 404, response.text
    _failure_body(response.json())


def test_another_key_cannot_read_a_job(api: Api, small_body: dict[str, Any]) -> None:
    owner, other = f"owner-{uuid.uuid4().hex}", f"other-{uuid.uuid4().hex}"
    submitted = api.submit(owner, small_body)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]

    stranger = api.poll(other, job_id)
    assert stranger.status_code == 404, stranger.text
    _failure_body(stranger.json())
    # Indistinguishable from an id that does not exist, so ids cannot be probed.
    missing = api.poll(other, "no-such-job-" + uuid.uuid4().hex)
    assert stranger.json()["code"] == missing.json()["code"]

    # The stranger's poll did not advance the owner's job: it sees one PENDING, then SUCCESS.
    assert [p["status"] for p in poll_until_done(api, owner, job_id)] == ["PENDING", "SUCCESS"]


def test_each_submit_is_a_new_job(api: Api, small_body: dict[str, Any]) -> None:
    ids = {api.submit("test_pending-then-success", small_body).json()["id"] for _ in range(5)}
    assert len(ids) == 5
