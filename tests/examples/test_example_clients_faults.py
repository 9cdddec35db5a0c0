"""The example clients ride out the docs' faults (a lost submit is not sent again, broken
polls and downloads are retried and then named), and their help and option errors say enough."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import httpx
import pytest

from contract_tests.server import running_server
from tests.conftest import REPO
from tests.support.served import SUBMIT

EXAMPLES = REPO / "examples"


def _docs_faults_toml() -> str:
    """The faults.toml of docs/scenarios.md, as a reader copies it."""
    page = (REPO / "docs/scenarios.md").read_text("utf-8")
    found = re.search(r"```toml\n# faults\.toml\n(.*?)```", page, re.S)
    assert found, "docs/scenarios.md shows faults.toml"
    return found.group(1)


@pytest.fixture(scope="module")
def faults_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = tmp_path_factory.mktemp("faults") / "faults.toml"
    config.write_text(_docs_faults_toml(), encoding="utf-8")
    with running_server("--config", str(config), "--seed", "7") as url:
        yield url


@pytest.fixture(params=["python", "node"])
def example(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "python":
        return [sys.executable, str(EXAMPLES / "python_client.py")]
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (18 or later) is needed to run examples/js_client.mjs")
    return [node, str(EXAMPLES / "js_client.mjs")]


def _run(example: list[str], url: str, key: str, out: Path, *more: str) -> CompletedProcess[str]:
    argv = [*example, "--base-url", url, "--api-key", key, "--prompt", "a cat", "--out", str(out)]
    argv += ["--width", "64", "--height", "64", "--poll-interval", "0.05", "--timeout", "60"]
    return subprocess.run([*argv, *more], capture_output=True, text=True, timeout=120)


def _submits(url: str, scenario: str) -> list[dict[str, Any]]:
    journal = httpx.get(f"{url}/__mock/journal?path={SUBMIT}", timeout=10).json()["entries"]
    return [e for e in journal if e["method"] == "POST" and e["scenario"] == scenario]


@pytest.mark.socket
@pytest.mark.slow
def test_the_flaky_scenario_ends_in_success(
    example: list[str], faults_url: str, tmp_path: Path
) -> None:
    done = _run(example, faults_url, "test_flaky", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    [saved] = done.stdout.split()
    assert Path(saved).read_bytes().startswith(b"\x89PNG")


@pytest.mark.socket
def test_a_lost_submit_is_not_sent_again(
    example: list[str], faults_url: str, tmp_path: Path
) -> None:
    before = len(_submits(faults_url, "lost-submit"))
    done = _run(example, faults_url, "test_lost-submit", tmp_path / "out")
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: submit: the answer was lost (")
    assert "the job may exist, so it was not submitted again" in line
    assert len(_submits(faults_url, "lost-submit")) == before + 1  # one submit, not two


@pytest.mark.socket
def test_broken_polls_and_downloads_are_retried_and_then_named(
    example: list[str], faults_url: str, tmp_path: Path
) -> None:
    resets = [{"at_request": n, "kind": "reset"} for n in (1, 2, 3)]
    download_faults = [
        {"on": "download", "at_request": 1, "kind": "empty"},
        {"on": "download", "at_request": 2, "kind": "rate-limited", "retry_after": 0},
    ]
    queue = {"scenarios": [{"faults": resets + download_faults, "pending_polls": 1}]}
    queued = httpx.post(f"{faults_url}/__mock/queue", json=queue, timeout=10)
    assert queued.status_code == 200, queued.text
    done = _run(example, faults_url, "client-key", tmp_path / "out", "--max-retries", "8")
    assert done.returncode == 0, done.stderr

    queue = {"scenarios": [{"faults": resets, "pending_polls": 1}]}
    queued = httpx.post(f"{faults_url}/__mock/queue", json=queue, timeout=10)
    assert queued.status_code == 200, queued.text
    done = _run(example, faults_url, "client-key", tmp_path / "out", "--max-retries", "2")
    assert done.returncode == 1, done.stdout
    [line] = done.stderr.strip().splitlines()
    assert re.match(r"error: status request 1 of job \S+: failed 3 times, last: ", line), line


def test_help_shows_every_default(example: list[str]) -> None:
    done = subprocess.run([*example, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    for default in ("http://127.0.0.1:8000", "images", "low quality, blurry, deformed", "1024"):
        assert default in text
    assert re.search(r"--poll-interval SECONDS .*\(default:? 2", text)
    assert re.search(r"--timeout SECONDS .*\(default:? 300", text)


def test_a_misspelt_option_is_named_before_a_missing_one(example: list[str]) -> None:
    done = subprocess.run(
        [*example, "--api-key", "k", "--promt", "x"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout
    assert "--promt (did you mean --prompt?)" in done.stderr
    assert "required" not in done.stderr
