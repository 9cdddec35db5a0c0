"""The servers compared, each as a command line: ipmock, Prism, WireMock, the ceiling."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.peers.install import PEERS_HOME, prism_bin, wiremock_jar
from bench.serve_throughput import IPMOCK_ARGS

BENCH = Path(__file__).resolve().parent.parent
SERVERS = ("ipmock", "prism", "wiremock", "ceiling")
PEERS = ("prism", "wiremock")
CEILING = "ceiling"
"""Not a peer: bench/ceiling_server.py, the submit's validation alone in bare CPython
(no framework, no state), the most any CPython design could do here."""
READY_TIMEOUT_S = 90.0  # a JVM or Prism on a busy 2-core machine starts slowly
JIT_WARMUP_S = 60  # seconds of load WireMock needs before its rate stops climbing
# WireMock's container threads (None: its default, 25). On 2 cores Jetty refuses fewer
# than 7; 8 did better than 25 here, in req/s and in CPU per request (bench/README.md).
WIREMOCK_CONTAINER_THREADS: int | None = 8


@dataclass(frozen=True)
class Server:
    name: str
    command: list[str]
    port: int
    cwd: Path | None = None
    submit_query: str = ""  # Prism: ?__code=202 picks the PENDING answer
    settings: str = ""  # in words, for the report
    env: Mapping[str, str] | None = None  # None: this script's environment


def ipmock_env(environ: Mapping[str, str]) -> dict[str, str]:
    """ipmock's environment: no IPMOCK_* setting of the caller's, and no cap on jobs in
    flight per key (the submit load makes thousands of PENDING jobs that nobody polls;
    a client would poll them, and the peers have no such cap)."""
    env = {k: v for k, v in environ.items() if not k.startswith("IPMOCK_")}
    env["IPMOCK_MAX_IN_FLIGHT"] = "0"
    return env


def ipmock_server() -> Server:
    """ipmock, started by `running_server` on a port of its choosing (the port here is 0)."""
    return Server(
        "ipmock",
        ["ipmock", "serve", "--host", "127.0.0.1", "--port", "0", *IPMOCK_ARGS],
        0,
        settings="ipmock serve --log-level warning, memory store, IPMOCK_MAX_IN_FLIGHT=0",
        env=ipmock_env(os.environ),
    )


def prism_server(port: int, document: Path) -> Server:
    # --multiprocess would fork the HTTP server from the logger, but Prism 5.16.0 on
    # Node 20 fails at start with it (cluster.isPrimary of undefined).
    command = [
        str(prism_bin()),
        "mock",
        str(document),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dynamic=false",
        "--errors=false",
        "--verboseLevel",
        "error",
    ]
    return Server(
        "prism",
        command,
        port,
        submit_query="?__code=202",
        settings="prism mock, static examples, request validation on (always), log level error",
    )


def wiremock_server(port: int, root: Path, threads: int | None, java: str = "java") -> Server:
    jar = wiremock_jar()
    if jar is None:
        raise RuntimeError(f"no wiremock-standalone jar under {PEERS_HOME}")
    command = [
        java,
        "-jar",
        str(jar),
        "--port",
        str(port),
        "--bind-address",
        "127.0.0.1",
        "--root-dir",
        str(root),
        "--no-request-journal",
        "--disable-banner",
        "--disable-request-logging",
    ]
    if threads is not None:
        command += ["--container-threads", str(threads)]
    threads_text = "default (25)" if threads is None else str(threads)
    return Server(
        "wiremock",
        command,
        port,
        settings="standalone, --no-request-journal --disable-request-logging, container "
        f"threads {threads_text}",
    )


def ceiling_server(port: int, processes: int) -> Server:
    return Server(
        CEILING,
        [sys.executable, "-m", "bench.ceiling_server", str(port), str(processes)],
        port,
        cwd=BENCH.parent,
        settings=f"bench/ceiling_server.py: uvloop + httptools + validate(), no state, "
        f"{processes} process(es) on SO_REUSEPORT",
    )
