"""The soak of the shared mode: bench.soak's load and judge against a real Redis.

Two modes, each on a fresh ``redis-server --appendonly yes`` on 127.0.0.1 (in a temporary
folder, stopped at the end):

- ``redis``: ``ipmock serve --chaos --store redis://... --workers 2``;
- ``workers``: ``ipmock serve --chaos --store redis://... --backend workers`` with
  ``ipmock worker`` processes (placeholder images) taking the ``generate`` jobs, one of
  them killed (SIGKILL) and started again every ``--kill-every`` seconds of the load.

Besides bench.soak's judgement (every job final, no 5xx but the mock's own faults, no
submit unanswered, no job answering a second outcome when polled again, RSS and FDs of
the server's processes flat from a baseline taken once the stores, caches and Redis pools
are warm, and FDs under their bound), it reports Redis's own memory (INFO used_memory)
and clients, and the ``ipmock worker`` processes' RSS and FDs.

    .venv/bin/python -m bench.soak_shared redis [--duration 600] [--json PATH]
    .venv/bin/python -m bench.soak_shared workers [--duration 600] [--kill-every 60]
        [--gpu-workers 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import redis

from bench.soak.options import MB, SoakOptions, SoakReport
from bench.soak.run import exit_on_sigterm, format_report, print_now, run_soak
from bench.support import procfs
from contract_tests.server import ServerDidNotStart

ROOT = Path(__file__).resolve().parent.parent

MODES = ("redis", "workers")
WARMUP_SPREAD = 1.25
"""With ``--workers N`` each process has its own image cache, and the kernel does not hand
the warm-up's downloads out evenly: it downloads a quarter more, so every cache is full."""
WORKERS_CONFIG = """\
# The chaos mix of bench/soak_shared.py's workers mode: most jobs go to `ipmock worker`.
[chaos]
weights = { generate = 6, success = 2, pending-then-success = 2, pending-then-failure = 1, \
busy = 1, rate-limited = 1 }
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisProcess:
    """A redis-server on 127.0.0.1 with its append-only file in ``folder``."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerDidNotStart("redis-server is not installed (apt-get install redis-server)")
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(folder),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=5)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    message = f"redis-server on port {self.port} did not start"
                    raise ServerDidNotStart(message) from None
                time.sleep(0.05)

    def figures(self) -> dict[str, float]:
        """Redis's own memory (INFO used_memory, MB) and its connected clients."""
        try:
            memory: Any = self.client.info("memory")
            clients: Any = self.client.info("clients")
        except redis.RedisError:
            return {}
        return {
            "redis_used_mb": round(memory["used_memory"] / MB, 2),
            "redis_clients": clients["connected_clients"],
        }

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class WorkerFleet:
    """``ipmock worker`` processes on one Redis; ``kill_one`` SIGKILLs the next in turn and
    starts another in its place, under the same name (a restarted GPU worker)."""

    store: str
    count: int
    lease: float
    log_folder: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: int = 0
    ended: list[str] = field(default_factory=list)
    """Workers that ended without being killed (a crash): each a finding."""

    def start(self) -> None:
        self.processes = [self._spawn(i) for i in range(self.count)]

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        log = (self.log_folder / f"worker-{index}.log").open("ab")
        command = [
            sys.executable,
            "-m",
            "mock_server.cli",
            "worker",
            "--store",
            self.store,
            "--lease",
            f"{self.lease:g}",
            "--name",
            f"soak-worker-{index}",
            "--log-level",
            "warning",
        ]
        with log:
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    def kill_one(self) -> int:
        """SIGKILL the next worker in turn and start it again; its new pid."""
        index = self.kills % self.count
        old = self.processes[index]
        old.kill()
        old.wait()
        self.processes[index] = self._spawn(index)
        self.kills += 1
        return self.processes[index].pid

    def figures(self) -> dict[str, float]:
        """The workers' RSS (MB) and FDs, summed; and any that ended on their own."""
        for index, process in enumerate(self.processes):
            if process.poll() is not None:
                self.ended.append(f"worker {index} (pid {process.pid}) ended: {process.poll()}")
                self.processes[index] = self._spawn(index)
        pids = [p.pid for p in self.processes]
        return {
            "workers_rss_mb": round(sum(procfs.rss_kb(p) or 0 for p in pids) / 1024, 2),
            "workers_fds": sum(procfs.fd_count(p) or 0 for p in pids),
            "worker_kills": self.kills,
        }

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class SharedOptions:
    mode: str = "redis"
    soak: SoakOptions = field(default_factory=SoakOptions)
    server_workers: int = 2
    """``--workers`` of ``ipmock serve`` in the redis mode (the workers mode runs one)."""
    gpu_workers: int = 2
    """``ipmock worker`` processes in the workers mode."""
    kill_every: float = 60.0
    """Seconds of load between two SIGKILLs of a worker (workers mode)."""
    lease: float = 10.0
    """The workers' ``--lease``: a killed worker's job is taken over this long after."""


@dataclass
class SharedReport:
    options: SharedOptions
    soak: SoakReport
    redis_end: dict[str, float]
    """Redis's figures at the last sample of the load."""
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            **self.soak.to_json(),
            "mode": self.options.mode,
            "passed": self.passed,
            "failures": self.failures,
            "redis_end": self.redis_end,
            "kill_every": self.options.kill_every if self.options.mode == "workers" else None,
        }


def run_shared_soak(options: SharedOptions, log: Callable[[str], None] = print_now) -> SharedReport:
    """A fresh Redis, the mode's server (and workers), bench.soak's soak, the figures."""
    if options.mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {options.mode!r}")
    with tempfile.TemporaryDirectory(prefix="ipmock-soak-") as folder:
        store = RedisProcess(Path(folder))
        fleet: WorkerFleet | None = None
        try:
            args: tuple[str, ...] = ("--store", store.url)
            soak = options.soak
            if options.mode == "redis":
                args += ("--workers", str(options.server_workers))
                if options.server_workers > 1:  # the kernel spreads downloads unevenly
                    extra = int(soak.warmup_image_bytes * WARMUP_SPREAD)
                    soak = replace(soak, warmup_image_bytes=extra)
            else:
                config = Path(folder) / "workers.toml"
                config.write_text(WORKERS_CONFIG)
                args += ("--backend", "workers", "--config", str(config))
                fleet = WorkerFleet(store.url, options.gpu_workers, options.lease, Path(folder))
                fleet.start()
            soak = replace(soak, server_args=(*args, *soak.server_args))
            watch = _watcher(store, fleet, options.kill_every, log)
            report = run_soak(soak, log=log, watch=watch)
        finally:
            if fleet is not None:
                fleet.stop()
            store.stop()
    load = [s for s in report.samples if s.phase == "load"]
    redis_end = {k: v for k, v in (load[-1].watched if load else {}).items()}
    failures = list(report.failures)
    if fleet is not None:
        failures += fleet.ended
        if report.load_seconds >= options.kill_every and not fleet.kills:
            failures.append("no worker was killed during the load")
    return SharedReport(options, report, redis_end, failures)


def _watcher(
    store: RedisProcess,
    fleet: WorkerFleet | None,
    kill_every: float,
    log: Callable[[str], None],
) -> Callable[[str], dict[str, float]]:
    """The soak's watch: Redis's figures, the workers', and a worker killed every
    ``kill_every`` seconds of the load."""
    last_kill: list[float] = []

    def watch(phase: str) -> dict[str, float]:
        if fleet is not None and phase == "load":
            now = time.monotonic()
            if not last_kill:
                last_kill.append(now)
            elif now - last_kill[0] >= kill_every:
                last_kill[0] = now
                log(f"  SIGKILL a worker; started again as pid {fleet.kill_one()}")
        return {**store.figures(), **(fleet.figures() if fleet is not None else {})}

    return watch


def format_shared_report(report: SharedReport) -> str:
    figures, lines = report.soak.figures, [format_report(report.soak)]
    lines[0] = lines[0].rsplit("\nsoak: ", 1)[0]
    lines.append(
        f"\nmode {report.options.mode}; FDs once warm {figures.fds_warm}, bound {figures.fds_bound}"
    )
    lines.append("  per server process: pid  RSS MB start -> end  FDs start -> end")
    for pid, each in figures.by_process.items():
        lines.append(
            f"    {pid:>7}  {each['rss_start_mb']:7.1f} -> {each['rss_end_mb']:7.1f}  "
            f"{each['fds_start']:4.0f} -> {each['fds_end']:4.0f}"
        )
    shown = "  ".join(f"{k} {v:g}" for k, v in report.redis_end.items())
    lines.append(f"  at the end of the load: {shown}")
    verdict = "PASSED" if report.passed else "FAILED: " + "; ".join(report.failures)
    lines.append(f"\nsoak ({report.options.mode}): {verdict}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    defaults, soak = SharedOptions(), SoakOptions()
    parser.add_argument("mode", choices=MODES)
    parser.add_argument(
        "--duration", type=float, default=soak.duration, help="seconds of load (600)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=soak.concurrency,
        help="concurrent clients, 1 to 256 (32)",
    )
    parser.add_argument("--seed", type=int, default=soak.seed, help="chaos and load seed (7)")
    parser.add_argument(
        "--server-workers",
        type=int,
        default=defaults.server_workers,
        help="--workers of ipmock serve in the redis mode (2)",
    )
    parser.add_argument(
        "--gpu-workers",
        type=int,
        default=defaults.gpu_workers,
        help="ipmock worker processes in the workers mode (2)",
    )
    parser.add_argument(
        "--kill-every",
        type=float,
        default=defaults.kill_every,
        help="seconds between SIGKILLs of a worker (60)",
    )
    parser.add_argument(
        "--warmup-jobs",
        type=int,
        default=soak.warmup_jobs,
        help="jobs made before the load is measured (10000)",
    )
    parser.add_argument(
        "--warmup-image-mb",
        type=float,
        default=soak.warmup_image_bytes / MB,
        help="MB of images downloaded per server process first (64)",
    )
    parser.add_argument(
        "--warmup-timeout",
        type=float,
        default=soak.warmup_timeout,
        help="seconds the warm-up may take at most (600)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)
    if not 1 <= args.concurrency <= 256:
        parser.error("--concurrency must be from 1 to 256")
    if args.duration <= 0 or args.kill_every <= 0:
        parser.error("--duration and --kill-every must be positive")
    if args.server_workers < 1 or args.gpu_workers < 1:
        parser.error("--server-workers and --gpu-workers must be at least 1")
    options = SharedOptions(
        mode=args.mode,
        soak=replace(
            soak,
            duration=args.duration,
            concurrency=args.concurrency,
            seed=args.seed,
            warmup_jobs=args.warmup_jobs,
            warmup_image_bytes=int(args.warmup_image_mb * MB),
            warmup_timeout=args.warmup_timeout,
        ),
        server_workers=args.server_workers,
        gpu_workers=args.gpu_workers,
        kill_every=args.kill_every,
    )
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        report = run_shared_soak(options)
    except ServerDidNotStart as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    print(format_shared_report(report))
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
