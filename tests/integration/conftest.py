"""Fixtures for talking to a real `ipmock serve` over its socket, with bounded waits."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import running_server

from .helpers import Api


@pytest.fixture
def small_body() -> dict[str, Any]:
    """A small valid request (renders fast)."""
    return {"model_id": "sdxl", "prompt": "a lighthouse at dusk", "width": 256, "height": 192}


@pytest.fixture
def api(server_url: str) -> Api:
    """The session server (default settings); tests here only add jobs to it."""
    return Api(server_url)


@pytest.fixture(scope="session")
def _mutable_server() -> Iterator[str]:
    """A second default server for tests that change global state (queue, clock, reset),
    so that they never disturb other tests sharing the session server."""
    with running_server() as url:
        yield url


@pytest.fixture
def mutable_api(_mutable_server: str) -> Api:
    """The state-changing tests' server, reset before each test."""
    api = Api(_mutable_server)
    response = api.admin("POST", "/__mock/reset")
    assert response.status_code == 200, response.text
    return api


@pytest.fixture(scope="session")
def ipmock() -> list[str]:
    """The command line for `ipmock`: this environment's console script (else the module)."""
    script = shutil.which("ipmock", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "mock_server.cli"]
