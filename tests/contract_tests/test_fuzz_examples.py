"""The example clients speak ``ipmock fuzz``'s protocol (run with no options, IPMOCK_*
set) and pass it: every property held on generated flows, their images byte for byte
the ones served."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from contract_tests.fuzz import FuzzSettings, fuzz_command
from tests.conftest import REPO

pytestmark = [pytest.mark.socket, pytest.mark.slow]

EXAMPLES = REPO / "examples"


def _node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is not installed: scripts/test.sh installs it (the JS client needs it)")
    return found


@pytest.mark.parametrize("language", ["python", "node"])
def test_an_example_client_passes_ipmock_fuzz(language: str, tmp_path: Path) -> None:
    command = (
        [sys.executable, str(EXAMPLES / "python_client.py")]
        if language == "python"
        else [_node(), str(EXAMPLES / "js_client.mjs")]
    )
    outcome = fuzz_command(command, FuzzSettings(examples=10, seed=15, jobs=2))
    assert 8 <= outcome.flows_run <= 10  # a flow hypothesis draws twice is played once
    failure = outcome.failure
    assert failure is None, (failure.broken, failure.play.exit.stderr_tail) if failure else None
