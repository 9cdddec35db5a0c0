"""``ipmock fuzz``'s run from its parsed options (``mock_server.cli.fuzz``): usage errors
(exit 2), then the search or the replay and its report (exit 0 every flow held, 1 a
counterexample)."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

from contract_tests.flows import Flow, FlowError
from contract_tests.fuzz import report
from contract_tests.fuzz.search import FuzzSettings, fuzz_command, replay
from contract_tests.server import ServerDidNotStart
from mock_server.cli import progress


class _Usage(Exception):
    """A usage error: said in one line, exit 2."""


def _command(given: list[str]) -> list[str]:
    command = given[1:] if given[:1] == ["--"] else given
    if not command:
        raise _Usage("no COMMAND: give the client to run after --, e.g. -- node client.mjs")
    program = command[0]
    if os.sep in program or (os.altsep and os.altsep in program):
        path = Path(program)
        if not path.exists():
            raise _Usage(f"COMMAND {program!r} not found")
        if path.is_dir() or not os.access(path, os.X_OK):
            raise _Usage(
                f"COMMAND {program!r} is not executable (chmod +x it, or name its "
                "interpreter: -- node client.mjs)"
            )
    elif shutil.which(program) is None:
        raise _Usage(f"COMMAND {program!r} not found on PATH")
    return command


def _flow(path: Path) -> Flow:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _Usage(f"--replay {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _Usage(f"--replay {path}: not UTF-8 text (a flow is JSON)") from None
    try:
        return Flow.from_json(text)
    except FlowError as exc:
        raise _Usage(f"--replay {path}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    """Run ``ipmock fuzz``; its exit status."""
    try:
        command = _command(list(args.client_command))
        flow = _flow(args.replay) if args.replay is not None else None
    except _Usage as exc:
        print(f"ipmock fuzz: {exc}", file=sys.stderr)
        return 2
    options = FuzzSettings(
        examples=args.examples,
        seed=args.seed if args.seed is not None else random.randrange(2**32),
        poll_floor=args.poll_floor,
        deadline=args.deadline,
        jobs=args.jobs,
    )
    try:
        if flow is not None:
            outcome = replay(command, flow, options)
        else:
            print(
                f"ipmock fuzz: {options.examples} flow(s) on {options.jobs} mock(s), "
                f"seed {options.seed}",
                file=sys.stderr,
                flush=True,
            )
            with progress.steps(options.examples, "ipmock fuzz", stream=sys.stderr) as played:
                outcome = fuzz_command(command, options, progress=played)
    except ServerDidNotStart as exc:
        print(f"ipmock fuzz: the mock did not start: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the system would not start COMMAND (no #! line, a bad binary)
        print(f"ipmock fuzz: COMMAND {command[0]!r} could not be run: {exc}", file=sys.stderr)
        return 2
    if outcome.failure is None:
        print(report.all_held(outcome.flows_run, outcome.seed))
        return 0
    try:
        saved = report.save_flow(outcome.failure, Path.cwd())
    except OSError:  # a folder it may not write in: the temporary folder instead
        saved = report.save_flow(outcome.failure, Path(tempfile.gettempdir()))
    said = report.counterexample(
        outcome.failure, command, saved, flows_run=outcome.flows_run, seed=outcome.seed
    )
    print(said)
    return 1
