"""bench.support: the /proc reader, and the one launcher's options the benchmarks use."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from bench.support import procfs
from bench.support.bodies import DOCS_EXAMPLE, SUBMIT_BODY
from contract_tests.server import running_server
from mock_server.validation import validate

linux = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")


@linux
@pytest.mark.socket
def test_listening_pid_finds_the_process_on_a_port_and_none_elsewhere() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        assert procfs.listening_pid(port) is None  # bound, not listening
        listener.listen()
        assert procfs.listening_pid(port) == os.getpid()
        assert procfs.listening_pid(f"http://127.0.0.1:{port}/x") == os.getpid()
    assert procfs.listening_pid("http://127.0.0.1") is None  # no port in the URL


@linux
def test_resources_of_a_live_process_and_none_for_a_gone_one(tmp_path: Path) -> None:
    me = os.getpid()
    rss, fds, cpu = procfs.rss_kb(me), procfs.fd_count(me), procfs.cpu_seconds(me)
    assert rss is not None and rss > 0 and fds is not None and fds > 0
    assert cpu is not None and cpu > 0
    assert procfs.parent_of(me) == os.getppid()
    assert procfs.rss_kb(me, tmp_path) is None and procfs.fd_count(me, tmp_path) is None
    assert procfs.cpu_seconds(me, tmp_path) is None


def test_the_bench_body_is_the_docs_example_with_a_short_image_url() -> None:
    assert {k: v for k, v in SUBMIT_BODY.items() if k != "ip_adapter_image"} == {
        k: v for k, v in DOCS_EXAMPLE.items() if k != "ip_adapter_image"
    }
    assert list(SUBMIT_BODY) == list(DOCS_EXAMPLE)
    validate(json.dumps(SUBMIT_BODY).encode())  # refused bodies raise


@linux
def test_running_server_in_a_session_of_its_own_from_a_given_environment() -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IPMOCK_")}
    lines: list[str] = []
    with running_server(
        base_env={**environ, "IPMOCK_STRICT": "1"}, new_session=True, output=lines
    ) as url:
        pid = procfs.listening_pid(url)
        assert pid is not None
        assert os.getpgid(pid) == pid != os.getpgid(0)  # its own group, led by the server
    assert procfs.rss_kb(pid) is None  # the group was stopped
    assert any("validation: strict" in line for line in lines)
