"""ipmock side by side with its peers: Prism and WireMock, same workload, same load generator.

Starts `ipmock serve`, Prism (`prism mock` on the bundled OpenAPI document, request
validation on, dynamic off) and WireMock standalone (stub mappings generated here, the
submit body matched against the request JSON Schema, draft 2020-12) on 127.0.0.1, checks
that each answers the workload correctly and refuses invalid bodies, then drives each in
turn with the same `wrk` and bench/request.lua (the others idle) and prints req/s, p50,
p99 and non-2xx answers, with ipmock's ratio to the best peer and the goal check.

    .venv/bin/python -m bench.peers [--duration S] [--warmup S] [--settle S] [--rounds N]
                                     [--only ipmock,prism,wiremock] [--json PATH]

Prism and WireMock come from the npm registry, pinned in bench/peers/package.json and
package-lock.json, installed into bench/.peers/ (ignored by git) on the first run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.peers.checks import Checks, check_server, create_ipmock_job
from bench.peers.inputs import PEER_JOB_ID, compact, prism_document, wiremock_mappings
from bench.peers.install import (
    PEERS_HOME,
    Missing,
    first_line,
    install_peers,
    package_version,
    require,
    wiremock_jar,
)
from bench.peers.load import GOAL_RATIO, Row, Run, Verdict, make_row, measure, verdicts
from bench.peers.servers import (
    CEILING,
    JIT_WARMUP_S,
    PEERS,
    READY_TIMEOUT_S,
    SERVERS,
    WIREMOCK_CONTAINER_THREADS,
    Server,
    ceiling_server,
    ipmock_server,
    prism_server,
    wiremock_server,
)
from bench.serve_throughput import IPMOCK_ARGS, POLL_KEY, SUBMIT_KEY, machine
from bench.support import procfs
from bench.support.bodies import SUBMIT_BODY
from bench.support.processes import free_ports, served
from contract_tests.server import running_server
from mock_server import contract
from mock_server.contract import STATUS_PATH, SUBMIT_PATH


def print_checks(all_checks: Sequence[Checks]) -> None:
    names = [c.server for c in all_checks]
    print("\nchecks before measuring (HTTP status; ok = expected status and schema-valid body)")
    header = f"{'check':<40}" + "".join(f"{n:>12}" for n in names)
    print(header + "\n" + "-" * len(header))
    for i, check in enumerate(all_checks[0].results):
        cells = []
        for checks in all_checks:
            c = checks.results[i]
            cells.append(f"{c.status or 'none'} {'ok' if c.ok else 'WRONG'}")
        print(f"{check.name:<40}" + "".join(f"{cell:>12}" for cell in cells))
    for checks in all_checks:
        for c in checks.results:
            if not c.ok:
                print(f"  {checks.server}: {c.name}: {c.detail}")


def print_report(
    info: Mapping[str, Any],
    params: Mapping[str, Any],
    servers: Mapping[str, str],
    rows: Sequence[Row],
    verdict_list: Sequence[Verdict],
    unfair: Sequence[str],
) -> None:
    print(f"\nmachine: nproc={info['nproc']}  {info['cpu']}  Python {info['python']}")
    print(f"         {info['platform']}  {info['wrk']}")
    print("params:  " + "  ".join(f"{k}={v}" for k, v in params.items()))
    for name, settings in servers.items():
        print(f"  {name:<9}{settings}")
    header = f"{'workload':<15}{'server':<10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"
    header += f"{'CPU us/req':>12}{'cores':>7}"
    print("\n" + header + "\n" + "-" * len(header))
    for row in rows:
        r = row.result
        flags = []
        if r.socket_errors:
            flags.append(f"{r.socket_errors} socket errors")
        if row.server in unfair:
            flags.append("does not validate")
        if row.rounds:
            flags.append("rounds " + "/".join(f"{x:.0f}" for x in row.rounds))
        flag = f"  ({'; '.join(flags)})" if flags else ""
        cpu = "-" if row.cpu_us_per_request is None else f"{row.cpu_us_per_request:.0f}"
        cores = "-" if row.cores is None else f"{row.cores:.2f}"
        print(
            f"{row.workload:<15}{row.server:<10}{r.requests_per_s:>9.0f}{r.p50_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{r.non_2xx_3xx:>9}{cpu:>12}{cores:>7}{flag}"
        )
    if not verdict_list:
        return
    print(
        f"\ngoal: ipmock >= {GOAL_RATIO:.1f}x the best peer's req/s, and p99 no higher than "
        "the lowest peer p99"
    )
    for v in verdict_list:
        here = {r.server: r.result for r in rows if r.workload == v.workload}
        mine = here["ipmock"]
        print(
            f"  {v.workload:<14} req/s {v.rps_ratio:.2f}x {v.best_rps_peer} "
            f"({mine.requests_per_s:.0f} vs {here[v.best_rps_peer].requests_per_s:.0f}); "
            f"p99 {mine.p99_ms:.2f} vs {here[v.best_p99_peer].p99_ms:.2f} ms "
            f"({v.best_p99_peer}, {v.p99_ratio:.2f}x): {'MET' if v.met else 'NOT MET'}"
        )
        if CEILING in here:
            goal = GOAL_RATIO * here[v.best_rps_peer].requests_per_s
            ceiling = here[CEILING].requests_per_s
            print(
                f"  {'':<14} the CPython ceiling answers {ceiling:.0f} req/s, "
                f"{ceiling / goal:.2f}x the goal's {goal:.0f}"
            )


def _parse_only(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"--only takes a comma-separated subset of {','.join(SERVERS)}, got {text!r}"
        )
    return [n for n in SERVERS if n in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--duration", type=int, default=10, help="measured seconds (10)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=10,
        help="unmeasured seconds before each measured run (10)",
    )
    parser.add_argument(
        "--settle",
        type=int,
        default=60,
        help="more unmeasured seconds before each server's first run of a workload, for "
        "WireMock's JIT: its submit rate is still climbing after 60 s of load (60)",
    )
    parser.add_argument("--connections", type=int, default=16, help="open connections (16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every server this many times, alternating; report the median round (1)",
    )
    parser.add_argument(
        "--only",
        type=_parse_only,
        default=list(SERVERS),
        metavar="NAMES",
        help="comma-separated subset of ipmock,prism,wiremock,ceiling (all)",
    )
    parser.add_argument(
        "--ceiling-processes",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes of bench/ceiling_server.py (the CPU count)",
    )
    parser.add_argument(
        "--wiremock-threads",
        type=int,
        default=WIREMOCK_CONTAINER_THREADS,
        metavar="N",
        help="WireMock --container-threads (8; 0 keeps WireMock's default, 25; Jetty needs 7 "
        "or more on 2 cores)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    return parser


def _stop_on_sigterm() -> None:
    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through every `served` block

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.settle < 0 or args.rounds < 1:
        parser.error("--duration and --rounds must be at least 1, --warmup and --settle 0+")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    _stop_on_sigterm()
    selected: list[str] = args.only
    try:
        require("wrk", "the load generator", "apt-get install -y wrk (brew install wrk)")
        java = "java"
        if "wiremock" in selected:
            java = require(
                "java",
                "WireMock runs on it",
                "install Java 17+ (apt-get install -y "
                "openjdk-17-jre-headless), or leave wiremock out with --only",
            )
        if "prism" in selected:
            require(
                "node",
                "Prism runs on it",
                "install Node.js 18+ (apt-get install -y nodejs npm), or use --only",
            )
        if set(selected) & set(PEERS):
            install_peers()
    except Missing as exc:
        print(f"peers: {exc}", file=sys.stderr)
        return 2
    try:
        return _run(args, selected, java)
    except KeyboardInterrupt:
        print("\npeers: interrupted; every server was stopped", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, selected: list[str], java: str) -> int:
    names = ("duration", "warmup", "settle", "connections", "threads", "rounds")
    params = {k: vars(args)[k] for k in names}
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ipmock-peers-")))
        body_file = scratch / "submit.json"
        body_file.write_text(compact(SUBMIT_BODY))
        ports = dict(zip(SERVERS, free_ports(len(SERVERS)), strict=True))
        makers: dict[str, Callable[[], Server]] = {"ipmock": ipmock_server}
        if "prism" in selected:
            base = f"http://127.0.0.1:{ports['prism']}"
            document = scratch / "openapi.json"
            document.write_text(json.dumps(prism_document(contract.openapi(), base), indent=1))
            makers["prism"] = lambda: prism_server(ports["prism"], document)
        if "wiremock" in selected:
            base = f"http://127.0.0.1:{ports['wiremock']}"
            root = scratch / "wiremock"
            (root / "mappings").mkdir(parents=True)
            (root / "__files").mkdir()
            mappings = wiremock_mappings(contract.request_schema(), base)
            (root / "mappings" / "ipmock-peers.json").write_text(json.dumps(mappings, indent=1))
            makers["wiremock"] = lambda: wiremock_server(
                ports["wiremock"], root, args.wiremock_threads or None, java
            )
        makers[CEILING] = lambda: ceiling_server(ports[CEILING], args.ceiling_processes)
        servers = {name: makers[name]() for name in selected}
        bases: dict[str, str] = {}
        pids: dict[str, int | None] = {}
        for name, server in servers.items():
            where = f"127.0.0.1:{server.port}" if server.port else "127.0.0.1"
            print(f"peers: starting {name} on {where} ...", flush=True)
            if name == "ipmock":
                bases[name] = stack.enter_context(
                    running_server(
                        *IPMOCK_ARGS,
                        base_env=server.env,
                        new_session=True,
                        start_timeout=READY_TIMEOUT_S,
                    )
                )
                pid = procfs.listening_pid(bases[name])  # its session's leader or a worker
                pids[name] = None if pid is None else os.getpgid(pid)
            else:
                bases[name], pids[name] = stack.enter_context(
                    served(
                        name, server.command, server.port, server.cwd, server.env, READY_TIMEOUT_S
                    )
                )

        # Checks. ipmock's poll job is made now for the check, and again after its submit
        # load (its store keeps only the newest jobs, and the load makes many).
        poll_paths = {name: STATUS_PATH.format(id=PEER_JOB_ID) for name in selected}
        if "ipmock" in selected:
            poll_paths["ipmock"] = STATUS_PATH.format(id=create_ipmock_job(bases["ipmock"]))
        all_checks = [
            check_server(name, bases[name], servers[name].submit_query, poll_paths[name])
            for name in selected
        ]
        print_checks(all_checks)
        wrong = [c.server for c in all_checks if not c.answers_correctly]
        if wrong:
            print(
                f"peers: {', '.join(wrong)} answered the workload wrongly; not measuring",
                file=sys.stderr,
            )
            return 1
        unfair = [c.server for c in all_checks if not c.validates and c.server != "ipmock"]

        workloads = (
            ("submit (POST)", "POST", SUBMIT_KEY, body_file),
            ("poll (GET)", "GET", POLL_KEY, None),
        )
        measured: dict[tuple[str, str], list[Run]] = {}
        for workload, method, key, body in workloads:
            if method == "GET" and "ipmock" in selected:
                poll_paths["ipmock"] = STATUS_PATH.format(id=create_ipmock_job(bases["ipmock"]))
            for round_ in range(args.rounds):
                for name in selected:
                    path = (
                        SUBMIT_PATH + servers[name].submit_query
                        if method == "POST"
                        else (poll_paths[name])
                    )
                    url = bases[name] + path
                    note = f" round {round_ + 1}/{args.rounds}" if args.rounds > 1 else ""
                    print(f"peers: {workload} -> {name}{note} ...", flush=True)
                    warmup = args.warmup + (args.settle if round_ == 0 else 0)
                    run = measure(url, method, key, body, args, pids[name], warmup)
                    measured.setdefault((workload, name), []).append(run)

    # every server is stopped here
    rows = [make_row(workload, name, runs) for (workload, name), runs in measured.items()]
    fair = [name for name in selected if name in PEERS and name not in unfair]
    verdict_list = verdicts(rows, fair)
    info = machine()
    versions = peer_versions(selected, java)
    info["peers"] = versions
    settings = {name: f"{s.settings} [{versions.get(name, '')}]" for name, s in servers.items()}
    print_report(info, params, settings, rows, verdict_list, unfair)
    if unfair:
        print(f"\nnot counted as peers (an invalid body got a 2xx): {', '.join(unfair)}")
    cold = "wiremock" in selected and args.settle + args.warmup < JIT_WARMUP_S
    if cold:
        print(
            f"\nnote: WireMock had less than {JIT_WARMUP_S} s of load before its first "
            "measured run: these are a cold JIT's figures, too low; not a fair comparison"
        )
    if args.json:
        figures = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": info,
            "params": params,
            "servers": {
                name: {"settings": s.settings, "command": s.command} for name, s in servers.items()
            },
            "checks": {
                c.server: [{"check": x.name, "status": x.status, "ok": x.ok} for x in c.results]
                for c in all_checks
            },
            "results": [
                {
                    "workload": r.workload,
                    "server": r.server,
                    **asdict(r.result),
                    "rounds_rps": list(r.rounds),
                    "cpu_us_per_request": r.cpu_us_per_request,
                    "server_cores": r.cores,
                }
                for r in rows
            ],
            "cold_jit": cold,
            "goal": {
                "ratio": GOAL_RATIO,
                "verdicts": [asdict(v) for v in verdict_list],
                "met": bool(verdict_list) and all(v.met for v in verdict_list),
            },
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if any(r.result.non_2xx_3xx or r.result.socket_errors for r in rows):
        print("peers: some requests failed; the figures above are not valid", file=sys.stderr)
        return 1
    return 0


def peer_versions(selected: Sequence[str], java: str) -> dict[str, str]:
    versions: dict[str, str] = {}
    if "ipmock" in selected:
        versions["ipmock"] = first_line(
            [sys.executable, "-c", "import importlib.metadata as m; print(m.version('ipmock'))"]
        )
    if "prism" in selected:
        node = first_line(["node", "--version"])
        prism = package_version(PEERS_HOME, "@stoplight/prism-cli")
        versions["prism"] = f"@stoplight/prism-cli {prism}, node {node}"
    if "wiremock" in selected:
        jar = wiremock_jar()
        versions["wiremock"] = f"{jar.name if jar else '?'}, {first_line([java, '-version'])}"
    return versions
