"""Progress and summaries: plain lines through a pipe, a rich bar and table on a terminal
(a real pseudo-terminal, or one forced), and what they show is data, never markup."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from mock_server.cli import progress
from mock_server.cli.progress import Row, steps, summary

_CLEAN_ENV = {
    key: value
    for key, value in os.environ.items()
    if key not in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")
}
_SCRIPT = """
from mock_server.cli.progress import Row, steps, summary
with steps(6, "flow checks") as work:
    for i in range(6):
        work.advance(note=f"check [red]{i}[/red]")
summary("ipmock verify", [Row("a [bold]check[/bold]", "ok", 0.5), Row("b", "FAIL", 1.25, "why")])
"""


def _run_piped(env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout


def _run_in_a_terminal() -> str:
    """The script's output written to a pseudo-terminal 100 columns wide."""
    leader, follower = pty.openpty()
    env = {**_CLEAN_ENV, "COLUMNS": "100", "LINES": "40", "TERM": "xterm-256color"}
    process = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT], stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(10)
    os.close(leader)
    assert process.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("force_color", [False, True], ids=["plain", "FORCE_COLOR"])
def test_through_a_pipe_each_step_is_a_plain_line(force_color: bool) -> None:
    env = {**_CLEAN_ENV, **({"FORCE_COLOR": "1"} if force_color else {})}
    lines = _run_piped(env).splitlines()
    steps_shown = [line for line in lines if line.startswith("flow checks: ")]
    assert [line.split(", ")[0] for line in steps_shown] == [
        f"flow checks: {i}/6 ({round(100 * i / 6)}%)" for i in range(1, 7)
    ]
    assert steps_shown[0].endswith(" s: check [red]0[/red]")  # elapsed, then the note as is
    assert "━" not in "\n".join(lines) and "\r" not in "\n".join(lines)
    table = lines[lines.index("ipmock verify") :]
    assert table[1].split() == ["check", "result", "time", "details"]
    assert table[3].split() == ["a", "[bold]check[/bold]", "ok", "0.50", "s"]
    assert table[4].split() == ["b", "FAIL", "1.25", "s", "why"]


@pytest.mark.slow
def test_on_a_terminal_a_rich_bar_and_table() -> None:
    out = _run_in_a_terminal()
    assert "\x1b[" in out and "━" in out  # drawn, coloured
    assert "flow checks: 1/6" not in out  # no plain lines
    assert "6/6 (100%)" in out and "check [red]5[/red]" in out  # the note is data
    assert "┏" in out and "│ a [bold]check[/bold] │" in out
    assert "1.25 s" in out


def test_plain_lines_come_each_tenth_when_there_are_many_steps() -> None:
    out = io.StringIO()
    with steps(250, "fuzz", stream=out) as work:
        for _ in range(250):
            work.advance()
    lines = out.getvalue().splitlines()
    assert [line.split(", ")[0] for line in lines] == [
        f"fuzz: {25 * i}/250 ({10 * i}%)" for i in range(1, 11)
    ]
    assert all(line.split(", ")[1].endswith(" s") for line in lines)  # elapsed time


def test_amounts_in_a_unit_and_an_end_short_of_the_total() -> None:
    out = io.StringIO()
    with steps(14.0, "random full weights", unit="GB", stream=out) as work:
        work.advance(7.0, note="unet")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("random full weights: 7.0/14.0 GB (50%), ")
    assert lines[0].endswith(" s: unet")
    assert lines[1].startswith("random full weights: ended at 7.0/14.0 GB (50%) after ")


def test_work_of_unknown_size_says_it_began_and_how_long_it_took() -> None:
    out = io.StringIO()
    with steps(None, "schemathesis", stream=out):
        out.write("its own output\n")
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["schemathesis ...", "its own output"]
    assert lines[2].startswith("schemathesis: done in ") and lines[2].endswith(" s")


def test_an_error_says_where_the_work_stopped_and_goes_on() -> None:
    out = io.StringIO()
    with pytest.raises(KeyError), steps(3, "conformance", stream=out) as work:
        work.advance()
        raise KeyError("x")
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("conformance: stopped at 1/3 (33%) after ")
    assert last.endswith(" s (KeyError)")


def test_control_characters_from_a_server_are_shown_not_obeyed() -> None:
    out = io.StringIO()
    with steps(1, "flow", stream=out) as work:
        work.advance(note="answered \x1b[2J\x07")
    summary("t", [Row("n\x1b[31m", "FAIL", None, "a\x1b]0;title\x07")], stream=out)
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    assert "answered \\x1b[2J\\x07" in text and "n\\x1b[31m" in text
    assert "a\\x1b]0;title\\x07" in text


def test_the_plain_table_aligns_its_columns_and_puts_later_details_below() -> None:
    out = io.StringIO()
    rows = [
        Row("a short one", "ok", 0.01),
        Row("a much longer check name", "FAIL", 12.5, "first problem\nsecond problem"),
        Row("not timed", "skip", None, "not run: the key was refused"),
    ]
    summary("report", rows, stream=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "report"
    details = lines[1].index("details")
    assert lines[3] == "  a short one               ok       0.01 s"  # time right-aligned
    assert lines[4].index("first problem") == details
    assert lines[5].index("second problem") == details and not lines[5][:details].strip()
    assert lines[6].index("not run") == details
    assert lines[6][: details - 2].endswith("skip          -")


def test_a_forced_terminal_gets_the_rich_table_at_a_fixed_width(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    out = io.StringIO()
    rows = [Row("[link=http://x]a[/link]", "ok", 0.5, "two\nlines")]
    summary("verify", rows, stream=out, terminal=True)
    text = out.getvalue()
    assert "┏" in text and "[link=http://x]a[/link]" in text  # markup is text
    assert "\x1b[32m" in text  # ok in green
    body = [line for line in text.splitlines() if "│" in line]
    assert any("two" in line for line in body) and any("lines" in line for line in body)


def test_work_begun_inside_other_work_joins_its_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    out = io.StringIO()
    with steps(2, "conformance", stream=out, terminal=True) as outer:
        with steps(3, "image checks", stream=out, terminal=True) as inner:
            for _ in range(3):
                inner.advance()
        outer.advance(2)
    text = out.getvalue()
    assert "conformance" in text and "image checks" in text and "3/3 (100%)" in text
    assert progress._shared is None  # the display is gone with the outer work


def test_importing_the_module_loads_no_rich() -> None:
    code = (
        "import sys, mock_server, mock_server.cli.progress\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'tqdm'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
