"""The load: wrk runs against one server, its CPU time over them, and the goal's verdicts."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.peers.install import require
from bench.serve_throughput import WrkResult, run_wrk
from bench.support import procfs

GOAL_RATIO = 1.5  # ipmock must do at least this many times the best peer's req/s


@dataclass(frozen=True)
class Row:
    workload: str
    server: str
    result: WrkResult
    rounds: tuple[float, ...] = ()  # req/s of every round, when more than one
    cpu_us_per_request: float | None = None  # the server's CPU time (all its processes)
    cores: float | None = None  # the server's CPU seconds per second of the run


@dataclass(frozen=True)
class Run:
    """One measured wrk run and the CPU time the server's processes used meanwhile."""

    result: WrkResult
    cpu_s: float | None
    wall_s: float


def _group_cpu(pgid: int | None) -> float | None:
    return None if pgid is None else procfs.group_cpu_seconds(pgid)


def measure(
    url: str,
    method: str,
    key: str,
    body: Path | None,
    args: argparse.Namespace,
    pgid: int | None,
    warmup: int,
) -> Run:
    """Warm up, then one measured run, with the server's CPU time over it."""
    require("wrk", "the load generator", "apt-get install -y wrk")
    if warmup > 0:
        run_wrk(url, method, key, body, args, warmup)
    cpu_before, started = _group_cpu(pgid), time.monotonic()
    result = run_wrk(url, method, key, body, args, args.duration)
    cpu_after, wall = _group_cpu(pgid), time.monotonic() - started
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Run(result, cpu, wall)


@dataclass(frozen=True)
class Verdict:
    workload: str
    best_rps_peer: str
    rps_ratio: float  # ipmock req/s over the best peer's
    best_p99_peer: str
    p99_ratio: float  # ipmock p99 over the lowest peer p99
    met: bool


def verdicts(rows: Sequence[Row], fair_peers: Sequence[str]) -> list[Verdict]:
    """Per workload: ipmock against the peer with the most req/s and the one with the
    lowest p99 (the strict reading of "the best peer"); only peers that validate count.
    """
    out = []
    for workload in dict.fromkeys(r.workload for r in rows):
        here = {r.server: r.result for r in rows if r.workload == workload}
        peers = {name: r for name, r in here.items() if name in fair_peers}
        if "ipmock" not in here or not peers:
            continue
        mine = here["ipmock"]
        fastest = max(peers, key=lambda n: peers[n].requests_per_s)
        steadiest = min(peers, key=lambda n: peers[n].p99_ms)
        rps_ratio = mine.requests_per_s / peers[fastest].requests_per_s
        p99_ratio = mine.p99_ms / peers[steadiest].p99_ms
        met = rps_ratio >= GOAL_RATIO and p99_ratio <= 1.0
        out.append(Verdict(workload, fastest, rps_ratio, steadiest, p99_ratio, met))
    return out


def _median_round(runs: Sequence[Run]) -> Run:
    """The round with the median req/s (its latencies and CPU time with it)."""
    ordered = sorted(runs, key=lambda r: r.result.requests_per_s)
    return ordered[(len(ordered) - 1) // 2]


def make_row(workload: str, server: str, runs: Sequence[Run]) -> Row:
    chosen = _median_round(runs)
    r = chosen.result
    cpu_us = cores = None
    if chosen.cpu_s is not None and r.requests:
        cpu_us = chosen.cpu_s / r.requests * 1e6
        cores = chosen.cpu_s / chosen.wall_s
    rounds = tuple(x.result.requests_per_s for x in runs) if len(runs) > 1 else ()
    return Row(workload, server, r, rounds, cpu_us, cores)
