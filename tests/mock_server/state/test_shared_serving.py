"""Real `ipmock serve` processes sharing one real Redis: workers, hosts, a Redis crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from contract_tests.server import running_server
from tests.support.redis_server import RedisServer

SUBMIT = "/sdxl/text2image/v1"
IPMOCK = [sys.executable, "-m", "mock_server.cli"]
BODY = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64}


def fresh_connection_client(url: str, key: str = "sk-shared") -> httpx.Client:
    """Every request on a new connection, so the kernel spreads them over the workers."""
    return httpx.Client(
        base_url=url,
        headers={"API-Key": key},
        timeout=10.0,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def test_a_poll_lands_on_any_worker_and_finds_its_job(redis_url: str) -> None:
    with (
        running_server("--store", redis_url, "--workers", "2", start_timeout=60) as url,
        fresh_connection_client(url) as client,
    ):
        ids = [client.post(SUBMIT, json=BODY).json()["id"] for _ in range(12)]
        for job_id in ids:
            assert client.get(f"{SUBMIT}/status/{job_id}").json()["status"] == "PENDING"
            done = client.get(f"{SUBMIT}/status/{job_id}").json()
            assert done["status"] == "SUCCESS", done
            image = client.get(done["download_urls"][0])
            assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
        workers = {e["worker"] for e in client.get("/__mock/journal").json()["entries"]}
        assert len(workers) == 2, "every request landed on one worker: nothing was shared"


def test_two_hosts_share_the_queue_the_clock_and_the_journal(redis_url: str) -> None:
    with (
        running_server("--store", redis_url) as one,
        running_server("--store", redis_url) as two,
        fresh_connection_client(one) as first,
        fresh_connection_client(two) as second,
    ):
        first.post("/__mock/queue", json={"scenarios": ["pending-10s-then-success"]})
        job = second.post(SUBMIT, json=BODY).json()
        assert job["status"] == "PENDING"
        assert first.get(f"{SUBMIT}/status/{job['id']}").json()["status"] == "PENDING"
        second.post("/__mock/clock", json={"advance": 10})
        assert first.get(f"{SUBMIT}/status/{job['id']}").json()["status"] == "SUCCESS"
        paths = [e["path"] for e in first.get("/__mock/journal").json()["entries"]]
        assert paths.count(f"{SUBMIT}/status/{job['id']}") == 2
        assert paths.count(SUBMIT) == 1
        second.post("/__mock/reset")
        assert first.get(f"{SUBMIT}/status/{job['id']}").status_code == 404


def test_the_in_flight_cap_holds_across_workers(redis_url: str) -> None:
    with (
        running_server(
            "--store", redis_url, "--workers", "2", "--max-in-flight", "5", start_timeout=60
        ) as url,
        fresh_connection_client(url) as client,
    ):
        codes = [client.post(SUBMIT, json=BODY).status_code for _ in range(8)]
        assert codes == [202] * 5 + [429] * 3
        refused = client.post(SUBMIT, json=BODY)
        assert "too many jobs in flight" in refused.json()["error"]
        assert refused.headers["Retry-After"] == "1"
        assert client.post(SUBMIT, json=BODY, headers={"API-Key": "sk-other"}).status_code == 202


@pytest.mark.socket
@pytest.mark.redis
def test_a_redis_crash_loses_no_acknowledged_job(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        with (
            running_server("--store", redis.url) as url,
            fresh_connection_client(url) as client,
        ):
            acknowledged = [client.post(SUBMIT, json=BODY).json()["id"] for _ in range(20)]
            redis.kill()  # SIGKILL: only what it wrote to its append-only file survives

            down = client.get(f"{SUBMIT}/status/{acknowledged[0]}")
            assert down.status_code == 503, down.text
            assert down.json()["code"] == "busy" and down.headers["Retry-After"] == "1"
            assert client.post(SUBMIT, json=BODY).status_code == 503

            redis.start()  # same port, same folder; the server is not restarted
            for job_id in acknowledged:
                polls = [client.get(f"{SUBMIT}/status/{job_id}") for _ in range(2)]
                assert [p.status_code for p in polls] == [200, 200], polls[-1].text
                assert [p.json()["status"] for p in polls] == ["PENDING", "SUCCESS"]
            assert client.post(SUBMIT, json=BODY).status_code == 202
    finally:
        redis.stop()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "memcached://127.0.0.1/"])
@pytest.mark.socket
def test_an_unusable_store_is_refused_at_start(url: str) -> None:
    done = subprocess.run(
        [*IPMOCK, "serve", "--port", "0", "--store", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--store" in done.stderr or "store must be" in done.stderr


def test_several_workers_need_a_shared_store() -> None:
    done = subprocess.run(
        [*IPMOCK, "serve", "--workers", "2"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "several workers need a shared store" in done.stderr
