"""What ``ipmock fuzz`` prints: the counterexample (broken properties, the flow in words,
the exchanges with their times, the client's stderr, a replay line) or the all-clear."""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from contract_tests.fuzz.judging import Judged
from contract_tests.properties import exchange_lines

STDERR_LINES = 20
"""Lines of the client's stderr a report shows (its end)."""

WHY_CHARS = 400
"""Most characters of one broken property's why (it may quote the client's stderr, which
the report shows on its own)."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """The client's text as data: control characters (a terminal's escapes) written out
    as ``\\xNN``, so that what a client printed cannot drive the reader's terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _one_line(text: str, limit: int) -> str:
    flat = printable(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def save_flow(judged: Judged, folder: Path) -> Path:
    """Write the flow as JSON in ``folder`` (named by its content, so a second run of the
    same counterexample rewrites the same file); its path."""
    text = judged.play.flow.to_json()
    path = folder / f"ipmock-fuzz-flow-{hashlib.sha256(text.encode()).hexdigest()[:8]}.json"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def replay_line(flow_file: Path, command: Sequence[str]) -> str:
    return shlex.join(["ipmock", "fuzz", "--replay", str(flow_file), "--", *command])


def counterexample(
    judged: Judged,
    command: Sequence[str],
    flow_file: Path,
    *,
    flows_run: int,
    seed: int | None = None,
) -> str:
    """The report of a flow the client broke properties on (``seed``: the search's)."""
    play = judged.play
    seeded = f", seed {seed}" if seed is not None else ""
    lines = [f"ipmock fuzz: the client broke the contract (after {flows_run} flow(s) run{seeded})"]
    lines.append("broken:")
    lines += [f"  {name}: {_one_line(v.why, WHY_CHARS)}" for name, v in judged.broken.items()]
    lines.append(f"flow: {play.flow.describe()}")
    lines.append(
        f"held to: poll floor {judged.poll_floor:g} s, deadline {judged.deadline:g} s; "
        f"the request: {play.flow.body()}"
    )
    lines.append("exchanges (seconds from the first):")
    lines += [printable(line) for line in exchange_lines(play.exchanges)] or [
        "  none: the client sent no request"
    ]
    ended = play.exit
    lines.append(f"the client: {ended.ending()}, printed {ended.printed} byte(s)")
    tail = ended.stderr_tail.rstrip().splitlines()[-STDERR_LINES:]
    if tail:
        lines.append("its stderr ends:")
        lines += [f"  | {printable(line[:300])}" for line in tail]
    else:
        lines.append("its stderr: empty")
    lines.append(f"the flow is saved in {flow_file}; replay it with:")
    lines.append(f"  {replay_line(flow_file, command)}")
    return "\n".join(lines)


def all_held(flows_run: int, seed: int | None) -> str:
    seeded = f" (seed {seed})" if seed is not None else ""
    return f"ipmock fuzz: every property held on {flows_run} flow(s){seeded}"
