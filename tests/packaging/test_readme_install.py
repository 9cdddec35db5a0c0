"""The README's install (`pip install .`, no extras) in a fresh venv and nothing else: pytest
still runs there (the plugin loads), the fixtures and server_flows work, and the documented
commands run, `ipmock verify` with schemathesis included, the venv not activated.

No network: the dependencies come from the wheels scripts/test.sh downloads into
.venv/wheelhouse (``pip download .``: ipmock's own dependencies, no extras).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.slow]  # a fresh venv, installed from wheels: about 10 s

WHEELHOUSE = REPO / ".venv" / "wheelhouse"

USER_TESTS = """
from hypothesis import settings
from hypothesis import given

from contract_tests import check_client, server_flows
from contract_tests.example_client import Policy, Text2ImageClient


def test_unrelated():
    assert 1 + 1 == 2


def test_fixture(ipmock):
    with ipmock.client(api_key="test_success") as http:
        answer = http.post("/sdxl/text2image/v1", json={"prompt": "a cat"}).json()
    assert answer["status"] == "SUCCESS"


def generate(ctx):
    policy = Policy(poll_interval=ctx.poll_floor, deadline=ctx.deadline)
    return Text2ImageClient(ctx.base_url, ctx.api_key, http=ctx.http, sleep=ctx.sleep,
                            monotonic=ctx.monotonic, policy=policy).generate(ctx.request)


@settings(max_examples=5, deadline=None)
@given(flow=server_flows())
def test_flows(flow):
    check_client(flow, generate, poll_floor=1.0, deadline=120.0)
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with `pip install .` and nothing else."""
    if not any(WHEELHOUSE.glob("*.whl")):
        pytest.fail(f"no wheels in {WHEELHOUSE}: run scripts/test.sh, which downloads them")
    root = tmp_path_factory.mktemp("readme-install")
    # Only the options given here: no pip configuration, no other index or wheel folder.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull

    def pip(*args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
            check=True,
            env=env,
            timeout=300,
            capture_output=True,
        )

    pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist"), str(REPO))
    (wheel,) = (root / "dist").glob("ipmock-*.whl")
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True, timeout=120
    )
    pip(
        "--python",
        str(root / "venv/bin/python"),
        "install",
        "-q",
        "--no-index",
        "--no-cache-dir",
        "--find-links",
        str(WHEELHOUSE),
        str(wheel),
    )
    return root / "venv"


def run(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A command as a user runs it: the venv not activated, so not on PATH."""
    return subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


@pytest.mark.socket
def test_pytest_runs_with_the_plugin_fixtures_and_flows(venv: Path, tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    done = run(str(venv / "bin/pytest"), "-q", "-p", "no:cacheprovider", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "3 passed" in done.stdout


@pytest.mark.socket
def test_documented_commands_run(venv: Path, tmp_path: Path) -> None:
    helped = run(str(venv / "bin/ipmock"), "verify", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "usage: ipmock verify" in helped.stdout
    client = run(
        str(venv / "bin/python"), str(REPO / "examples/python_client.py"), "--help", cwd=tmp_path
    )
    assert client.returncode == 0, client.stderr
    assert "--base-url" in client.stdout


@pytest.mark.socket
def test_verify_with_schemathesis_from_the_venv(venv: Path, tmp_path: Path) -> None:
    server = subprocess.Popen(
        [str(venv / "bin/ipmock"), "serve", "--port", "0", "--api-key", "sk-verify"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        url = ""
        for line in server.stdout:
            if " at http://" in line:
                url = line.split(" at ", 1)[1].split()[0]
                break
        assert url, "ipmock serve did not start"
        done = run(
            str(venv / "bin/ipmock"),
            "verify",
            "--base-url",
            url,
            "--api-key",
            "sk-verify",
            "--max-examples",
            "1",
            "--seed",
            "1",
            "--poll-interval",
            "0.05",
            cwd=tmp_path,
            timeout=300,
        )
    finally:
        server.terminate()
        server.wait(10)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "schemathesis: passed" in done.stdout
