"""The in-place protocol leans on uvicorn's private httptools protocol: the installed
uvicorn has every name it uses, pyproject pins the minor it was written for, and
``ipmock serve`` on any other uvicorn falls back to uvicorn's own protocol, saying so."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import tomllib
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http import httptools_impl
from uvicorn.server import Server, ServerState

from mock_server.cli import main
from mock_server.cli import serve as cli_serve
from mock_server.http import uvicorn_check
from mock_server.http.app import create_app
from mock_server.http.inplace import MockHttpProtocol
from mock_server.settings import Settings
from tests.conftest import REPO

ROOT = REPO


def test_the_installed_uvicorn_fits_the_in_place_protocol() -> None:
    assert uvicorn_check.misfit() is None
    assert uvicorn_check.http_protocol() == uvicorn_check.IN_PLACE_PROTOCOL


def test_pyproject_pins_uvicorn_to_the_tested_minor() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (pin,) = [d for d in project["dependencies"] if re.match(r"uvicorn\b", d)]
    major, minor = uvicorn_check.TESTED_MINOR
    assert pin.replace(" ", "") == f"uvicorn>={major}.{minor},<{major}.{minor + 1}"


class _Transport(asyncio.Transport):
    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )


def test_a_connected_protocol_has_every_attribute_the_in_place_one_reads() -> None:
    config = Config(create_app(Settings()), http=MockHttpProtocol, log_level="warning")
    config.load()
    loop = asyncio.new_event_loop()
    try:
        protocol = httptools_impl.HttpToolsProtocol(
            config=config, server_state=ServerState(), app_state={}, _loop=loop
        )
        protocol.connection_made(_Transport())
        missing = [a for a in uvicorn_check.PROTOCOL_ATTRIBUTES if not hasattr(protocol, a)]
        assert missing == []
        state = protocol.server_state
        assert hasattr(state, "total_requests") and hasattr(state, "default_headers")
        assert isinstance(httptools_impl.STATUS_LINE[200], bytes)
        # connection._done resumes a coroutine by hand, as asyncio's Task does
        assert hasattr(loop.create_future(), "_asyncio_future_blocking")
    finally:
        loop.close()


def test_every_cycle_attribute_it_sets_or_reads_exists() -> None:
    cycle = httptools_impl.RequestResponseCycle(
        **{k: None for k in uvicorn_check.CYCLE_KEYWORDS if k != "scope"},
        scope={"type": "http"},  # type: ignore[arg-type]
    )
    assert all(hasattr(cycle, a) for a in ("body", "more_body", "response_complete"))


def test_another_uvicorn_minor_falls_back_with_one_warning_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(uvicorn_check, "installed_version", lambda: "0.99.1")
    lines: list[str] = []
    assert uvicorn_check.http_protocol(lines.append) == uvicorn_check.FALLBACK_PROTOCOL
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "uvicorn 0.99.1" in lines[0] and "0.55.x" in lines[0], lines


def test_a_missing_private_name_falls_back_and_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delattr(httptools_impl.HttpToolsProtocol, "_start_asgi_task")
    assert uvicorn_check.http_protocol() == uvicorn_check.FALLBACK_PROTOCOL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HttpToolsProtocol._start_asgi_task" in err, err
    assert f"uvicorn {uvicorn_check.installed_version()}" in err


def test_a_changed_cycle_signature_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    class Cycle:
        def __init__(self, scope: Any, transport: Any) -> None: ...

    monkeypatch.setattr(httptools_impl, "RequestResponseCycle", Cycle)
    problem = uvicorn_check.misfit()
    assert problem is not None and "RequestResponseCycle(message_event=)" in problem


@pytest.mark.parametrize(
    ("found", "protocol", "warnings"),
    [(None, uvicorn_check.IN_PLACE_PROTOCOL, 0), ("0.99.1", uvicorn_check.FALLBACK_PROTOCOL, 1)],
)
@pytest.mark.socket
def test_ipmock_serve_runs_the_protocol_the_check_allows(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    found: str | None,
    protocol: str,
    warnings: int,
) -> None:
    for name in list(os.environ):
        if name.startswith("IPMOCK_"):
            monkeypatch.delenv(name)
    if found is not None:
        monkeypatch.setattr(uvicorn_check, "installed_version", lambda: found)
    served: list[str] = []

    def run(server: Server, sockets: list[socket.socket]) -> None:
        served.append(server.config.http)  # type: ignore[arg-type]
        for sock in sockets:
            sock.close()

    monkeypatch.setattr(Server, "run", run)
    monkeypatch.setattr(cli_serve, "prepare_to_serve", lambda: None)  # keeps this process's gc
    assert main(["serve", "--port", "0"]) == 1  # uvicorn did not start: run was replaced
    assert served == [protocol]
    err = capsys.readouterr().err
    assert err.count("ipmock: warning: uvicorn") == warnings, err
    if warnings:
        assert "uvicorn 0.99.1 is not the 0.55.x" in err and err.count("\n") == 1, err
