"""The pytest plugin works from a plain install: fixtures in a user's own test file."""

from __future__ import annotations

import pytest

USER_TESTS = """
import json
import pytest
import requests


def test_in_process(ipmock):
    ipmock.queue("pending-3-then-success")
    with ipmock.client(api_key="sk-user") as http:
        job = http.post("/sdxl/text2image/v1", json={"prompt": "a cat"}).json()
        states = []
        while True:
            ipmock.advance(2)
            body = http.get(f"/sdxl/text2image/v1/status/{job['id']}").json()
            states.append(body["status"])
            if body["status"] != "PENDING":
                break
    assert states == ["PENDING"] * 3 + ["SUCCESS"]
    polls = ipmock.polls(job["id"])
    assert len(polls) == 4
    assert [b["at"] - a["at"] for a, b in zip(polls, polls[1:])] == [2, 2, 2]


@pytest.mark.ipmock(strict=True)
def test_marker_settings(ipmock):
    with ipmock.client() as http:
        response = http.post("/sdxl/text2image/v1", json={"prompt": "a cat", "colour": "red"})
    assert response.status_code == 400


async def test_async_client(ipmock):
    async with ipmock.async_client(api_key="test_success") as http:
        response = await http.post("/sdxl/text2image/v1", json={"prompt": "a cat"})
    assert response.json()["status"] == "SUCCESS"


def test_real_server_with_requests(ipmock_server):
    ipmock_server.queue("pending-then-failure")
    url = ipmock_server.url + "/sdxl/text2image/v1"
    job = requests.post(url, headers={"API-Key": "k"}, data=json.dumps({"prompt": "x"}),
                        timeout=10).json()
    for _ in range(2):
        body = requests.get(f"{url}/status/{job['id']}", headers={"API-Key": "k"},
                            timeout=10).json()
    assert body["status"] == "FAILURE"
    assert len(ipmock_server.polls(job["id"])) == 2


def test_real_server_is_reset_between_tests(ipmock_server):
    assert ipmock_server.journal() == []
"""


def test_fixtures_in_a_users_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    pytester.makeini("[pytest]\nanyio_mode = auto\n")
    result = pytester.runpytest_subprocess("-p", "anyio", "-q", "-W", "ignore")
    result.assert_outcomes(passed=5)
