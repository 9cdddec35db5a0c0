"""What ``ipmock fuzz`` prints: the counterexample (broken properties, the flow in words,
the exchanges with their times, the client's stderr, a replay line) or the all-clear."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence
from pathlib import Path

from contract_tests.fuzz.judging import Judged
from contract_tests.properties import exchange_lines

STDERR_LINES = 20
"""Lines of the client's stderr a report shows (its end)."""


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
    judged: Judged, command: Sequence[str], flow_file: Path, *, flows_run: int
) -> str:
    """The report of a flow the client broke properties on."""
    play = judged.play
    lines = [f"ipmock fuzz: the client broke the contract (after {flows_run} flow(s) run)"]
    lines.append("broken:")
    lines += [f"  {name}: {verdict.why}" for name, verdict in judged.broken.items()]
    lines.append(f"flow: {play.flow.describe()}")
    lines.append(
        f"held to: poll floor {judged.poll_floor:g} s, deadline {judged.deadline:g} s; "
        f"the request: {play.flow.body()}"
    )
    lines.append("exchanges (seconds from the first):")
    lines += exchange_lines(play.exchanges) or ["  none: the client sent no request"]
    ended = play.exit
    lines.append(f"the client: {ended.ending()}, printed {ended.printed} byte(s)")
    tail = ended.stderr_tail.rstrip().splitlines()[-STDERR_LINES:]
    if tail:
        lines.append("its stderr ends:")
        lines += [f"  | {line[:300]}" for line in tail]
    else:
        lines.append("its stderr: empty")
    lines.append(f"the flow is saved in {flow_file}; replay it with:")
    lines.append(f"  {replay_line(flow_file, command)}")
    return "\n".join(lines)


def all_held(flows_run: int, seed: int | None) -> str:
    seeded = f" (seed {seed})" if seed is not None else ""
    return f"ipmock fuzz: every property held on {flows_run} flow(s){seeded}"
