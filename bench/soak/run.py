"""A soak of a real `ipmock serve --chaos`: minutes of mixed client load, memory and FDs watched.

Starts a fresh ``ipmock serve --chaos --seed S`` on 127.0.0.1, runs C concurrent async
clients against it for --duration seconds (valid submits followed to the end, downloads,
invalid submits, unknown ids), samples the server's RSS and open file descriptors as it
goes, and prints a report. Exit 1 if a job never became final, a 5xx came that no
scenario or fault explains, an answer broke the contract, or the memory grew.

    .venv/bin/python -m bench.soak [--duration 600] [--concurrency 32] [--seed 7]
        [--json PATH] [--server-arg ARG ...] [-- SERVER ARGS ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from bench.soak.judge import (
    judge,
    measure_tree,
    memory_figures,
    server_pid,
    server_workers,
)
from bench.soak.load import Load
from bench.soak.options import (
    MB,
    Sample,
    SoakOptions,
    SoakReport,
)
from contract_tests.server import ServerDidNotStart, running_server


@dataclass
class LoadRun:
    """What ``_load`` hands back to ``run_soak``."""

    load: Load
    samples: list[Sample]
    warmup: str
    load_seconds: float
    drain_seconds: float


def _is_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"  # a zombie has ended


Watch = Callable[[str], dict[str, float]]
"""Called at each sample with its phase; what it returns goes into the sample (and the
log): figures of things beside the server's tree, such as Redis's memory."""


async def _load(
    url: str, pid: int, options: SoakOptions, log: Callable[[str], None], watch: Watch | None
) -> LoadRun:
    """Warm up, run the clients for the duration, then until their jobs end; sample all along."""
    samples: list[Sample] = []
    limits = httpx.Limits(
        max_connections=options.concurrency, max_keepalive_connections=options.concurrency
    )
    # Each of --workers N processes fills an image cache of its own, and a kept-alive
    # connection stays on the process that accepted it (32 connections fell 22 to 10 once:
    # one cache stayed a third empty and filled during the load). A connection per
    # request in the warm-up spreads its downloads over the processes.
    one_per_request = httpx.Limits(max_connections=options.concurrency, max_keepalive_connections=0)
    warm_limits = one_per_request if server_workers(options.server_args) > 1 else limits
    http = httpx.AsyncClient(limits=warm_limits, timeout=options.request_timeout)
    load = Load(url, options, http)
    tally = load.tally
    began = time.monotonic()

    def sample(phase: str) -> None:
        usage, own = measure_tree(pid), os.times()
        taken = Sample(
            t=round(time.monotonic() - began, 1),
            rss_mb=round(usage.rss_mb, 2),
            fds=usage.fds,
            processes=usage.processes,
            server_cpu_s=round(usage.cpu_s, 2),
            client_cpu_s=round(own.user + own.system, 2),
            jobs_accepted=tally.jobs["accepted"],
            jobs_final=tally.jobs_final(),
            requests=tally.total_requests(),
            phase=phase,
            by_process=usage.by_process,
            watched=watch(phase) if watch else {},
        )
        cpu = ""
        if samples and (span := taken.t - samples[-1].t) >= 0.5:
            server = 100 * (taken.server_cpu_s - samples[-1].server_cpu_s) / span
            client = 100 * (taken.client_cpu_s - samples[-1].client_cpu_s) / span
            cpu = f"cpu % server {server:3.0f} soak {client:3.0f}"
        samples.append(taken)
        errors = sum(sum(c.values()) for c in tally.client_errors.values())
        if phase == "warm-up":
            warm = tally.warmup
            jobs = f"{warm['jobs']:6d} made, {warm['image_bytes'] / MB:5.1f} MB of images"
        else:
            jobs = f"{taken.jobs_accepted:6d} accepted, {taken.jobs_final:6d} ended"
        watched = "".join(f"  {k} {v:g}" for k, v in taken.watched.items())
        log(
            f"  t={taken.t:5.0f} s  rss {taken.rss_mb:6.1f} MB  fds {taken.fds:4d}  jobs {jobs}  "
            f"requests {taken.requests:7d}  client errors {errors:4d}  [{phase}]  {cpu}{watched}"
        )

    async def sample_until_done(tasks: list[asyncio.Task[None]], phase: str, bound: float) -> int:
        """Sample every few seconds until the tasks end, or ``bound`` seconds; those left."""
        until, pending = time.monotonic() + bound, set(tasks)
        while pending and time.monotonic() < until:
            wait = min(options.sample_every, until - time.monotonic())
            _, pending = await asyncio.wait(pending, timeout=max(0.0, wait))
            sample(phase)
        return len(pending)

    def full() -> bool:
        return (
            tally.warmup["jobs"] >= options.warmup_jobs
            and tally.warmup["image_bytes"] >= options.warmup_image_bytes
        ) or load.stop.is_set()

    sample("idle")
    clients: list[asyncio.Task[None]] = []
    try:
        warmup = "none"
        if options.warmup_jobs > 0 or options.warmup_image_bytes > 0:
            clients = [asyncio.create_task(load.fill(i, full)) for i in range(options.concurrency)]
            left = await sample_until_done(clients, "warm-up", options.warmup_timeout)
            load.stop.set()
            await asyncio.gather(*clients)
            load.stop.clear()
            warm = tally.warmup
            warmup = (
                f"{warm['jobs']} jobs (SUCCESS at once) and {warm['images']} images "
                f"({warm['image_bytes'] / MB:.1f} MB) in {time.monotonic() - began:.0f} s"
            )
            if left:
                warmup += (
                    f": stopped at {options.warmup_timeout:g} s before the stores were full, "
                    "so their filling may show as growth"
                )
            # The baseline: stores and pools full, the warm-up's connections closed.
            await http.aclose()
            http = load.http = httpx.AsyncClient(limits=limits, timeout=options.request_timeout)
            await _settle(pid, samples[0].fds, options)
            sample("warm")
        started = time.monotonic()
        sample("load")
        clients = [asyncio.create_task(load.client(i)) for i in range(options.concurrency)]
        while (elapsed := time.monotonic() - started) < options.duration:
            await asyncio.sleep(min(options.sample_every, options.duration - elapsed))
            sample("load")
        load_seconds = time.monotonic() - started
        load.stop.set()
        log(f"  load over after {load_seconds:.0f} s; following the jobs in flight to the end")
        drain_bound = options.job_bound + 120.0  # a job's bound, then its downloads' retries
        if stuck := await sample_until_done(clients, "drain", drain_bound):
            load.finding("crashes", f"{stuck} client(s) still busy {drain_bound:g} s later")
        drain_seconds = time.monotonic() - started - load_seconds
        compared = await load.recheck(options.recheck_jobs)
        log(f"  {compared} jobs polled again: {tally.found['answered_twice']} changed outcome")
    finally:
        load.stop.set()
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        await http.aclose()
    await _settle(pid, max(s.fds for s in samples if s.phase in ("idle", "warm")), options)
    sample("after")
    return LoadRun(load, samples, warmup, load_seconds, drain_seconds)


async def _settle(pid: int, fds: int, options: SoakOptions) -> None:
    """The server closes its side once it reads our FIN: wait (bounded) for its FDs to
    fall to ``fds`` and the slack."""
    settle_until = time.monotonic() + options.settle_timeout
    while time.monotonic() < settle_until and measure_tree(pid).fds > fds + options.fd_slack:
        await asyncio.sleep(0.2)


def print_now(line: str) -> None:
    print(line, flush=True)


def run_soak(
    options: SoakOptions, log: Callable[[str], None] = print_now, watch: Watch | None = None
) -> SoakReport:
    """Serve a fresh chaos mock, load it, and judge: the whole soak.

    With ``--workers N`` each worker process has its own image cache, so the warm-up
    downloads N times the bytes (the jobs live in the shared --store, counted once).
    ``watch`` reports on what lies beside the server (``bench.soak_shared``: Redis and
    the ``ipmock worker`` processes) at each sample.
    """
    workers = server_workers(options.server_args)
    if workers > 1:
        options = replace(options, warmup_image_bytes=options.warmup_image_bytes * workers)
    args = ["--chaos", "--seed", str(options.seed), "--log-level", "warning", *options.server_args]
    log(
        f"soak: ipmock serve {' '.join(args)}; {options.concurrency} clients for "
        f"{options.duration:g} s"
    )
    with running_server(*args, echo=options.echo_server_errors) as url:
        pid = server_pid(url)
        log(f"soak: server {url}, pid {pid}")
        run = asyncio.run(_load(url, pid, options, log, watch))
        alive = _is_running(pid)
    figures = memory_figures(run.samples, options, run.warmup)
    failures = judge(run.load.tally, figures, options)
    if not alive:
        failures.append("the server process ended during the soak")
    return SoakReport(
        options,
        url,
        pid,
        run.load_seconds,
        run.drain_seconds,
        run.load.tally,
        run.samples,
        figures,
        failures,
    )


def format_report(report: SoakReport) -> str:
    tally, f, lines = report.tally, report.figures, []
    lines.append(
        f"\nsoak of {report.server_url} (pid {report.server_pid}): "
        f"{report.load_seconds:.0f} s of load, {report.drain_seconds:.1f} s to drain, "
        f"{report.options.concurrency} clients, seed {report.options.seed}"
    )
    lines.append("\nrequests by endpoint and status")
    for endpoint, counts in sorted(tally.requests.items()):
        shown = "  ".join(f"{s}: {n}" for s, n in sorted(counts.items()))
        lines.append(f"  {endpoint:<28} {sum(counts.values()):>8}   {shown}")
    lines.append("\nclient-side errors by kind (each retried)")
    if not tally.client_errors:
        lines.append("  none")
    for endpoint, counts in sorted(tally.client_errors.items()):
        lines.append(f"  {endpoint:<28} {sum(counts.values()):>8}")
        lines.extend(f"      {n:>8}  {kind}" for kind, n in sorted(counts.items()))
    jobs = tally.jobs
    lines.append("\njobs")
    lines.append(
        f"  submitted {jobs['submitted']}  accepted {jobs['accepted']}  refused {jobs['refused']}"
        f"  answer lost {jobs['lost']}"
    )
    lines.append(
        f"  SUCCESS {jobs['success']}  FAILURE {jobs['failure']}  expired {jobs['expired']}  "
        f"vanished {jobs['vanished']}  wrong {jobs['wrong']}  not final {jobs['not_final']}"
    )
    lines.append(
        f"  images downloaded {tally.images['downloaded']} "
        f"({tally.image_bytes / MB:.1f} MB), 304 {tally.images['not_modified']}, "
        f"given up {tally.images['given_up']}"
    )
    lines.append(f"\nmemory and FDs of the server's process tree (warm-up: {f.warmup})")
    lines.append(
        f"  RSS MB   idle {f.rss_idle_mb}  start {f.rss_start_mb}  end {f.rss_end_mb}  "
        f"max {f.rss_max_mb}  growth {f.rss_growth_mb} (allowed {f.rss_allowed_growth_mb})  "
        f"slope {f.rss_slope_mb_per_min:+.3f} MB/min"
    )
    lines.append(
        f"  FDs      idle {f.fds_idle}  start {f.fds_start}  end {f.fds_end}  max {f.fds_max}  "
        f"after the load {f.fds_after}"
    )
    lines.append(f"  CPU s    server {f.server_cpu_s}  soak {f.client_cpu_s} (during the load)")
    for title, items in (
        ("unexpected 5xx", tally.unexpected_5xx),
        ("wrong answers", tally.wrong_answers),
        ("jobs not final", tally.not_final),
        ("client crashes", tally.crashes),
    ):
        if items:
            lines.append(f"\n{title}:")
            lines.extend(f"  {item}" for item in items[:20])
    lines.append(
        "\nsoak: " + ("PASSED" if report.passed else "FAILED: " + "; ".join(report.failures))
    )
    return "\n".join(lines)


def exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds, so the server is stopped too


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    trailing: list[str] = []
    if "--" in argv:
        trailing = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.splitlines()[0] if __doc__ else None
    )
    defaults = SoakOptions()
    parser.add_argument(
        "--duration", type=float, default=defaults.duration, help="seconds of load (600)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=defaults.concurrency,
        help="concurrent clients, 1 to 256 (32)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="chaos and load seed (7)")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an extra `ipmock serve` argument (repeatable; write --server-arg=--workers); "
        "everything after a bare -- is passed too",
    )
    parser.add_argument(
        "--job-bound",
        type=float,
        default=defaults.job_bound,
        help="seconds a job may take to become final (120)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=defaults.poll_interval,
        help="seconds between polls of a job (0.2)",
    )
    parser.add_argument(
        "--sample-every",
        type=float,
        default=defaults.sample_every,
        help="seconds between RSS/FD samples (5)",
    )
    parser.add_argument(
        "--warmup-jobs",
        type=int,
        default=defaults.warmup_jobs,
        help="jobs made before the load is measured: the memory store's bound (10000)",
    )
    parser.add_argument(
        "--warmup-image-mb",
        type=float,
        default=defaults.warmup_image_bytes / MB,
        help="MB of images downloaded before the load is measured: the image cache's bound (64)",
    )
    parser.add_argument(
        "--warmup-timeout",
        type=float,
        default=defaults.warmup_timeout,
        help="seconds the warm-up may take at most (600)",
    )
    parser.add_argument(
        "--rss-tolerance-mb",
        type=float,
        default=defaults.rss_tolerance_mb,
        help="RSS growth allowed from the start of the load to its end: the larger of this "
        "(20) and --rss-tolerance-fraction of the start figure (0.10)",
    )
    parser.add_argument(
        "--rss-tolerance-fraction", type=float, default=defaults.rss_tolerance_fraction
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)
    if not 1 <= args.concurrency <= 256:
        parser.error("--concurrency must be from 1 to 256")
    if args.duration <= 0 or args.job_bound <= 0 or not 1 <= args.sample_every <= 60:
        parser.error("--duration and --job-bound must be positive, --sample-every 1 to 60")
    options = SoakOptions(
        duration=args.duration,
        concurrency=args.concurrency,
        seed=args.seed,
        server_args=(*args.server_arg, *trailing),
        job_bound=args.job_bound,
        poll_interval=args.poll_interval,
        sample_every=args.sample_every,
        warmup_jobs=args.warmup_jobs,
        warmup_image_bytes=int(args.warmup_image_mb * MB),
        warmup_timeout=args.warmup_timeout,
        rss_tolerance_mb=args.rss_tolerance_mb,
        rss_tolerance_fraction=args.rss_tolerance_fraction,
    )
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        report = run_soak(options)
    except ServerDidNotStart as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return 0 if report.passed else 1
