"""Submit and poll throughput and latency of a real ``ipmock serve``, against a baseline.

Starts ``ipmock serve`` (its own HTTP server) and a bare Starlette app
(bench/baseline_app.py) under uvicorn on 127.0.0.1, both on uvloop and httptools, drives
each with ``wrk`` in another process, and prints req/s, p50 and p99 per workload with
ipmock's ratio to the baseline measured in the same run.
Also times one image download: the first (rendered) and a repeat (cached).

    .venv/bin/python -m bench.serve_throughput [--duration S] [--connections N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.support.bodies import SUBMIT_BODY
from bench.support.processes import free_ports, served
from contract_tests.server import running_server
from mock_server.contract import STATUS_PATH, SUBMIT_PATH

BENCH = Path(__file__).resolve().parent
SUBMIT_KEY = "bench"  # an ordinary key: the default scenario (PENDING, then SUCCESS)
POLL_KEY = "test_success"  # a job is readable only with the key that created it
# No in-flight cap: the submit workload never polls its jobs (they stay PENDING).
IPMOCK_ARGS = ("--log-level", "warning", "--max-in-flight", "0")


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx_3xx: int
    socket_errors: int


@dataclass(frozen=True)
class Row:
    workload: str
    server: str
    result: WrkResult
    ratio: float  # this server's req/s over the baseline's for the same workload


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    """A wrk duration such as ``850.12us`` or ``1.02s``, in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise RuntimeError(f"wrk printed a latency {text!r} this script cannot read")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """The figures of one ``wrk --latency`` run, from its text report."""

    def find(pattern: str) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"no {pattern!r} in wrk's output:\n{output}")
        return match.group(1)

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: (.*)$", output, re.MULTILINE)
    return WrkResult(
        requests_per_s=float(find(r"^Requests/sec:\s+([\d.]+)")),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)")),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)")),
        requests=int(find(r"^\s+(\d+) requests in")),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in re.findall(r"\d+", sockets.group(1))) if sockets else 0,
    )


def baseline_command(port: int) -> list[str]:
    # As `ipmock serve` at log level warning runs: uvloop and httptools when installed,
    # no access log, no Server header.
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(BENCH),
        "baseline_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--no-server-header",
    ]


def run_wrk(
    url: str, method: str, key: str, body: Path | None, args: argparse.Namespace, duration: int
) -> WrkResult:
    command = [
        "wrk",
        "--latency",
        "-t",
        str(args.threads),
        "-c",
        str(args.connections),
        "-d",
        f"{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / "request.lua"),
        url,
        "--",
        method,
        key,
        *([str(body)] if body else []),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


def measure(
    url: str, method: str, key: str, body: Path | None, args: argparse.Namespace
) -> WrkResult:
    if args.warmup > 0:
        run_wrk(url, method, key, body, args, args.warmup)
    result = run_wrk(url, method, key, body, args, args.duration)
    if result.non_2xx_3xx or result.socket_errors:
        print(
            f"warning: {method} {url}: {result.non_2xx_3xx} non-2xx/3xx answers, "
            f"{result.socket_errors} socket errors",
            file=sys.stderr,
        )
    return result


def compare(
    workload: str,
    servers: dict[str, str],
    method: str,
    path: str,
    key: str,
    body: Path | None,
    args: argparse.Namespace,
) -> list[Row]:
    """One workload against every server, each with its ratio to the baseline."""
    results = {
        name: measure(base + path, method, key, body, args) for name, base in servers.items()
    }
    baseline_rps = results["baseline"].requests_per_s
    return [Row(workload, name, r, r.requests_per_s / baseline_rps) for name, r in results.items()]


def create_job(base: str, key: str) -> dict[str, Any]:
    answer = httpx.post(base + SUBMIT_PATH, json=SUBMIT_BODY, headers={"API-Key": key})
    if answer.status_code not in (200, 202):
        raise RuntimeError(f"submit answered {answer.status_code}: {answer.text}")
    job: dict[str, Any] = answer.json()
    return job


def image_download_ms(base: str, jobs: int = 3, repeats: int = 20) -> dict[str, float]:
    """Median ms of a first download of a 1024x1024 image (rendered) and of a repeat (cached)."""
    first: list[float] = []
    cached: list[float] = []
    with httpx.Client(timeout=60.0) as client:
        for _ in range(jobs):
            url = create_job(base, POLL_KEY)["download_urls"][0]
            for attempt in range(1 + repeats):
                started = time.perf_counter()
                answer = client.get(url)
                (cached if attempt else first).append((time.perf_counter() - started) * 1000)
                answer.raise_for_status()
    return {"first_ms": statistics.median(first), "cached_ms": statistics.median(cached)}


def machine() -> dict[str, Any]:
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": (wrk.stdout + wrk.stderr).splitlines()[0],
    }


def print_report(
    info: dict[str, Any], params: dict[str, Any], rows: list[Row], images: dict[str, float] | None
) -> None:
    print(f"\nmachine: nproc={info['nproc']}  {info['cpu']}  Python {info['python']}")
    print(f"         {info['platform']}  {info['wrk']}")
    print("params:  " + "  ".join(f"{k}={v}" for k, v in params.items()))
    header = f"{'workload':<14}{'server':<10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
    header += f"{'vs baseline':>13}"
    print("\n" + header + "\n" + "-" * len(header))
    for row in rows:
        r = row.result
        flag = "  (errors!)" if r.non_2xx_3xx or r.socket_errors else ""
        print(
            f"{row.workload:<14}{row.server:<10}{r.requests_per_s:>10.0f}{r.p50_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{row.ratio:>12.2f}x{flag}"
        )
    if images:
        print(
            f"\nimage download 1024x1024 (median, one client): first {images['first_ms']:.1f} ms"
            f" (rendered), repeat {images['cached_ms']:.2f} ms (cached)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=10, help="seconds per workload (10)")
    parser.add_argument("--connections", type=int, default=16, help="open connections (16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured seconds first (1)")
    parser.add_argument("--no-images", action="store_true", help="skip the image download timing")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0:
        parser.error("--duration must be at least 1 and --warmup at least 0 (whole seconds)")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    if shutil.which("wrk") is None:
        print(
            "bench: wrk is not installed; install it with `apt-get install -y wrk` (Debian/"
            "Ubuntu) or `brew install wrk` (macOS)",
            file=sys.stderr,
        )
        return 2

    params = {k: vars(args)[k] for k in ("duration", "warmup", "connections", "threads")}
    images: dict[str, float] | None = None
    with ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        body = Path(scratch) / "submit.json"
        body.write_text(json.dumps(SUBMIT_BODY))
        [port] = free_ports(1)
        servers = {
            "ipmock": stack.enter_context(running_server(*IPMOCK_ARGS)),
            "baseline": stack.enter_context(served("baseline", baseline_command(port), port))[0],
        }
        rows = compare("submit (POST)", servers, "POST", SUBMIT_PATH, SUBMIT_KEY, body, args)
        status_path = STATUS_PATH.format(id=create_job(servers["ipmock"], POLL_KEY)["id"])
        rows += compare("poll (GET)", servers, "GET", status_path, POLL_KEY, None, args)
        if not args.no_images:
            images = image_download_ms(servers["ipmock"])

    info = machine()
    print_report(info, params, rows, images)
    if args.json:
        figures = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": info,
            "params": params,
            "results": [
                {"workload": r.workload, "server": r.server, "ratio": r.ratio, **asdict(r.result)}
                for r in rows
            ],
            "image_download": images,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if any(r.result.non_2xx_3xx or r.result.socket_errors for r in rows):
        print("bench: some requests failed; the figures above are not valid", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
