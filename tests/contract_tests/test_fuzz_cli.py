"""``ipmock fuzz`` on the command line: its usage errors (exit 2, one line), its help, a
search that finds and shrinks a planted bug, the replay of its saved flow (exit 1, a
report with a replay line), and a careful client's all-clear (exit 0)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from contract_tests.flows import Flow
from contract_tests.fuzz import FuzzSettings, fuzz_command
from contract_tests.fuzz.report import save_flow
from mock_server.cli import main
from tests.conftest import REPO

PLANTED = [sys.executable, "-m", "tests.support.planted_clients"]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path (where a counterexample's flow is saved), the planted clients
    still importable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["fuzz"], "no COMMAND: give the client to run after --"),
        (["fuzz", "--"], "no COMMAND"),
        (["fuzz", "--", "no-such-client-xyz"], "COMMAND 'no-such-client-xyz' not found on PATH"),
        (["fuzz", "--", "./missing/client.sh"], "COMMAND './missing/client.sh' not found"),
    ],
)
def test_a_missing_command_is_a_usage_error(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ipmock fuzz: ") and said in err and err.count("\n") == 1


def test_a_command_that_is_not_executable_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "client.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    assert main(["fuzz", "--", str(script)]) == 2
    assert "is not executable (chmod +x it, or name its interpreter" in capsys.readouterr().err


@pytest.mark.socket
def test_a_command_the_system_cannot_start_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "client"
    script.write_text("echo no #! line\n")
    script.chmod(0o755)
    assert main(["fuzz", "--examples", "1", "--jobs", "1", "--", str(script)]) == 2
    err = capsys.readouterr().err
    assert f"ipmock fuzz: COMMAND {str(script)!r} could not be run: [Errno 8] Exec format" in err


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (None, "No such file or directory"),
        ("{not json", "a flow must be JSON"),
        ('{"samples": 9}', "flow samples: 9 is not an integer from 1 to 4"),
        ("\udcff", "not UTF-8 text (a flow is JSON)"),
    ],
)
def test_a_bad_replay_file_is_a_usage_error(
    tmp_path: Path, text: str | None, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "flow.json"
    if text is not None:
        flow.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert main(["fuzz", "--replay", str(flow), "--", sys.executable, "-c", "pass"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ipmock fuzz: --replay {flow}: ") and said in err


@pytest.mark.parametrize("argv", [["--examples", "0"], ["--jobs", "0"], ["--deadline", "0"]])
def test_a_bad_number_is_refused_by_name(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["fuzz", *argv, "--", "true"])
    assert stop.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_help_gives_the_protocol_and_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["fuzz", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for said in (
        "usage: ipmock fuzz [options] -- COMMAND [ARGS...]",
        "IPMOCK_BASE_URL",
        "IPMOCK_REQUEST",
        "{i}.png",
        "IPMOCK_DEADLINE",
        "Exit status: 0 every flow held, 1 a counterexample, 2 a usage error",
        "--replay FLOW.json",
        "(default 25)",
        "docs/any-language.md",
    ):
        assert said in out, said


@pytest.mark.socket
@pytest.mark.slow
def test_a_planted_bug_is_found_shrunk_and_replayed(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = FuzzSettings(examples=4, seed=7, shrink_seconds=20.0)
    outcome = fuzz_command([*PLANTED, "no-pause"], options)
    assert outcome.failure is not None and outcome.flows_run > 1
    assert "respects_poll_floor" in outcome.failure.broken
    flow = outcome.failure.play.flow
    assert flow.submit_refusals == () and flow.faults == ()  # shrunk: nothing but the polls
    saved = save_flow(outcome.failure, in_tmp)
    assert main(["fuzz", "--replay", str(saved), "--", *PLANTED, "no-pause"]) == 1
    out = capsys.readouterr().out
    assert "broken:\n  respects_poll_floor: polled" in out
    assert "flow: submit accepted: PENDING" in out
    assert "exchanges (seconds from the first):" in out
    assert "the client: exit status " in out
    assert f"the flow is saved in {saved}; replay it with:" in out
    line = f"ipmock fuzz --replay {saved} -- {sys.executable} -m tests.support.planted_clients"
    assert line + " no-pause" in out
    assert main(["fuzz", "--replay", str(saved), "--", *PLANTED, "careful"]) == 0
    assert "every property held on 1 flow(s)" in capsys.readouterr().out


@pytest.mark.socket
def test_a_search_that_holds_exits_0(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fuzz", "--examples", "2", "--seed", "1", "--", *PLANTED, "careful"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "ipmock fuzz: 2 flow(s) on 2 mock(s), seed 1" in captured.err
    # The progress: a plain line per flow played (stderr is no terminal here).
    assert "ipmock fuzz: 1/2 (50%)" in captured.err and ": held" in captured.err
    assert "ipmock fuzz: 2/2 (100%)" in captured.err
    assert "ipmock fuzz: every property held on 2 flow(s) (seed 1)" in captured.out
    assert not list(in_tmp.glob("ipmock-fuzz-flow-*.json"))


@pytest.mark.socket
def test_a_failing_clients_stderr_ends_the_report(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = in_tmp / "flow.json"
    flow.write_text(Flow(outcome="failure", pending_polls=0).to_json())
    code = "import sys; print('line one\\nthe client gave up', file=sys.stderr); sys.exit(5)"
    assert main(["fuzz", "--replay", str(flow), "--", sys.executable, "-c", code]) == 1
    out = capsys.readouterr().out
    assert "the client: exit status 5" in out
    assert "its stderr ends:\n  | line one\n  | the client gave up" in out
    assert "returns_every_sample: raised exit status 5; stderr: line one" in out
