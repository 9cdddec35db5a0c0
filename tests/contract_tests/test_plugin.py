"""The pytest plugin works from a plain install: fixtures in a user's own test file."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

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


SUBMIT = "/sdxl/text2image/v1"


@pytest.mark.ipmock(api_keys=["sk-only"], admin_token="tok", config="ipmock.toml")
def test_marker_takes_plain_values(ipmock):
    with ipmock.client(api_key="sk-only") as http:
        assert http.post(SUBMIT, json={"prompt": "a cat"}).status_code == 202
        assert http.post(SUBMIT, json={"prompt": "slow cat"}).json()["status"] == "PENDING"
    with ipmock.client(api_key="sk-other") as http:
        assert http.post(SUBMIT, json={"prompt": "a cat"}).status_code == 401
    assert [j["scenario"]["name"] for j in ipmock.jobs()] == ["pending-then-success", "slow"]
    with ipmock.client() as http:  # the admin API wants the token
        assert http.post("/__mock/reset").status_code == 403
    ipmock.reset()
    assert ipmock.jobs() == [] and ipmock.journal() == []


@pytest.mark.ipmock(api_keys="sk-one", job_ttl=30)
def test_served_mock_takes_the_marker(ipmock_server):
    url = ipmock_server.url + SUBMIT
    refused = requests.post(url, headers={"API-Key": "sk-two"}, json={"prompt": "x"}, timeout=10)
    assert refused.status_code == 401
    job = requests.post(url, headers={"API-Key": "sk-one"}, json={"prompt": "x"},
                        timeout=10).json()
    assert [e["status"] for e in ipmock_server.submits()] == [401, 202]
    [stored] = ipmock_server.jobs()
    assert stored["id"] == job["id"]
    assert abs(stored["expires_at"] - stored["created_at"] - 30) < 1e-6  # wall-clock floats
    before = ipmock_server.now()
    ipmock_server.advance(31)
    assert ipmock_server.now() - before >= 31
    gone = requests.get(f"{url}/status/{job['id']}", headers={"API-Key": "sk-one"}, timeout=10)
    assert gone.status_code == 410


def test_sleep_moves_the_clock(ipmock):
    started = ipmock.now()
    with ipmock.client(api_key="test_pending-10s-then-success") as http:
        job = http.post(SUBMIT, json={"prompt": "a cat"}).json()
        while http.get(f"{SUBMIT}/status/{job['id']}").json()["status"] == "PENDING":
            ipmock.sleep(2)
    assert 10 <= ipmock.now() - started <= 12
    assert len(ipmock.polls(job["id"])) in (6, 7)


async def test_async_sleep_moves_the_clock(ipmock):
    started = ipmock.now()
    await ipmock.async_sleep(5)
    assert ipmock.now() - started == 5


@pytest.mark.ipmock(job_ttl=-5)
def test_bad_ttl(ipmock): ...


@pytest.mark.ipmock(api_key="sk-x")
def test_misspelt_setting(ipmock_server): ...


@pytest.mark.ipmock(config="no-such.toml")
def test_missing_config(ipmock): ...
"""

CONFIG = """
[[scenarios]]
name = "slow"
pending_polls = 5

[[rules]]
scenario = "slow"
[rules.match]
prompt = { contains = "slow" }
"""


@pytest.mark.socket
def test_fixtures_in_a_users_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    (pytester.path / "ipmock.toml").write_text(CONFIG)
    pytester.makeini("[pytest]\nanyio_mode = auto\n")
    result = pytester.runpytest_subprocess("-p", "anyio", "-q", "-W", "ignore")
    result.assert_outcomes(passed=9, errors=3)
    # A wrong marker fails its test at setup, naming the field and what is allowed.
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_bad_ttl*",
            "@pytest.mark.ipmock: job_ttl must be a number of seconds, more than 0, got '-5'",
            "*ERROR at setup of test_misspelt_setting*",
            "@pytest.mark.ipmock: 'api_key' is not a setting (did you mean 'api_keys'?)*",
            "*ERROR at setup of test_missing_config*",
            "@pytest.mark.ipmock: config no-such.toml does not exist",
        ],
        consecutive=True,
    )


def _docs_block(containing: str) -> str:
    page = (REPO / "docs/pytest-plugin.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    [block] = [b for b in blocks if containing in b]
    return block


@pytest.mark.slow
@pytest.mark.socket
def test_the_docs_clock_and_hypothesis_example_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_docs=_docs_block("def test_waits_out_a_time_scenario"))
    result = pytester.runpytest_subprocess("-q", "-W", "ignore", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


FAILING_FLOW_TEST = """
from hypothesis import given, settings
from contract_tests import server_flows

@settings(max_examples=5, database=None)
@given(flow=server_flows())
def test_fails(flow):
    assert False
"""


@pytest.mark.slow
@pytest.mark.socket
def test_a_falsifying_flow_is_printed_beside_schemathesis(pytester: pytest.Pytester) -> None:
    # schemathesis's plugin (loaded in this run too) blanks hypothesis's printer: `flow=,`.
    pytester.makepyfile(test_flow=FAILING_FLOW_TEST)
    result = pytester.runpytest_subprocess("-q", "-W", "ignore", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*flow=Flow(*"])
    result.stdout.no_fnmatch_line("*flow=,*")
