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
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema

from bench.serve_throughput import IPMOCK_ARGS, POLL_KEY, SUBMIT_KEY, WrkResult, machine, parse_wrk
from bench.support import procfs
from bench.support.bodies import SUBMIT_BODY
from bench.support.processes import free_ports, served
from contract_tests.server import running_server
from mock_server import contract
from mock_server.contract import STATUS_PATH, SUBMIT_PATH

BENCH = Path(__file__).resolve().parent

PEERS_SOURCE = BENCH / "peers"  # package.json and package-lock.json (committed)
PEERS_HOME = BENCH / ".peers"  # where npm installs them (ignored by git)
SERVERS = ("ipmock", "prism", "wiremock", "ceiling")
PEERS = ("prism", "wiremock")
CEILING = "ceiling"
"""Not a peer: bench/ceiling_server.py, the submit's validation alone in bare CPython
(no framework, no state), the most any CPython design could do here."""
GOAL_RATIO = 1.5  # ipmock must do at least this many times the best peer's req/s
READY_TIMEOUT_S = 90.0  # a JVM or Prism on a busy 2-core machine starts slowly
JIT_WARMUP_S = 60  # seconds of load WireMock needs before its rate stops climbing
# WireMock's container threads (None: its default, 25). On 2 cores Jetty refuses fewer
# than 7; 8 did better than 25 here, in req/s and in CPU per request (bench/README.md).
WIREMOCK_CONTAINER_THREADS: int | None = 8
# The documented answers the peers give. The ids have the shape of ipmock's (24
# URL-safe characters) so that every server sends bodies of about the same size.
PEER_JOB_ID = "C9ZO0PRnx9lkJpBiKwEtMJu3"
PENDING_BODY: dict[str, Any] = {"status": "PENDING", "id": PEER_JOB_ID}
FAILURE_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    402: "insufficient_credits",
    404: "not_found",
    410: "expired",
    413: "payload_too_large",
    429: "rate_limited",
    500: "server_error",
    503: "busy",
}


def success_body(base: str, job_id: str = PEER_JOB_ID) -> dict[str, Any]:
    """The SUCCESS a poll answers, with one download URL on the server's own origin."""
    return {
        "status": "SUCCESS",
        "id": job_id,
        "download_urls": [f"{base}{contract.IMAGE_PREFIX}{job_id}/0.png"],
    }


def failure_body(status: int, error: str) -> dict[str, Any]:
    return {"status": "FAILURE", "error": error, "code": FAILURE_CODES[status]}


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# ---------------------------------------------------------------- the peers' inputs


def prism_document(openapi: Mapping[str, Any], base: str) -> dict[str, Any]:
    """The bundled OpenAPI document with an example on every JSON response.

    The schemas, and so Prism's request validation, are untouched. Without examples
    Prism in static mode builds each body from the schema (``"download_urls":
    ["string"]``, which breaks the pattern), so its answers would be neither the
    documented ones nor schema-valid, and slower to make.
    """
    doc = copy.deepcopy(dict(openapi))
    for path, item in doc["paths"].items():
        for operation in item.values():
            for code, response in operation.get("responses", {}).items():
                media = response.get("content", {}).get("application/json")
                if media is None or path == "/openapi.json":
                    continue
                status = int(code)
                if status == 202:
                    media["example"] = PENDING_BODY
                elif status == 200:
                    media["example"] = success_body(base)
                else:
                    media["example"] = failure_body(status, response["description"])
    return doc


def wiremock_mappings(request_schema: Mapping[str, Any], base: str) -> dict[str, Any]:
    """WireMock stub mappings for the submit and poll workloads (one mappings file).

    - submit: ``POST /sdxl/text2image/v1`` with an ``API-Key`` header and a body that
      ``matchesJsonSchema`` the request schema (draft 2020-12: WireMock 3's
      ``schemaVersion: V202012``) answers 202 with the documented PENDING body;
    - poll: ``GET /sdxl/text2image/v1/status/{id}`` with a key answers 200 SUCCESS;
    - no key: 401; any other submit (the schema refused it): 400 FAILURE. Both are
      ordinary stubs of lower priority, as a mock of this API would have them (without
      them WireMock answers 404 and computes a near-miss report).
    """
    key = {"API-Key": {"matches": ".+"}}
    no_key = {"API-Key": {"absent": True}}
    json_type = {"Content-Type": "application/json"}

    def answer(status: int, body: Any) -> dict[str, Any]:
        return {"status": status, "headers": json_type, "body": _compact(body)}

    return {
        "mappings": [
            {
                "name": "submit (valid body)",
                "priority": 1,
                "request": {
                    "method": "POST",
                    "urlPath": SUBMIT_PATH,
                    "headers": key,
                    "bodyPatterns": [
                        {
                            "matchesJsonSchema": _compact(request_schema),
                            "schemaVersion": "V202012",
                        }
                    ],
                },
                "response": answer(202, PENDING_BODY),
            },
            {
                "name": "poll",
                "priority": 1,
                "request": {"method": "GET", "urlPathTemplate": STATUS_PATH, "headers": key},
                "response": answer(200, success_body(base)),
            },
            *(
                {
                    "name": f"{method} without a key",
                    "priority": 5,
                    "request": {"method": method, "urlPathPattern": pattern, "headers": no_key},
                    "response": answer(401, failure_body(401, "missing API key")),
                }
                for method, pattern in (
                    ("POST", SUBMIT_PATH),
                    ("GET", SUBMIT_PATH + "/status/[^/]+"),
                )
            ),
            {
                "name": "submit (invalid body)",
                "priority": 10,
                "request": {"method": "POST", "urlPath": SUBMIT_PATH},
                "response": answer(400, failure_body(400, "invalid request")),
            },
        ]
    }


# ---------------------------------------------------------------- installing the peers


class Missing(Exception):
    """A tool the run needs is not installed; printed, exit status 2."""


def _require(tool: str, why: str, how: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise Missing(f"{tool} is not installed ({why}); {how}")
    return found


def prism_bin(home: Path = PEERS_HOME) -> Path:
    return home / "node_modules" / ".bin" / "prism"


def wiremock_jar(home: Path = PEERS_HOME) -> Path | None:
    jars = sorted((home / "node_modules" / "wiremock").glob("**/wiremock-standalone-*.jar"))
    return jars[0] if jars else None


def peers_installed(source: Path = PEERS_SOURCE, home: Path = PEERS_HOME) -> bool:
    """Whether bench/.peers holds exactly what bench/peers pins."""
    for name in ("package.json", "package-lock.json"):
        here, there = source / name, home / name
        if not there.is_file() or here.read_bytes() != there.read_bytes():
            return False
    return prism_bin(home).exists() and wiremock_jar(home) is not None


def install_peers(source: Path = PEERS_SOURCE, home: Path = PEERS_HOME) -> None:
    """``npm ci`` of the pinned peers into ``home``; nothing to do when already there."""
    if peers_installed(source, home):
        return
    npm = _require(
        "npm", "it installs Prism and WireMock", "install Node.js 18+ with npm (apt-get "
        "install -y nodejs npm), or run with --only ipmock"
    )  # fmt: skip
    home.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(source / name, home / name)
    print(f"peers: installing the pinned Prism and WireMock into {home} (npm ci) ...", flush=True)
    # --ignore-scripts: nothing here needs an install script (the WireMock package ships
    # its jar; one dependency's script only reports usage over the network).
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=home,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not peers_installed(source, home):
        raise RuntimeError(f"npm ci failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def _package_version(home: Path, package: str) -> str:
    manifest = home / "node_modules" / package / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def _first_line(command: Sequence[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


# ---------------------------------------------------------------- running the servers


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
        str(prism_bin()), "mock", str(document), "--host", "127.0.0.1", "--port", str(port),
        "--dynamic=false", "--errors=false", "--verboseLevel", "error",
    ]  # fmt: skip
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
        java, "-jar", str(jar), "--port", str(port), "--bind-address", "127.0.0.1",
        "--root-dir", str(root), "--no-request-journal", "--disable-banner",
        "--disable-request-logging",
    ]  # fmt: skip
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


# ---------------------------------------------------------------- correctness checks


def _without(name: str) -> dict[str, Any]:
    return {k: v for k, v in SUBMIT_BODY.items() if k != name}


# Bodies each of which breaks one documented rule; every server must refuse each (4xx).
INVALID_PROBES: dict[str, bytes] = {
    **{
        name: _compact(body).encode()
        for name, body in {
            "samples 9 (range)": {**SUBMIT_BODY, "samples": 9},
            "width as a string (type)": {**SUBMIT_BODY, "width": "1024"},
            "blank prompt (pattern)": {**SUBMIT_BODY, "prompt": "   "},
            "unknown adapter (enum)": {**SUBMIT_BODY, "ip_adapter": ["ip-adapter_sd15"]},
            "adapter, no image (if/then)": _without("ip_adapter_image"),
            "2 scales, 1 adapter (if/then)": {**SUBMIT_BODY, "ip_adapter_scale": "0.5, 0.5"},
            "no prompt (required)": _without("prompt"),
        }.items()
    },
    "not JSON": b'{"prompt": ',
}


@dataclass
class Check:
    name: str
    status: int | None
    ok: bool
    detail: str = ""


@dataclass
class Checks:
    server: str
    results: list[Check] = field(default_factory=list)

    @property
    def answers_correctly(self) -> bool:
        return all(c.ok for c in self.results if not c.name.startswith("invalid: "))

    @property
    def validates(self) -> bool:
        """No invalid body was accepted (a 2xx); unanswered probes are shown, not counted."""
        return not any(
            c.status is not None and c.status < 300
            for c in self.results
            if c.name.startswith("invalid: ")
        )


def _schema_errors(body: Any, definition: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(contract.response_schema(definition))
    return [e.message for e in validator.iter_errors(body)]


def check_answer(
    response: httpx.Response, statuses: Sequence[int], definitions: Mapping[int, str],
    want_status: str,
) -> tuple[bool, str]:  # fmt: skip
    """Whether an answer has an expected HTTP status and a schema-valid body."""
    if response.status_code not in statuses:
        return False, f"HTTP {response.status_code}: {response.text[:200]}"
    try:
        body = response.json()
    except ValueError:
        return False, f"not JSON: {response.text[:200]}"
    errors = _schema_errors(body, definitions[response.status_code])
    if errors:
        return False, "; ".join(errors)[:300]
    if body.get("status") != want_status:
        return False, f"status {body.get('status')!r}, not {want_status}"
    return True, ""


PROBE_TIMEOUT_S = 5.0


def check_server(name: str, base: str, submit_query: str, poll_path: str) -> Checks:
    """The workload's answers (schema-valid) and the refusals of invalid bodies.

    An invalid body must get a 4xx; a server that answers one with 2xx does not validate
    (and is no fair peer). No answer within PROBE_TIMEOUT_S is recorded as such.
    """
    checks = Checks(name)
    headers = {"API-Key": SUBMIT_KEY, "Content-Type": "application/json"}
    submit_url = base + SUBMIT_PATH + submit_query
    with httpx.Client(timeout=30.0) as http:
        answer = http.post(submit_url, content=_compact(SUBMIT_BODY), headers=headers)
        ok, detail = check_answer(answer, (200, 202), {200: "Success", 202: "Pending"}, "PENDING")
        checks.results.append(Check("valid submit", answer.status_code, ok, detail))
        answer = http.get(base + poll_path, headers={"API-Key": POLL_KEY})
        ok, detail = check_answer(answer, (200,), {200: "StatusResponse"}, "SUCCESS")
        checks.results.append(Check("poll", answer.status_code, ok, detail))
    probes: list[tuple[str, bytes, dict[str, str]]] = [
        ("no API key", _compact(SUBMIT_BODY).encode(), {"Content-Type": "application/json"}),
        *((f"invalid: {probe}", body, headers) for probe, body in INVALID_PROBES.items()),
    ]
    for probe, body, probe_headers in probes:
        # A client of its own each: a probe left unanswered must not hold up the next.
        with httpx.Client(timeout=PROBE_TIMEOUT_S) as http:
            try:
                answer = http.post(submit_url, content=body, headers=probe_headers)
            except httpx.TimeoutException:
                detail = f"no answer within {PROBE_TIMEOUT_S:.0f} s"
                checks.results.append(Check(probe, None, False, detail))
                continue
        wanted = answer.status_code == 401 if probe == "no API key" else (
            400 <= answer.status_code < 500
        )  # fmt: skip
        checks.results.append(Check(probe, answer.status_code, wanted, answer.text[:200]))
    return checks


def create_ipmock_job(base: str) -> str:
    answer = httpx.post(
        base + SUBMIT_PATH, content=_compact(SUBMIT_BODY), headers={"API-Key": POLL_KEY}
    )
    if answer.status_code not in (200, 202):
        raise RuntimeError(f"ipmock: submit answered {answer.status_code}: {answer.text}")
    return str(answer.json()["id"])


# ---------------------------------------------------------------- load


def run_wrk(
    url: str, method: str, key: str, body: Path | None, args: argparse.Namespace, seconds: int
) -> WrkResult:
    command = [
        _require("wrk", "the load generator", "apt-get install -y wrk"), "--latency",
        "-t", str(args.threads), "-c", str(args.connections), "-d", f"{seconds}s",
        "--timeout", "10s", "-s", str(BENCH / "request.lua"),
        url, "--", method, key, *([str(body)] if body else []),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


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


# ---------------------------------------------------------------- the report


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
    info: Mapping[str, Any], params: Mapping[str, Any], servers: Mapping[str, str],
    rows: Sequence[Row], verdict_list: Sequence[Verdict], unfair: Sequence[str],
) -> None:  # fmt: skip
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


# ---------------------------------------------------------------- main


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


def _parse_only(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"--only takes a comma-separated subset of {','.join(SERVERS)}, got {text!r}"
        )
    return [n for n in SERVERS if n in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=10, help="measured seconds (10)")
    parser.add_argument(
        "--warmup", type=int, default=10,
        help="unmeasured seconds before each measured run (10)",
    )  # fmt: skip
    parser.add_argument(
        "--settle", type=int, default=60,
        help="more unmeasured seconds before each server's first run of a workload, for "
        "WireMock's JIT: its submit rate is still climbing after 60 s of load (60)",
    )  # fmt: skip
    parser.add_argument("--connections", type=int, default=16, help="open connections (16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="measure every server this many times, alternating; report the median round (1)",
    )  # fmt: skip
    parser.add_argument(
        "--only", type=_parse_only, default=list(SERVERS), metavar="NAMES",
        help="comma-separated subset of ipmock,prism,wiremock,ceiling (all)",
    )  # fmt: skip
    parser.add_argument(
        "--ceiling-processes", type=int, default=os.cpu_count() or 1, metavar="N",
        help="processes of bench/ceiling_server.py (the CPU count)",
    )  # fmt: skip
    parser.add_argument(
        "--wiremock-threads", type=int, default=WIREMOCK_CONTAINER_THREADS, metavar="N",
        help="WireMock --container-threads (8; 0 keeps WireMock's default, 25; Jetty needs 7 "
        "or more on 2 cores)",
    )  # fmt: skip
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
        _require("wrk", "the load generator", "apt-get install -y wrk (brew install wrk)")
        java = "java"
        if "wiremock" in selected:
            java = _require(
                "java", "WireMock runs on it", "install Java 17+ (apt-get install -y "
                "openjdk-17-jre-headless), or leave wiremock out with --only"
            )  # fmt: skip
        if "prism" in selected:
            _require(
                "node", "Prism runs on it",
                "install Node.js 18+ (apt-get install -y nodejs npm), or use --only",
            )  # fmt: skip
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
        body_file.write_text(_compact(SUBMIT_BODY))
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
                    running_server(*IPMOCK_ARGS, base_env=server.env, new_session=True,
                                   start_timeout=READY_TIMEOUT_S)
                )  # fmt: skip
                pid = procfs.listening_pid(bases[name])  # its session's leader or a worker
                pids[name] = None if pid is None else os.getpgid(pid)
            else:
                bases[name], pids[name] = stack.enter_context(
                    served(name, server.command, server.port, server.cwd, server.env,
                           READY_TIMEOUT_S)
                )  # fmt: skip

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
            print(f"peers: {', '.join(wrong)} answered the workload wrongly; not measuring",
                  file=sys.stderr)  # fmt: skip
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
                    path = SUBMIT_PATH + servers[name].submit_query if method == "POST" else (
                        poll_paths[name]
                    )  # fmt: skip
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
        versions["ipmock"] = _first_line(
            [sys.executable, "-c", "import importlib.metadata as m; print(m.version('ipmock'))"]
        )
    if "prism" in selected:
        node = _first_line(["node", "--version"])
        prism = _package_version(PEERS_HOME, "@stoplight/prism-cli")
        versions["prism"] = f"@stoplight/prism-cli {prism}, node {node}"
    if "wiremock" in selected:
        jar = wiremock_jar()
        versions["wiremock"] = f"{jar.name if jar else '?'}, {_first_line([java, '-version'])}"
    return versions


if __name__ == "__main__":
    sys.exit(main())
