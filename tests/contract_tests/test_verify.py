"""`ipmock verify` passes the mock and fails a server that breaks the contract."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contract_tests.server import running_server
from contract_tests.verify import GENERATION, verify
from mock_server.config import load_book
from mock_server.state import MemoryQueue


@pytest.mark.slow
@pytest.mark.socket
def test_the_mock_keeps_the_contract(tmp_path: Path) -> None:
    junit, record = tmp_path / "verify.xml", tmp_path / "recorded"
    with running_server("--api-key", "sk-verify") as url:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mock_server.cli",
                "verify",
                "--base-url",
                url,
                "--api-key",
                "sk-verify",
                "--junit-xml",
                str(junit),
                "--record",
                str(record),
                "--max-examples",
                "5",
                "--seed",
                "1",
                "--poll-interval",
                "0.05",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "flow checks: 6 passed, 0 failed; schemathesis: passed" in done.stdout
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert suites[0].get("name") == "ipmock verify: flow"
    assert (suites[0].get("tests"), suites[0].get("failures")) == ("6", "0")
    assert len(suites) > 1  # schemathesis's own suites follow
    assert not ET.parse(junit).getroot().findall(".//failure")
    exchanges = (record / "exchanges.jsonl").read_text()
    assert "sk-verify" not in exchanges and "<yours>" in exchanges
    book = load_book(record / "ipmock.toml")
    assert book.get("recorded").pending_polls == 1
    body = {"prompt": "ipmock verify: a lighthouse on a cliff at dusk, oil painting"}
    assert asyncio.run(book.choose(None, MemoryQueue(), body)).name == "recorded"


async def _broken_submit(request: Request) -> Response:
    # Accepts anything with any key (or none), and answers in its own words.
    return JSONResponse({"status": "DONE", "id": 5, "images": ["x.png"]})


async def _broken_status(request: Request) -> Response:
    return JSONResponse({"status": "DONE"})


@pytest.fixture
def broken_server() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/sdxl/text2image/v1", _broken_submit, methods=["POST"]),
            Route("/sdxl/text2image/v1/status/{id}", _broken_status, methods=["GET"]),
        ]
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.socket
def test_a_broken_server_is_caught(
    broken_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = verify(broken_server, "k", junit_xml=tmp_path / "v.xml", fuzz=False, poll_interval=0)
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL submit without API-Key is refused (401)" in out
    assert "answered 200, not 401" in out
    assert "FAIL every answer matches the response schemas" in out
    assert "submit: status:" in out  # the departure names the field
    assert "flow checks: 0 passed, 6 failed" in out
    shown = [line for line in out.splitlines() if line.startswith("ipmock verify: flow checks: ")]
    assert [line.split(", ")[0].split(": ")[2] for line in shown] == [
        f"{i}/5 ({20 * i}%)" for i in range(1, 6)
    ]  # the progress, not a terminal: a line per check with its result
    assert shown[0].endswith(" s: FAIL submit without API-Key is refused (401)")
    table = out[out.index(f"ipmock verify: {broken_server}\n") :].splitlines()
    [row] = [line for line in table if line.startswith("  submit without API-Key is refused")]
    result, seconds, unit, *details = row.split("(401)")[1].split()
    assert (result, unit, " ".join(details)) == ("FAIL", "s", "answered 200, not 401")
    assert float(seconds) >= 0  # timed, not "-"
    assert "  schemathesis over the contract " in out and "not run: --no-fuzz" in out
    failures = ET.parse(tmp_path / "v.xml").getroot().findall(".//failure")
    assert len(failures) == 6


_FAKE_SCHEMATHESIS = """#!/bin/sh
# Stands in for schemathesis: the first run ends as 4.32's stateful phase does when its
# scheduler allows no next step; later runs pass. Each run's arguments are logged.
echo "$@" >> "{log}"
if [ ! -e "{log}.ran" ]; then
    touch "{log}.ran"
    echo "{stuck}, because no available rule had a True precondition."
    echo "Errors:"
    exit 1
fi
echo "all checks passed"
"""


@pytest.mark.parametrize(
    ("failures", "runs", "code"), [(False, 2, 0), (True, 1, 1)], ids=["rerun", "real-failure"]
)
def test_schemathesis_stuck_on_its_own_scheduler_is_run_once_more(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failures: bool,
    runs: int,
    code: int,
) -> None:
    from contract_tests import verify as verify_module

    log = tmp_path / "runs.log"
    script = _FAKE_SCHEMATHESIS.format(log=log, stuck=verify_module._SCHEMATHESIS_STUCK)
    if failures:  # a run that also found failures is not run again
        script = script.replace('echo "Errors:"', 'echo "Failures:"')
    fake = tmp_path / "bin" / "schemathesis"
    fake.parent.mkdir()
    fake.write_text(script)
    fake.chmod(0o755)
    monkeypatch.setattr(verify_module, "SCHEMATHESIS", [str(fake)])
    assert (
        verify_module.run_schemathesis(
            "http://127.0.0.1:9", "k", max_examples=1, seed=7, junit=tmp_path / "j.xml"
        )
        == code
    )
    seeds = [line.split("--seed ")[1].split()[0] for line in log.read_text().splitlines()]
    assert seeds == ["7", "8"][:runs]
    out = capsys.readouterr().out
    assert ("stopped on an error of its own" in out) == (runs == 2)
    assert ("all checks passed" in out) == (runs == 2)


@pytest.mark.socket
def test_nothing_listening_is_said_before_any_check(tmp_path: Path) -> None:
    with socket.socket() as placeholder:  # a port of ours that no one listens on
        placeholder.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{placeholder.getsockname()[1]}"
        done = subprocess.run(
            [sys.executable, "-m", "mock_server.cli", "verify", "--base-url", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"nothing answers at {url}" in done.stderr
    assert "schemathesis" not in done.stdout and "ok " not in done.stdout


@pytest.mark.parametrize("url", ["notaurl", "ftp://127.0.0.1/", "http://"])
def test_a_base_url_that_is_not_http_is_refused(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mock_server.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["verify", "--base-url", url])
    assert exited.value.code == 2
    assert "--base-url: must be an http:// or https:// URL with a host" in capsys.readouterr().err


def test_schemathesis_runs_from_this_python_not_path(tmp_path: Path) -> None:
    # The docs run .venv/bin/ipmock with the venv not activated: no schemathesis on PATH.
    from contract_tests import verify as verify_module

    done = subprocess.run(
        [*verify_module.SCHEMATHESIS, "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "version 4." in done.stdout


def test_schemathesis_missing_is_said_in_one_line_before_any_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "schemathesis", None)  # as if not installed
    assert verify("http://127.0.0.1:9", "k") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert "schemathesis is not installed" in line and "--no-fuzz" in line


@pytest.mark.parametrize("command", ["verify", "conformance"])
def test_a_missing_dependency_is_said_in_one_line(command: str) -> None:
    blocked = "hypothesis" if command == "verify" else "numpy"
    probe = (
        f"import sys; sys.modules[{blocked!r}] = None; from mock_server.cli import main; "
        f"sys.exit(main([{command!r}, '--base-url', 'http://127.0.0.1:9'] "
        f"if {command!r} == 'verify' else [{command!r}, '--size', 'tiny']))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert f"ipmock {command}: the Python package {blocked!r} is missing" in line
    assert "Traceback" not in done.stdout


@pytest.mark.socket
def test_a_refused_key_is_said_first_and_no_check_passes_unrun(tmp_path: Path) -> None:
    record = tmp_path / "recorded"
    with running_server("--api-key", "sk-verify") as url:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mock_server.cli",
                "verify",
                "--base-url",
                url,
                "--api-key",
                "sk-wrong",
                "--record",
                str(record),
                "--poll-interval",
                "0.05",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    said = next(i for i, line in enumerate(lines) if "refused the API key (HTTP 401)" in line)
    assert lines[said].startswith("ipmock verify: the server refused the API key (HTTP 401)")
    # Said before any result: only the flow checks' progress comes between it and the header.
    assert all(line.startswith("ipmock verify: flow checks: ") for line in lines[1:said])
    assert "  ok   submit without API-Key is refused (401)" in lines[said:]  # it needs no key
    unrun = [
        "an invalid request is refused (400)",
        GENERATION,
        "another key cannot read the job",
        "an unknown id is not found (404)",
    ]
    for name in unrun:
        assert f"  skip {name} (not run: the server refused the API key)" in lines
    assert "schemathesis over the contract (" not in done.stdout  # its run's header
    [row] = [line for line in lines if line.startswith("  schemathesis over the contract ")]
    assert row.split()[4:6] == ["skip", "-"]  # in the summary table: not run, not timed
    assert row.endswith("not run: the server refused the API key")
    assert "flow checks: 2 passed, 0 failed, 4 not run" in done.stdout
    urls = [json.loads(line)["url"] for line in (record / "exchanges.jsonl").open()]
    assert not [u for u in urls if "/status/" in u]  # never /status/None


@pytest.mark.slow
@pytest.mark.socket
def test_schemathesis_findings_point_at_files_that_exist(tmp_path: Path) -> None:
    junit = tmp_path / "reports" / "verify.xml"
    with running_server() as url:  # takes any key: schemathesis's auth checks fail
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mock_server.cli",
                "verify",
                "--base-url",
                url,
                "--api-key",
                "k",
                "--junit-xml",
                str(junit),
                "--max-examples",
                "2",
                "--seed",
                "1",
                "--poll-interval",
                "0.05",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Reproduce with:" in done.stdout  # its curl lines, which work
    assert "st replay" not in done.stdout  # its crash records would need a deleted file
    assert not (tmp_path / ".schemathesis").exists()
    assert f"JUnit: {junit}" in done.stdout  # schemathesis's report, merged into ours
    assert f"JUnit XML (the flow checks and schemathesis): {junit}" in done.stdout
    assert "schemathesis.xml" not in done.stdout
    failures = ET.parse(junit).getroot().findall(".//failure")
    assert failures and all("ST401" in (f.get("message", "") + (f.text or "")) for f in failures)


@pytest.mark.parametrize(("cuda", "size"), [(False, "tiny"), (True, "full")])
def test_conformance_defaults_to_tiny_without_cuda(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cuda: bool, size: str
) -> None:
    from mock_server import cli
    from mock_server.cli import toolkit

    seen: list[Any] = []
    monkeypatch.setattr(toolkit, "cuda_available", lambda: cuda)
    monkeypatch.setattr("reference_impl.conformance.conformance", lambda o: seen.append(o) or 0)
    assert cli.main(["conformance"]) == 0
    assert seen[0].size == size
    # Tiny random weights are asked for seconds' worth; full ones for the API's defaults.
    expected = (128, 128, 4) if size == "tiny" else (1024, 1024, 20)
    assert (seen[0].width, seen[0].height, seen[0].steps) == expected
    assert f"ipmock conformance: --size {size}" in capsys.readouterr().out
    assert cli.main(["conformance", "--size", "full"]) == 0  # a given size is kept
    assert seen[1].size == "full"
    assert cli.main(["conformance", "--size", "tiny", "--width", "64", "--steps", "2"]) == 0
    assert (seen[2].width, seen[2].height, seen[2].steps) == (64, 128, 2)  # given ones kept


def test_conformance_without_the_gpu_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mock_server import cli

    monkeypatch.setattr("mock_server.cli.models.GPU_EXTRA", ("torch", "ipmock_no_such_package"))
    monkeypatch.setattr("reference_impl.conformance.conformance", lambda o: pytest.fail("ran"))
    assert cli.main(["conformance"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        "ipmock conformance: the reference needs ipmock_no_such_package: install the gpu "
        'extra (pip install ".[gpu]" or pip install "ipmock[gpu]")'
    )


def test_verify_help_does_not_promise_the_key_is_accepted() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mock_server.cli", "verify", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = " ".join(done.stdout.split())
    assert "which only a mock started without --api-key accepts" in text
    assert "which the mock accepts" not in text


def test_the_one_schemathesis_runner_runs_quietly_with_a_time_limit(tmp_path: Path) -> None:
    """The hostile fuzz's way: output returned, not echoed; the key hidden in the command
    shown; a run past its time limit stopped with exit code -1 and what it printed."""
    from contract_tests import verify as verify_module

    fake = tmp_path / "schemathesis"
    fake.write_text('#!/bin/sh\necho "args: $*"\nsleep "${SLEEP:-0}"\nexit 3\n')
    fake.chmod(0o755)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verify_module, "SCHEMATHESIS", [str(fake)])
        code, output, shown = verify_module.schemathesis_run(
            "http://127.0.0.1:9",
            "secret-key",
            max_examples=4,
            seed=None,
            checks="not_a_server_error",
            options=["--mode", "negative"],
            echo=False,
        )
        assert code == 3 and "--checks not_a_server_error" in output
        assert output.index("--max-examples 4") < output.index("--mode negative")
        assert "--seed" not in output
        assert "API-Key: <api_key>" in shown and "secret-key" not in " ".join(shown)
        patch.setenv("SLEEP", "2")
        code, output, _ = verify_module.schemathesis_run(
            "http://127.0.0.1:9", "k", max_examples=1, seed=1, echo=False, timeout=0.5
        )
    assert code == -1 and output.startswith("schemathesis did not finish in")
    assert "--seed 1" in output  # what it printed before it was stopped
