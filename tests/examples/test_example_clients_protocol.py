"""The example clients under ``ipmock fuzz``'s protocol: with no options and IPMOCK_REQUEST
set they read every IPMOCK_* variable, and name the ones missing (exit 2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

CLIENTS = {
    "python": [sys.executable, str(REPO / "examples" / "python_client.py")],
    "node": ["node", str(REPO / "examples" / "js_client.mjs")],
}


@pytest.mark.parametrize("language", list(CLIENTS))
def test_a_missing_protocol_variable_is_named(language: str) -> None:
    if language == "node" and shutil.which("node") is None:
        pytest.fail("node (18 or later) is needed to run examples/js_client.mjs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPMOCK_")}
    env |= {"IPMOCK_REQUEST": '{"prompt": "a fox"}', "IPMOCK_BASE_URL": "http://127.0.0.1:9"}
    done = subprocess.run(CLIENTS[language], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert (
        "IPMOCK_API_KEY, IPMOCK_OUT, IPMOCK_POLL_FLOOR, IPMOCK_DEADLINE not set "
        "(ipmock fuzz sets them)" in done.stderr
    )


@pytest.mark.parametrize("language", list(CLIENTS))
def test_options_win_over_the_protocol(language: str) -> None:
    """With options given, IPMOCK_REQUEST is not read: a misspelt option is still named."""
    if language == "node" and shutil.which("node") is None:
        pytest.fail("node (18 or later) is needed to run examples/js_client.mjs")
    env = {**os.environ, "IPMOCK_REQUEST": '{"prompt": "a fox"}'}
    argv = [*CLIENTS[language], "--api-key", "k", "--prompt", "p", "--timeuot", "3"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--timeout" in done.stderr, done.stderr
