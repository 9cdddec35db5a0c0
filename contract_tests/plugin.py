"""The pytest plugin (entry point ``pytest11``): installing ipmock is enough to use it.

Fixtures:

    ipmock         a MockHarness: the mock in process on virtual time, with
                   ``client()`` / ``async_client()`` (httpx) and admin helpers
                   (``queue``, ``journal``, ``polls``, ``advance``)
    ipmock_server  a RunningMock: a real ``ipmock serve`` on 127.0.0.1 for clients that
                   open their own connections (requests, subprocesses, other languages);
                   one per session, reset before each test

Settings for ``ipmock``: ``@pytest.mark.ipmock(strict=True, job_ttl=60)`` (Settings fields).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contract_tests.inprocess import MockHarness
from contract_tests.server import RunningMock, running_server
from mock_server import Settings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ipmock(**settings): Settings fields for the ipmock fixture's mock"
    )


@pytest.fixture
def ipmock(request: pytest.FixtureRequest) -> MockHarness:
    marker = request.node.get_closest_marker("ipmock")
    return MockHarness(Settings(**(marker.kwargs if marker else {})))


@pytest.fixture(scope="session")
def _ipmock_served() -> Iterator[RunningMock]:
    with running_server() as url:
        served = RunningMock(url)
        yield served
        served.close()


@pytest.fixture
def ipmock_server(_ipmock_served: RunningMock) -> RunningMock:
    _ipmock_served.reset()
    return _ipmock_served
