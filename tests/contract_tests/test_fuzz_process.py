"""contract_tests.fuzz.process: the protocol's variables, the time limit that kills a
client's whole process group, capped output, and how a run ended."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings

from contract_tests.flows import Flow
from contract_tests.fuzz.process import (
    FILE_CAP,
    FILES_CAP,
    OUTPUT_CAP,
    Protocol,
    run_client,
)
from contract_tests.fuzz.timed import LONGEST_WAIT, timed_flows
from mock_server.cli.fuzz import PROTOCOL_VARIABLES


def _protocol(tmp_path: Path, deadline: float = 5.0) -> Protocol:
    return Protocol(
        "http://127.0.0.1:9",
        "sk-x",
        {"prompt": "a fox", "samples": 2},
        tmp_path / "out",
        0.5,
        deadline,
    )


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_the_client_gets_every_variable_and_its_files_come_back(tmp_path: Path) -> None:
    code = (
        "import json, os, pathlib\n"
        f"names = {list(PROTOCOL_VARIABLES)!r}\n"
        "out = pathlib.Path(os.environ['IPMOCK_OUT'])\n"
        "(out / '0.png').write_text(json.dumps({n: os.environ[n] for n in names}))\n"
    )
    ended = run_client(_python(code), _protocol(tmp_path))
    assert ended.succeeded and ended.ending() == "exit status 0"
    seen = json.loads(ended.files["0.png"])
    assert seen == {
        "IPMOCK_BASE_URL": "http://127.0.0.1:9",
        "IPMOCK_API_KEY": "sk-x",
        "IPMOCK_REQUEST": json.dumps({"prompt": "a fox", "samples": 2}),
        "IPMOCK_OUT": str(tmp_path / "out"),
        "IPMOCK_POLL_FLOOR": "0.5",
        "IPMOCK_DEADLINE": "5",
    }


def test_the_protocol_wins_over_the_callers_variables(tmp_path: Path) -> None:
    code = "import os, sys; sys.exit(0 if os.environ['IPMOCK_API_KEY'] == 'sk-x' else 4)"
    ended = run_client(
        _python(code),
        _protocol(tmp_path),
        base_env={**os.environ, "IPMOCK_API_KEY": "sk-from-the-shell"},
    )
    assert ended.returncode == 0


def test_a_hanging_client_and_its_children_are_killed_at_three_deadlines(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(marker)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(600)\n"
    )
    started = time.monotonic()
    ended = run_client(_python(code), _protocol(tmp_path, deadline=0.5))
    assert 1.4 <= time.monotonic() - started < 10
    assert ended.returncode is None and ended.killed_after is not None
    assert not ended.succeeded
    assert "its process group was killed" in ended.ending()
    child = int(marker.read_text())
    for _ in range(100):  # reaped by init shortly after the SIGKILL
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the client's child {child} outlived its process group's kill")


def test_a_flood_is_counted_and_only_its_tail_kept(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "for i in range(4096): sys.stdout.write('%1023d\\n' % i)\n"
        "sys.stderr.write('x' * 300000 + 'the end')\n"
    )
    ended = run_client(_python(code), _protocol(tmp_path))
    assert ended.printed == 4096 * 1024 + 300007
    assert len(ended.stdout_tail) == OUTPUT_CAP and ended.stdout_tail.endswith("4095\n")
    assert len(ended.stderr_tail) == OUTPUT_CAP and ended.stderr_tail.endswith("the end")


def test_a_death_by_signal_is_named(tmp_path: Path) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    ended = run_client(_python(code), _protocol(tmp_path))
    assert ended.returncode == -11 and ended.ending() == "killed by SIGSEGV"


def test_an_exit_status_is_named(tmp_path: Path) -> None:
    ended = run_client(_python("import sys; sys.exit(3)"), _protocol(tmp_path))
    assert not ended.succeeded and ended.ending() == "exit status 3" and ended.files == {}


@settings(max_examples=50, deadline=None)
@given(flow=timed_flows())
def test_timed_flows_wait_a_second_at_most(flow: Flow) -> None:
    assert all(f.seconds <= LONGEST_WAIT for f in flow.faults)
    assert all(f.retry_after <= LONGEST_WAIT for f in flow.faults)
    assert all(wait <= LONGEST_WAIT for _, wait in flow.submit_refusals)
    assert flow.stuck or (flow.pending_polls is not None and flow.pending_polls <= 3)


def test_the_out_folder_is_read_back_bounded(tmp_path: Path) -> None:
    code = (
        "import os, pathlib\n"
        "out = pathlib.Path(os.environ['IPMOCK_OUT'])\n"
        "(out / '0.png').write_bytes(b'x' * (FILE_CAP + 10))\n"
        "(out / 'sub').mkdir()\n"
        "for i in range(150): (out / f'junk-{i:03}').write_bytes(b'j')\n"
    ).replace("FILE_CAP", str(FILE_CAP))
    ended = run_client(_python(code), _protocol(tmp_path))
    assert len(ended.files) == FILES_CAP
    assert len(ended.files["0.png"]) == FILE_CAP + 1
    assert "junk-098" in ended.files and "junk-099" not in ended.files  # sorted, then cut
