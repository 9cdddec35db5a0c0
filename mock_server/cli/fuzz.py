"""``ipmock fuzz``'s options and defaults; what it runs is ``contract_tests.fuzz``'s,
imported only when the command runs (hypothesis stays out of ``ipmock serve``'s start)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mock_server.settings import PARSERS, seconds, whole

PROTOCOL_VARIABLES = (
    "IPMOCK_BASE_URL",
    "IPMOCK_API_KEY",
    "IPMOCK_REQUEST",
    "IPMOCK_OUT",
    "IPMOCK_POLL_FLOOR",
    "IPMOCK_DEADLINE",
)
"""What a client run by ``ipmock fuzz`` is given, in this order (docs/any-language.md):
ipmock's variables too, for the client (IPMOCK_API_KEY is serve's as well)."""

EXAMPLES = 25
POLL_FLOOR = 0.5
DEADLINE = 3.0
JOBS = 2
"""The defaults: 25 flows of a careful client take about a minute on two busy cores."""

_DESCRIPTION = """\
Judge a client in any language. ipmock serves the mock on 127.0.0.1 and runs COMMAND
once per generated flow (refused submits, lost answers, faults, PENDING, FAILURE, stuck
jobs), with these variables set:
  IPMOCK_BASE_URL, IPMOCK_API_KEY     where and as whom
  IPMOCK_REQUEST                      the JSON body to submit
  IPMOCK_OUT                          an empty folder: write sample i as {i}.png, from 0
  IPMOCK_POLL_FLOOR, IPMOCK_DEADLINE  seconds: between polls of a job, and to give up
COMMAND's exit status 0 means every image was written; any other means it failed, with
the server's error message in its stderr. Each run is judged by the client properties;
a failure is shrunk to its smallest flow, reported, and saved for --replay.
Exit status: 0 every flow held, 1 a counterexample, 2 a usage error.
"""

_EPILOG = """\
example: ipmock fuzz --examples 25 -- node examples/js_client.mjs
The protocol and wrappers for Node, Python and Go: docs/any-language.md
"""


def add_command(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    argtype: Callable[[Callable[[str], Any]], Callable[[str], Any]],
) -> None:
    """The fuzz subcommand (``argtype``: argparse's type of a value parser)."""
    fuzz = commands.add_parser(
        "fuzz",
        help="run a client command (any language) on generated flows and judge it",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="ipmock fuzz [options] -- COMMAND [ARGS...]",
    )
    fuzz.add_argument(
        "--examples",
        type=argtype(whole(1)),
        default=EXAMPLES,
        metavar="N",
        help=f"flows to run (default {EXAMPLES})",
    )
    fuzz.add_argument(
        "--seed", type=argtype(PARSERS["seed"]), metavar="N", help="seed, to repeat a run"
    )
    fuzz.add_argument(
        "--poll-floor",
        type=argtype(seconds(zero=True)),
        default=POLL_FLOOR,
        metavar="S",
        help=f"seconds the client must leave between polls of a job (default {POLL_FLOOR:g})",
    )
    fuzz.add_argument(
        "--deadline",
        type=argtype(seconds()),
        default=DEADLINE,
        metavar="S",
        help=f"seconds after which the client must give up a job that never ends (default "
        f"{DEADLINE:g}); at 3 x this its process group is killed",
    )
    fuzz.add_argument(
        "--jobs",
        type=argtype(whole(1)),
        default=JOBS,
        metavar="N",
        help=f"flows run side by side, each with its own key and mock (default {JOBS})",
    )
    fuzz.add_argument(
        "--replay",
        type=Path,
        metavar="FLOW.json",
        help="play this one flow (a counterexample's saved flow) instead of generating",
    )
    fuzz.add_argument("client_command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Run ``ipmock fuzz``; its exit status."""
    try:
        from contract_tests.fuzz.cli import run as run_fuzz
    except ModuleNotFoundError as exc:
        print(
            f"ipmock fuzz: the Python package {exc.name!r} is missing from {sys.executable}: "
            "reinstall ipmock with its dependencies (`pip install ipmock`)",
            file=sys.stderr,
        )
        return 2
    return run_fuzz(args)
