"""examples/python_client.py and examples/js_client.mjs, run end to end against the server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.served import SUBMIT, Api, png_size

EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node (18 or later) is needed to run examples/js_client.mjs")
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30)
    major = int(re.match(r"v(\d+)", version.stdout).group(1))  # type: ignore[union-attr]
    assert major >= 18, f"examples/js_client.mjs needs node 18+, found {version.stdout}"
    return found


# The Python client runs with what `pip install ipmock` brings (httpx), requests blocked.
WITHOUT_REQUESTS = (
    "import runpy, sys; sys.modules['requests'] = None; sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


@pytest.fixture(params=["python", "node"])
def client(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "python":
        return [sys.executable, "-c", WITHOUT_REQUESTS, str(EXAMPLES / "python_client.py")]
    node: str = request.getfixturevalue("node")
    return [node, str(EXAMPLES / "js_client.mjs")]


def run_client(
    client: list[str], base_url: str, api_key: str, out: Path, **options: Any
) -> subprocess.CompletedProcess[str]:
    """Run an example client; options become --flags (poll fast, give up within 20 s)."""
    flags = {"prompt": "a red fox in the snow", "poll-interval": 0.05, "timeout": 20, **options}
    argv = [*client, "--base-url", base_url, "--api-key", api_key, "--out", str(out)]
    for name, value in flags.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=EXAMPLES.parent)


def _submits_with(api: Api, marker: str) -> list[dict[str, Any]]:
    journal = api.admin("GET", f"/__mock/journal?path={SUBMIT}")
    assert journal.status_code == 200, journal.text
    return [
        e
        for e in journal.json()["entries"]
        if e["method"] == "POST" and e["path"] == SUBMIT and marker in e["body"]
    ]


def test_client_saves_every_sample(client: list[str], api: Api, tmp_path: Path) -> None:
    out = tmp_path / "out"
    marker = uuid.uuid4().hex
    result = run_client(
        client,
        api.base_url,
        "test_pending-then-success",
        out,
        prompt=f"a red fox in the snow {marker}",
        samples=3,
        width=320,
        height=200,
        ip_adapter_image="https://example.test/face.jpg",
    )
    assert result.returncode == 0, result.stderr
    printed = [Path(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(printed) == 3, result.stdout
    saved = sorted(out.iterdir())
    assert sorted(p.resolve() for p in printed) == [p.resolve() for p in saved]
    contents = [p.read_bytes() for p in saved]
    assert all(png_size(c) == (320, 200) for c in contents)
    assert len(set(contents)) == 3

    # It submitted like the docs: API-Key header, JSON body, no Content-Type.
    [entry] = _submits_with(api, marker)
    assert entry["status"] == 202
    headers = {k.lower() for k in entry["headers"]}
    assert "api-key" in headers
    assert "content-type" not in headers
    body = json.loads(entry["body"])
    assert body["samples"] == 3
    assert body["ip_adapter_image"] == "https://example.test/face.jpg"


def test_client_reports_failure_with_the_server_message(
    client: list[str], api: Api, tmp_path: Path
) -> None:
    expected = api.scenario("pending-then-failure")["error"]
    out = tmp_path / "out"
    result = run_client(client, api.base_url, "test_pending-then-failure", out)
    assert result.returncode != 0, result.stdout
    assert expected in result.stderr + result.stdout
    assert not out.exists() or not any(out.iterdir())


def test_client_waits_as_long_as_retry_after_says(
    client: list[str], mutable_api: Api, tmp_path: Path
) -> None:
    retry_after = mutable_api.scenario("rate-limited")["refusal"]["retry_after"]
    queued = mutable_api.admin("POST", "/__mock/queue", {"scenarios": ["rate-limited", "success"]})
    assert queued.status_code == 200, queued.text
    out = tmp_path / "out"
    result = run_client(client, mutable_api.base_url, "client-key", out)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == 1

    submits = _submits_with(mutable_api, "")
    assert [e["status"] for e in submits] == [429, 200]
    waited = submits[1]["at"] - submits[0]["at"]
    assert waited >= retry_after - 0.1, f"retried after {waited:.2f} s, not {retry_after} s"


def test_client_gives_up_at_its_deadline(client: list[str], api: Api, tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_client(client, api.base_url, "test_stuck", tmp_path / "out", timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.returncode != 0, result.stdout
    assert "PENDING" in result.stderr
    assert elapsed < 15


def test_help_names_the_local_mock_as_the_default(client: list[str]) -> None:
    done = subprocess.run([*client, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and "--api-key" in done.stdout
    # A forgotten --base-url must not reach the real API and spend credits.
    assert "default http://127.0.0.1:8000" in " ".join(done.stdout.split())


def test_a_wrong_option_is_named_with_the_usage(client: list[str]) -> None:
    done = subprocess.run(
        [*client, "--api-key", "k", "--prompt", "x", "--colour", "red"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout
    assert "usage:" in done.stderr and "--colour" in done.stderr
