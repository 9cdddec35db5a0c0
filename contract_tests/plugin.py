"""The pytest plugin (entry point ``pytest11``): installing ipmock is enough to use it.

Fixtures:

    ipmock         a MockHarness: the mock in process on virtual time, with
                   ``client()`` / ``async_client()`` (httpx), the clock (``advance``,
                   ``sleep``, ``async_sleep``, ``now``, ``set_time``, ``freeze``,
                   ``unfreeze``) and admin helpers (``queue``,
                   ``journal``, ``submits``, ``polls``, ``jobs``, ``reset``)
    ipmock_server  a RunningMock: a real ``ipmock serve`` on 127.0.0.1 for clients that
                   open their own connections (requests, subprocesses, other languages),
                   with the same helpers over the admin API; one per session and set of
                   settings, reset before each test

Settings for both: ``@pytest.mark.ipmock(strict=True, api_keys=["sk-me"], config="x.toml")``
(Settings fields, written as in Python; each checked as its command-line flag is).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import fields
from typing import Any

import hypothesis.core
import pytest
from hypothesis.vendor import pretty

from contract_tests.inprocess import MockHarness
from contract_tests.server import RunningMock, running_server
from mock_server import Settings
from mock_server.settings import PARSERS, environ_name
from mock_server.words import did_you_mean

MARKER = "@pytest.mark.ipmock"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ipmock(**settings): Settings fields for the ipmock and ipmock_server fixtures' mock",
    )


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Iterator[None]:
    """Hypothesis prints its falsifying examples again in tests that are not schemathesis's.

    schemathesis (installed with ipmock, for ``ipmock verify``) swaps hypothesis's printer for
    one that prints nothing, for its own speed, in every test of the run: a failing
    ``@given(flow=server_flows())`` then reports ``flow=,``. Its own tests keep its printer.
    """
    if type(pyfuncitem).__module__.startswith("schemathesis."):
        return (yield)
    core: Any = hypothesis.core  # its printer is no public attribute: none is swappable
    swapped = core.RepresentationPrinter
    core.RepresentationPrinter = pretty.RepresentationPrinter
    try:
        return (yield)
    finally:
        core.RepresentationPrinter = swapped


def marked_settings(request: pytest.FixtureRequest) -> Settings:
    """The Settings the test's ``ipmock`` marker names (defaults without one); a marker
    that is wrong fails the test at setup, naming the field and what is allowed."""
    marker = request.node.get_closest_marker("ipmock")
    if marker is None:
        return Settings()
    if marker.args:
        pytest.fail(
            f"{MARKER} takes settings by name, e.g. {MARKER}(strict=True); "
            f"got {len(marker.args)} positional argument(s)",
            pytrace=False,
        )
    known = [f.name for f in fields(Settings)]
    for name in marker.kwargs:
        if name not in known:
            pytest.fail(
                f"{MARKER}: {name!r} is not a setting{did_you_mean(name, known)}; "
                f"settings: {', '.join(known)}",
                pytrace=False,
            )
    try:
        return Settings(**marker.kwargs)
    except ValueError as exc:
        refused = str(exc)
    pytest.fail(f"{MARKER}: {refused}", pytrace=False)


@pytest.fixture
def ipmock(request: pytest.FixtureRequest) -> MockHarness:
    return MockHarness(marked_settings(request))


class _Servers:
    """The served mocks of this session, one per set of settings, started when first used."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._served: dict[tuple[tuple[str, str], ...], RunningMock] = {}

    def get(self, settings: Settings) -> RunningMock:
        # The settings travel as IPMOCK_* variables (what `ipmock serve` reads); those left
        # unset are set empty, so the shell's own do not leak in. Host and port: 127.0.0.1,
        # a free port.
        env = {environ_name(name): "" for name in PARSERS}
        env.update(settings.to_environ())
        for name in ("host", "port"):
            env.pop(environ_name(name))
        key = tuple(sorted(env.items()))
        if key not in self._served:
            url = self._stack.enter_context(running_server(env=env))
            token = settings.admin_token.reveal() if settings.admin_token else None
            served = RunningMock(url, admin_token=token)
            self._stack.callback(served.close)
            self._served[key] = served
        return self._served[key]

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="session")
def _ipmock_servers() -> Iterator[_Servers]:
    servers = _Servers()
    yield servers
    servers.close()


@pytest.fixture
def ipmock_server(request: pytest.FixtureRequest, _ipmock_servers: _Servers) -> RunningMock:
    served = _ipmock_servers.get(marked_settings(request))
    served.reset()
    return served
