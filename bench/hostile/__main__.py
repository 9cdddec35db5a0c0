"""The hostile fuzz at full size against a fresh `ipmock serve`, with its report printed.

.venv/bin/python -m bench.hostile [--count N] [--seed N] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bench.hostile.run import run_hostile
from bench.support.procfs import listening_pid
from contract_tests.server import running_server


class _ServerLog:
    """Stdout, less the server lines running_server(echo=True) relays: errors are counted."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tracebacks = 0
        self.errors: Counter[str] = Counter()
        self.partial = ""  # print() writes a line and its newline in two calls

    def write(self, text: str) -> int:
        *lines, self.partial = (self.partial + text).split("\n")
        kept = []
        for line in lines:
            if not line.startswith("  server: "):
                kept.append(line + "\n")
            elif "Traceback" in line:
                self.tracebacks += 1
            elif "ERROR" in line:
                self.errors[line.removeprefix("  server: ").strip()] += 1
        self.out.write("".join(kept))
        return len(text)

    def flush(self) -> None:
        self.out.flush()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hostile",
        description="Run bench.hostile.run_hostile against a fresh ipmock serve on "
        "127.0.0.1 and print the report; exit 1 on a finding or an unhealthy server after.",
    )
    parser.add_argument("--count", type=int, default=10_000, help="requests, at least")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument("--concurrency", type=int, default=8, help="raw connections at once")
    parser.add_argument("--schemathesis-share", type=float, default=0.3)
    parser.add_argument("--api-key", default="hostile-fuzz")
    parser.add_argument(
        "--server-arg", action="append", default=[], help="an argument for ipmock serve (repeat)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    log = _ServerLog(sys.stdout)
    started = time.monotonic()
    with contextlib.redirect_stdout(log), running_server(*args.server_arg, echo=True) as url:
        pid = listening_pid(url)
        print(
            f"ipmock serve at {url} (pid {pid}); {args.count} hostile requests, seed {args.seed}",
            flush=True,
        )
        report = run_hostile(
            url,
            count=args.count,
            seed=args.seed,
            api_key=args.api_key,
            pid=pid,
            timeout=args.timeout,
            schemathesis_share=args.schemathesis_share,
            concurrency=args.concurrency,
        )
    print(report.text())
    print(f"  server log: {log.tracebacks} traceback(s)")
    for line, n in log.errors.most_common(10):
        print(f"    {n} x {line}")
    print(f"  total, with server start and stop: {time.monotonic() - started:.1f} s")
    if args.json:
        document: dict[str, Any] = {
            **report.to_json(),
            "server_tracebacks": log.tracebacks,
            "server_errors": dict(log.errors),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "parameters": {k: str(v) for k, v in vars(args).items()},
        }
        args.json.write_text(json.dumps(document, indent=2, default=str))
        print(f"  JSON report: {args.json}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
