"""contract_tests.fuzz.report: a counterexample's report shows what the client printed as
data (its terminal escapes written out), one line per broken property, and a replay line
that a shell reads back as the same command; the flow is saved by its content."""

from __future__ import annotations

import shlex
from pathlib import Path

from contract_tests.flows import Flow
from contract_tests.fuzz.judging import Judged
from contract_tests.fuzz.process import ClientExit
from contract_tests.fuzz.report import WHY_CHARS, counterexample, replay_line, save_flow
from contract_tests.fuzz.slot import Play
from mock_server.report.properties import Verdict


def _judged(stderr: str, why: str) -> Judged:
    ended = ClientExit(0.0, 1, None, "", stderr, len(stderr), {})
    exchanges = [
        {
            "at": 10.0,
            "method": "GET",
            "path": "/sdxl/text2image/v1/status/\x1b[2J",
            "status": 404,
            "dropped": False,
            "fault": None,
            "response_json": None,
        }
    ]
    play = Play(Flow(outcome="failure"), "sk-x", ended, exchanges, {})
    return Judged(play, {"surfaces_failure": Verdict("broken", why)}, 0.5, 3.0)


def test_what_the_client_printed_is_shown_as_data(tmp_path: Path) -> None:
    judged = _judged("error: \x1b[31mred\x1b[0m\n", "raised\nexit status 1")
    text = counterexample(judged, ["node", "c.mjs"], tmp_path / "f.json", flows_run=3, seed=9)
    assert "  | error: \\x1b[31mred\\x1b[0m" in text
    assert "status/\\x1b[2J -> 404" in text
    assert "\x1b" not in text
    assert "  surfaces_failure: raised exit status 1\n" in text
    assert "the client: exit status 1, printed 20 byte(s)" in text
    assert "after 3 flow(s) run, seed 9)" in text and "flow: submit accepted: PENDING" in text


def test_a_long_why_is_cut_to_one_line() -> None:
    text = counterexample(_judged("", "x" * 5000), ["c"], Path("f.json"), flows_run=1)
    [line] = [each for each in text.splitlines() if each.startswith("  surfaces_failure: ")]
    assert len(line) == len("  surfaces_failure: ") + WHY_CHARS and line.endswith("…")


def test_the_replay_line_quotes_the_command() -> None:
    line = replay_line(Path("/tmp/a b.json"), ["node", "my client.mjs", "--x=$HOME"])
    assert shlex.split(line) == [
        "ipmock",
        "fuzz",
        "--replay",
        "/tmp/a b.json",
        "--",
        "node",
        "my client.mjs",
        "--x=$HOME",
    ]


def test_a_flow_is_saved_by_its_content(tmp_path: Path) -> None:
    judged = _judged("", "why")
    first, again = save_flow(judged, tmp_path), save_flow(judged, tmp_path)
    assert first == again and Flow.from_json(first.read_text()) == judged.play.flow
    other = Judged(Play(Flow(samples=3), "k", judged.play.exit, [], {}), judged.verdicts, 0.5, 3.0)
    assert save_flow(other, tmp_path) != first
