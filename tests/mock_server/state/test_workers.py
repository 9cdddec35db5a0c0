"""`ipmock worker` processes taking jobs from a real Redis: at least once, settled once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contract_tests.server import running_server
from mock_server.generators import GENERATE
from mock_server.images import RenderedImage
from mock_server.jobs import Job, key_fingerprint, new_job_id
from mock_server.state.redis import RedisState
from mock_server.state.work_queue import WorkQueue, run_worker

SUBMIT = "/sdxl/text2image/v1"
BODY = {"prompt": "a lighthouse at dusk", "width": 64, "height": 72, "samples": 2}


class Workers:
    """`ipmock worker` processes, each logging to its own file."""

    def __init__(self, store: str, folder: Path) -> None:
        self.store, self.folder = store, folder
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.running[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mock_server.cli",
                "worker",
                "--store",
                self.store,
                "--name",
                name,
                *args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_for(name, "taking jobs from")

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def wait_for(self, name: str, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(name):
            if time.monotonic() > deadline or self.running[name].poll() is not None:
                raise AssertionError(f"worker {name} never logged {text!r}:\n{self.log(name)}")
            time.sleep(0.05)

    def kill(self, name: str) -> None:
        self.running[name].send_signal(signal.SIGKILL)
        self.running[name].wait(10)

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


@pytest.fixture
def served(redis_url: str, tmp_path: Path) -> Iterator[tuple[httpx.Client, Workers]]:
    workers = Workers(redis_url, tmp_path)
    try:
        with (
            running_server("--store", redis_url, "--backend", "workers") as url,
            httpx.Client(base_url=url, headers={"API-Key": "sk-gpu"}, timeout=10) as client,
        ):
            yield client, workers
    finally:
        workers.stop_all()


def poll_until_final(
    client: httpx.Client, job_id: str, workers: Workers | None = None, timeout: float = 30.0
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer: dict[str, object] = client.get(f"{SUBMIT}/status/{job_id}").json()
        if answer["status"] != "PENDING":
            return answer
        time.sleep(0.1)
    names = workers.running if workers else {}
    logs = "".join(f"\n--- worker {name}:\n{workers.log(name)}" for name in names if workers)
    raise AssertionError(f"job {job_id} still PENDING after {timeout} s{logs}")


def test_jobs_are_shared_out_and_each_done_once(
    served: tuple[httpx.Client, Workers],
) -> None:
    client, workers = served
    workers.start("a")
    workers.start("b")
    ids = [client.post(SUBMIT, json=BODY).json()["id"] for _ in range(8)]
    for job_id in ids:
        done = poll_until_final(client, job_id, workers)
        assert done["status"] == "SUCCESS"
        urls = done["download_urls"]
        assert isinstance(urls, list) and len(urls) == 2
        image = client.get(urls[1])
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    logs = workers.log("a") + workers.log("b")
    assert all(logs.count(f"job {job_id}: SUCCESS") == 1 for job_id in ids), logs


def test_a_job_stays_pending_while_its_worker_works(
    served: tuple[httpx.Client, Workers],
) -> None:
    client, workers = served
    job_id = client.post(SUBMIT, json=BODY).json()["id"]
    assert client.get(f"{SUBMIT}/status/{job_id}").json()["status"] == "PENDING"  # no worker
    assert client.get("/__mock/generation").json() == {"waiting": 1}
    workers.start("slow", "--placeholder-seconds", "2")
    workers.wait_for("slow", f"taking job {job_id}")
    assert client.get(f"{SUBMIT}/status/{job_id}").json()["status"] == "PENDING"
    assert poll_until_final(client, job_id, workers)["status"] == "SUCCESS"
    assert client.get("/__mock/generation").json() == {"waiting": 0}


def test_a_killed_workers_job_is_taken_over(served: tuple[httpx.Client, Workers]) -> None:
    client, workers = served
    workers.start("doomed", "--placeholder-seconds", "600", "--lease", "1")
    job_id = client.post(SUBMIT, json=BODY).json()["id"]
    workers.wait_for("doomed", f"taking job {job_id}")
    workers.kill("doomed")
    assert client.get(f"{SUBMIT}/status/{job_id}").json()["status"] == "PENDING"

    workers.start("rescuer", "--lease", "1")
    assert poll_until_final(client, job_id, workers)["status"] == "SUCCESS"
    assert f"taking over job {job_id}" in workers.log("rescuer")


@pytest.mark.slow
def test_a_working_worker_keeps_its_job(served: tuple[httpx.Client, Workers]) -> None:
    client, workers = served
    workers.start("busy", "--placeholder-seconds", "3", "--lease", "1")
    job_id = client.post(SUBMIT, json=BODY).json()["id"]
    workers.wait_for("busy", f"taking job {job_id}")
    workers.start("idle", "--lease", "1")  # would take a job whose claim went stale
    assert poll_until_final(client, job_id, workers)["status"] == "SUCCESS"
    assert job_id not in workers.log("idle")
    assert workers.log("busy").count(f"job {job_id}: SUCCESS") == 1


def make_job(prompt: str) -> Job:
    now = time.time()
    return Job(
        id=new_job_id(),
        owner=key_fingerprint("k"),
        scenario=GENERATE,
        request={"prompt": prompt, "width": 64, "height": 64, "samples": 1},
        seed=1,
        created_at=now,
        expires_at=now + 60,
        forget_at=now + 120,
    )


@pytest.mark.anyio
async def test_a_failed_generation_is_a_failure_and_the_next_job_runs(redis_url: str) -> None:
    shared = RedisState.open(redis_url)
    queue = WorkQueue(shared.store)
    bad, good = make_job("explode"), make_job("fine")
    for job in (bad, good):
        await shared.store.add(job)
        await queue.enqueue(job.id)

    async def render(job: Job) -> list[RenderedImage]:
        if job.request["prompt"] == "explode":
            raise RuntimeError("CUDA out of memory")
        return [RenderedImage(b"\x89PNG fake", '"e"')]

    stop = asyncio.Event()
    working = asyncio.create_task(
        run_worker(redis_url, render, describe_failure=lambda e: f"boom: {e}", stop=stop)
    )
    try:
        for _ in range(200):
            found = [await shared.store.get(j.id) for j in (bad, good)]
            if all(j is not None and j.state != "PENDING" for j in found):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(working, 10)
    failed, succeeded = found
    assert failed is not None and failed.state == "FAILURE"
    assert failed.error == "boom: CUDA out of memory"
    assert succeeded is not None and succeeded.state == "SUCCESS"
    assert await queue.image(good.id, 0) == b"\x89PNG fake"
    assert await queue.waiting() == 0  # both acknowledged
    await shared.client.aclose()


@pytest.mark.anyio
async def test_a_second_run_of_a_settled_job_changes_nothing(redis_url: str) -> None:
    shared = RedisState.open(redis_url)
    queue = WorkQueue(shared.store)
    job = make_job("twice")
    await shared.store.add(job)
    job.state = "SUCCESS"
    assert await queue.settle(job, [b"first"])
    job.state, job.error = "FAILURE", "second run"
    assert not await queue.settle(job, [b"second"])
    stored = await shared.store.get(job.id)
    assert stored is not None and (stored.state, stored.error) == ("SUCCESS", None)
    assert await queue.image(job.id, 0) == b"first"
    await shared.client.aclose()


def test_worker_options_are_checked(redis_url: str) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mock_server.cli", "worker", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert "must be the redis:// URL" in run("--store", "memory").stderr
    unreachable = run("--store", "redis://127.0.0.1:1/0")
    assert unreachable.returncode == 2 and "cannot use this Redis" in unreachable.stderr
    mixed = run("--store", redis_url, "--random-weights", "tiny", "--model-dir", "/tmp")
    assert mixed.returncode == 2 and "either --random-weights" in mixed.stderr
