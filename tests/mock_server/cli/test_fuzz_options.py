"""mock_server.cli.fuzz: ``ipmock fuzz``'s options cost ``ipmock serve`` nothing (hypothesis
and the toolkit load only when fuzz runs), and its defaults are the fuzzer's."""

from __future__ import annotations

import subprocess
import sys

from contract_tests.fuzz import FuzzSettings
from mock_server.cli import fuzz
from mock_server.cli.options import parse


def test_parsing_any_command_loads_no_hypothesis() -> None:
    code = (
        "import sys\n"
        "from mock_server.cli.options import parse\n"
        "parse(['serve'])\n"
        "parse(['fuzz', '--', 'node', 'client.mjs'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('hypothesis', 'contract_tests', 'schemathesis')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_command_after_the_options_is_kept_whole() -> None:
    _, args = parse(["fuzz", "--jobs", "3", "--", "node", "c.mjs", "--jobs", "9", "--"])
    assert args.jobs == 3
    assert args.client_command == ["--", "node", "c.mjs", "--jobs", "9", "--"]


def test_the_defaults_are_the_fuzzers() -> None:
    _, args = parse(["fuzz", "--", "true"])
    settings = FuzzSettings()
    assert (args.examples, args.poll_floor, args.deadline, args.jobs, args.seed) == (
        settings.examples,
        settings.poll_floor,
        settings.deadline,
        settings.jobs,
        None,
    )
    assert fuzz.PROTOCOL_VARIABLES[0] == "IPMOCK_BASE_URL" and len(fuzz.PROTOCOL_VARIABLES) == 6
