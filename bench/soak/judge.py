"""What the soak measures and judges: the server's process tree (RSS, FDs and CPU from
/proc), the memory figures, the contract's fault answers, the verdict."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.soak.options import (
    Figures,
    Sample,
    SoakOptions,
    Tally,
)
from bench.support import procfs

# The server's process tree, from /proc (bench.support.procfs); a process gone or a
# zombie counts as holding nothing.


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it (the worker processes of --workers)."""
    children: defaultdict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (parent := procfs.parent_of(int(entry))) is not None:
            children[parent].append(int(entry))
    tree, frontier = [root], [root]
    while frontier:
        found = children.get(frontier.pop(), [])
        tree.extend(found)
        frontier.extend(found)
    return tree


def server_pid(url: str) -> int:
    """The process of ours (a direct child) listening on the server URL's port."""
    listening = procfs.listening_inodes(urlsplit(url).port or 80)
    me = os.getpid()
    for entry in os.listdir("/proc"):
        pid = int(entry) if entry.isdigit() else 0
        if pid and procfs.parent_of(pid) == me and procfs.socket_inodes(pid) & listening:
            return pid
    raise RuntimeError(f"no child process of {me} listens on {url}")


@dataclass(frozen=True)
class TreeUsage:
    """Summed over a process tree (a page shared by two processes counts twice)."""

    rss_mb: float
    fds: int
    cpu_s: float
    processes: int
    by_process: dict[str, list[float]] = field(default_factory=dict)
    """pid: [RSS MB, FDs]."""


def measure_tree(root: int) -> TreeUsage:
    tree = process_tree(root)
    each = {
        str(p): [round((procfs.rss_kb(p) or 0) / 1024, 2), procfs.fd_count(p) or 0] for p in tree
    }
    return TreeUsage(
        rss_mb=sum(rss for rss, _ in each.values()),
        fds=int(sum(fds for _, fds in each.values())),
        cpu_s=sum(procfs.cpu_seconds(p) or 0.0 for p in tree),  # gone: 0
        processes=len(tree),
        by_process=each,
    )


def least_squares_slope(points: Sequence[tuple[float, float]]) -> float:
    """Slope of the least squares line through (x, y) points; 0 for fewer than two xs."""
    if len({x for x, _ in points}) < 2:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    variance = sum((x - mean_x) ** 2 for x, _ in points)
    return covariance / variance


def fault_answer(status: int, body: bytes) -> bool:
    """Whether a 5xx answer is one the mock gives on purpose: a scenario's refusal or fault
    (503 ``busy``, 500 ``server_error`` saying "(simulated)"); anything else is a bug."""
    try:
        data = json.loads(body)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    code, error = data.get("code"), str(data.get("error", ""))
    return (status == 503 and code == "busy") or (
        status == 500 and code == "server_error" and "(simulated)" in error
    )


def memory_figures(samples: Sequence[Sample], options: SoakOptions, warmup: str) -> Figures:
    """The RSS and FD figures: start and end are the first and last samples of the load."""
    idle = samples[0]
    measured = [s for s in samples if s.phase == "load"] or [idle]
    after = [s for s in samples if s.phase == "after"] or samples[-1:]
    warm = next((s for s in samples if s.phase == "warm"), measured[0])
    start, end = measured[0], measured[-1]
    growth = end.rss_mb - start.rss_mb
    by_process = {
        pid: {
            "rss_start_mb": start.by_process.get(pid, [0.0, 0])[0],
            "rss_end_mb": end.by_process.get(pid, [0.0, 0])[0],
            "fds_start": start.by_process.get(pid, [0.0, 0])[1],
            "fds_end": end.by_process.get(pid, [0.0, 0])[1],
        }
        for pid in sorted({*start.by_process, *end.by_process}, key=int)
    }
    return Figures(
        warmup=warmup,
        rss_idle_mb=round(idle.rss_mb, 1),
        rss_start_mb=round(start.rss_mb, 1),
        rss_end_mb=round(end.rss_mb, 1),
        rss_max_mb=round(max(s.rss_mb for s in samples), 1),
        rss_slope_mb_per_min=round(
            least_squares_slope([(s.t / 60, s.rss_mb) for s in measured]), 3
        ),
        rss_growth_mb=round(growth, 1),
        rss_allowed_growth_mb=round(
            max(options.rss_tolerance_mb, options.rss_tolerance_fraction * start.rss_mb), 1
        ),
        fds_idle=idle.fds,
        fds_start=start.fds,
        fds_end=end.fds,
        fds_max=max(s.fds for s in samples),
        fds_after=after[-1].fds,
        server_cpu_s=round(end.server_cpu_s - start.server_cpu_s, 1),
        client_cpu_s=round(end.client_cpu_s - start.client_cpu_s, 1),
        fds_warm=warm.fds,
        fds_bound=idle.fds
        + options.concurrency
        + redis_connections_bound(options.server_args)
        + options.fd_slack,
        by_process=by_process,
    )


def server_arg(server_args: Sequence[str], flag: str) -> str | None:
    """The value of ``flag`` among the server's arguments (``--flag V`` or ``--flag=V``)."""
    for i, arg in enumerate(server_args):
        if arg == flag and i + 1 < len(server_args):
            return server_args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def server_workers(server_args: Sequence[str]) -> int:
    """The ``--workers N`` among the server's arguments (1 when absent)."""
    return max(1, int(server_arg(server_args, "--workers") or 1))


def redis_connections_bound(server_args: Sequence[str]) -> int:
    """The Redis connections the server's processes may hold: ``--workers`` times
    ``--redis-connections`` (16 unless given) with a Redis ``--store``, else none."""
    store = server_arg(server_args, "--store") or ""
    if not store.startswith(("redis://", "rediss://", "unix://")):
        return 0
    return server_workers(server_args) * int(server_arg(server_args, "--redis-connections") or 16)


def judge(tally: Tally, figures: Figures, options: SoakOptions) -> list[str]:
    """Why the soak failed; empty when it passed."""
    failures: list[str] = []
    if tally.jobs["not_final"]:
        failures.append(
            f"{tally.jobs['not_final']} job(s) not final within {options.job_bound:g} s"
        )
    if tally.jobs["vanished"]:
        failures.append(f"{tally.jobs['vanished']} accepted job(s) later unknown (404)")
    if tally.found["unexpected_5xx"]:
        failures.append(
            f"{tally.found['unexpected_5xx']} 5xx answer(s) no scenario or fault explains"
        )
    if tally.found["wrong_answers"]:
        failures.append(f"{tally.found['wrong_answers']} answer(s) broke the contract")
    if tally.images["given_up"]:
        failures.append(f"{tally.images['given_up']} image download(s) never succeeded")
    if tally.found["crashes"]:
        failures.append(f"{tally.found['crashes']} client task(s) crashed or never ended")
    if figures.rss_growth_mb > figures.rss_allowed_growth_mb:
        failures.append(
            f"RSS grew {figures.rss_growth_mb:.1f} MB from the warm-up figure "
            f"({figures.rss_start_mb:.1f} MB) to the end; at most "
            f"{figures.rss_allowed_growth_mb:.1f} MB allowed"
        )
    if tally.jobs["lost"]:
        failures.append(f"{tally.jobs['lost']} submit(s) never answered")
    if tally.found["answered_twice"]:
        failures.append(f"{tally.found['answered_twice']} job(s) answered with a second outcome")
    baseline = max(figures.fds_idle, figures.fds_warm)
    if figures.fds_after > baseline + options.fd_slack:
        failures.append(
            f"{figures.fds_after} FDs open after the load, {baseline} once warm "
            f"(at most {options.fd_slack} more allowed)"
        )
    if figures.fds_bound and figures.fds_max > figures.fds_bound:
        failures.append(
            f"{figures.fds_max} FDs open at most, over the bound of {figures.fds_bound} "
            "(idle, a connection per client, the Redis pools, the slack)"
        )
    return failures
