"""A soak of a real `ipmock serve --chaos`: minutes of mixed client load, memory and FDs watched.

Starts a fresh ``ipmock serve --chaos --seed S`` on 127.0.0.1, runs C concurrent async
clients against it for --duration seconds (valid submits followed to the end, downloads,
invalid submits, unknown ids), samples the server's RSS and open file descriptors as it
goes, and prints a report. Exit 1 if a job never became final, a 5xx came that no
scenario or fault explains, an answer broke the contract, or the memory grew.

    .venv/bin/python bench/soak.py [--duration 600] [--concurrency 32] [--seed 7]
        [--json PATH] [--server-arg ARG ...] [-- SERVER ARGS ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import struct
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: contract_tests is in the repo
    sys.path.insert(0, str(ROOT))

from contract_tests.server import ServerDidNotStart, running_server  # noqa: E402
from mock_server.contract import IMAGE_PREFIX, PNG_SIGNATURE, STATUS_PATH, SUBMIT_PATH  # noqa: E402

SCENARIO_HEADER = "X-Ipmock-Scenario"
MB = 1024 * 1024

STORE_MAX_JOBS = 10_000
"""The memory store's bound (Settings.max_jobs): the oldest jobs are dropped beyond it."""
IMAGE_CACHE_BYTES = 64 * MB
"""The image cache's bound (ImageCache.max_bytes): least recently used images dropped."""

ADAPTERS = (
    "ip-adapter_sdxl",
    "ip-adapter_sdxl_vit-h",
    "ip-adapter-plus_sdxl_vit-h",
    "ip-adapter-plus-face_sdxl_vit-h",
)
WORDS = (
    "lighthouse", "dusk", "harbour", "fox", "forest", "neon", "city", "rain", "portrait",
    "mango", "juice", "mountain", "river", "cinematic", "bokeh", "film", "grain", "moody",
    "watercolour", "robot", "garden", "winter", "desert", "castle", "ocean", "sunrise",
)  # fmt: skip
SIDES = tuple(range(64, 385, 8))
"""Image sides in pixels: small, so rendering stays cheap, and varied (multiples of 8)."""

FINAL_OUTCOMES = ("success", "failure", "expired")
JOB_COUNTS = ("submitted", "accepted", "refused", "lost", *FINAL_OUTCOMES, "vanished", "wrong",
              "not_final")  # fmt: skip
IMAGE_COUNTS = ("downloaded", "not_modified", "given_up")
FINDINGS = ("unexpected_5xx", "wrong_answers", "not_final", "answered_twice", "crashes")


@dataclass(frozen=True)
class SoakOptions:
    """What one soak does; the defaults are the 10-minute soak."""

    duration: float = 600.0
    """Seconds of load; then no new work starts and jobs in flight are followed to the end."""
    concurrency: int = 32
    seed: int = 7
    server_args: tuple[str, ...] = ()
    """Extra `ipmock serve` arguments (e.g. --workers 2, --store URL, --config FILE)."""
    poll_interval: float = 0.2
    """Seconds between polls of one job, unless Retry-After or a back-off says longer."""
    job_bound: float = 120.0
    """Seconds from submit a job may take to become final; past it, a finding."""
    sample_every: float = 5.0
    warmup_jobs: int = STORE_MAX_JOBS
    warmup_image_bytes: int = IMAGE_CACHE_BYTES
    """The warm-up fills the server's stores to their bounds before the load is measured:
    this many jobs (SUCCESS at once), and images downloaded of this many bytes in all."""
    warmup_timeout: float = 600.0
    rss_tolerance_mb: float = 20.0
    rss_tolerance_fraction: float = 0.10
    """RSS may grow from the warm-up figure to the end by max(MB, fraction of warm-up)."""
    fd_slack: int = 8
    """Open FDs once the load has ended and its connections closed, over those before."""
    request_timeout: float = 15.0
    settle_timeout: float = 10.0
    """Seconds to wait, after the load, for the server to close the clients' sockets."""
    recheck_jobs: int = 2000
    """Jobs followed to their outcome that are polled again after the load: the same
    outcome, never a second one."""
    echo_server_errors: bool = True


@dataclass
class Sample:
    t: float
    """Seconds since the soak began (the idle sample, before the warm-up)."""
    rss_mb: float
    fds: int
    processes: int
    server_cpu_s: float
    client_cpu_s: float
    """CPU seconds used so far by the server's tree and by this soak's own process."""
    jobs_accepted: int
    jobs_final: int
    requests: int
    phase: str
    """idle (before anything), warm-up (filling the stores), warm (the stores full, the
    warm-up's connections closed: the baseline), load (the measured mixed load), drain
    (jobs in flight followed to the end) or after (sockets closed)."""
    by_process: dict[str, list[float]] = field(default_factory=dict)
    """pid: [RSS MB, FDs] of each process of the server's tree."""
    watched: dict[str, float] = field(default_factory=dict)
    """What ``run_soak``'s ``watch`` reported (Redis's memory, other processes)."""


@dataclass
class Tally:
    """Everything counted while the load runs."""

    requests: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    """Answers by endpoint and HTTP status."""
    client_errors: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    """Requests that got no usable answer, by endpoint and kind (exception class, bad-json)."""
    jobs: Counter[str] = field(default_factory=Counter)
    """submitted, accepted, refused, lost (the submit's answer never came) and outcomes."""
    warmup: Counter[str] = field(default_factory=Counter)
    """The warm-up's jobs, images and image_bytes."""
    images: Counter[str] = field(default_factory=Counter)
    image_bytes: int = 0
    """Bytes of distinct images downloaded: what the server's image cache holds, at most."""
    unexpected_5xx: list[str] = field(default_factory=list)
    wrong_answers: list[str] = field(default_factory=list)
    not_final: list[str] = field(default_factory=list)
    """Jobs that never showed a final state: past the bound, or forgotten (404)."""
    answered_twice: list[str] = field(default_factory=list)
    """Jobs that, polled again after the load, answered another outcome than their first."""
    finals: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Each job followed to its outcome: id -> (API key, outcome), checked again at the end."""
    crashes: list[str] = field(default_factory=list)
    found: Counter[str] = field(default_factory=Counter)
    """How many of each finding above (the lists keep the first few only)."""

    def total_requests(self) -> int:
        answered = sum(sum(c.values()) for c in self.requests.values())
        return answered + sum(sum(c.values()) for c in self.client_errors.values())

    def jobs_final(self) -> int:
        return sum(self.jobs[o] for o in (*FINAL_OUTCOMES, "vanished", "wrong", "not_final"))


@dataclass
class Figures:
    """RSS and open FDs of the server's process tree over the run."""

    warmup: str
    """What the warm-up did, and whether it reached the stores' bounds."""
    rss_idle_mb: float
    rss_start_mb: float
    """After the warm-up, as the measured load starts."""
    rss_end_mb: float
    """The last sample of the measured load."""
    rss_max_mb: float
    rss_slope_mb_per_min: float
    """Least squares over the samples of the measured load."""
    rss_growth_mb: float
    rss_allowed_growth_mb: float
    fds_idle: int
    fds_start: int
    fds_end: int
    fds_max: int
    fds_after: int
    """Once the load has ended and the clients' connections are closed."""
    server_cpu_s: float
    client_cpu_s: float
    """CPU seconds used during the measured load."""
    fds_warm: int = 0
    """Once the warm-up has filled the stores and the pools and closed its connections:
    the baseline the FDs after the load are judged against."""
    fds_bound: int = 0
    """The most FDs the tree may hold: idle, plus a connection per client, plus its
    processes' Redis pools (``--workers`` times ``--redis-connections``), plus the slack."""
    by_process: dict[str, dict[str, float]] = field(default_factory=dict)
    """pid: RSS MB and FDs at the start and the end of the load."""


@dataclass
class SoakReport:
    options: SoakOptions
    server_url: str
    server_pid: int
    load_seconds: float
    drain_seconds: float
    tally: Tally
    samples: list[Sample]
    figures: Figures
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        tally = self.tally
        return {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "passed": self.passed,
            "failures": self.failures,
            "options": asdict(self.options),
            "server_url": self.server_url,
            "load_seconds": round(self.load_seconds, 1),
            "drain_seconds": round(self.drain_seconds, 1),
            "requests": {k: dict(sorted(v.items())) for k, v in sorted(tally.requests.items())},
            "client_errors": {
                k: dict(sorted(v.items())) for k, v in sorted(tally.client_errors.items())
            },
            "jobs": {name: tally.jobs[name] for name in JOB_COUNTS},
            "images": {
                **{name: tally.images[name] for name in IMAGE_COUNTS},
                "distinct_bytes": tally.image_bytes,
            },
            "warmup": {name: tally.warmup[name] for name in ("jobs", "images", "image_bytes")},
            "findings": {name: tally.found[name] for name in FINDINGS},
            "unexpected_5xx": tally.unexpected_5xx,
            "wrong_answers": tally.wrong_answers,
            "not_final": tally.not_final,
            "answered_twice": tally.answered_twice,
            "crashes": tally.crashes,
            "memory": asdict(self.figures),
            "samples": [asdict(s) for s in self.samples],
        }


# --- the server's process tree, from /proc ---------------------------------------------


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])  # after "pid (comm) state"


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it (uvicorn's workers with --workers)."""
    children: defaultdict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (parent := _parent_of(int(entry))) is not None:
            children[parent].append(int(entry))
    tree, frontier = [root], [root]
    while frontier:
        found = children.get(frontier.pop(), [])
        tree.extend(found)
        frontier.extend(found)
    return tree


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            columns = line.split()
            local, state, inode = columns[1], columns[3], columns[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def server_pid(url: str) -> int:
    """The process of ours (a direct child) listening on the server URL's port."""
    port = urlsplit(url).port
    listening = _listening_inodes(port or 80)
    me = os.getpid()
    for entry in os.listdir("/proc"):
        pid = int(entry) if entry.isdigit() else 0
        if pid and _parent_of(pid) == me and _socket_inodes(pid) & listening:
            return pid
    raise RuntimeError(f"no child process of {me} listens on {url}")


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0  # gone, or a zombie: holds no memory


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


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
    each = {str(p): [round(_rss_kb(p) / 1024, 2), _fd_count(p)] for p in tree}
    return TreeUsage(
        rss_mb=sum(rss for rss, _ in each.values()),
        fds=int(sum(fds for _, fds in each.values())),
        cpu_s=sum(_cpu_seconds(p) for p in tree),
        processes=len(tree),
        by_process=each,
    )


# --- judging --------------------------------------------------------------------------


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


def redis_connections_bound(server_args: Sequence[str]) -> int:
    """The Redis connections the server's processes may hold: ``--workers`` times
    ``--redis-connections`` (16 unless given) with a Redis ``--store``, else none."""
    store = _server_arg(server_args, "--store") or ""
    if not store.startswith(("redis://", "rediss://", "unix://")):
        return 0
    return server_workers(server_args) * int(_server_arg(server_args, "--redis-connections") or 16)


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


# --- request bodies -------------------------------------------------------------------


def valid_body(rng: random.Random) -> dict[str, Any]:
    """A valid submit body: a small image, 1-4 samples, with or without IP-Adapters."""
    body: dict[str, Any] = {
        "model_id": "sdxl",
        "prompt": " ".join(rng.choices(WORDS, k=rng.randint(1, 12))),
        "samples": rng.randint(1, 4),
        "width": rng.choice(SIDES),
        "height": rng.choice(SIDES),
    }
    if rng.random() < 0.5:
        body["negative_prompt"] = " ".join(rng.choices(WORDS, k=rng.randint(1, 6)))
    if rng.random() < 0.5:
        body["num_inference_steps"] = rng.randint(1, 50)
        body["guidance_scale"] = round(rng.uniform(1, 20), 2)
    if rng.random() < 0.3:
        body["seed"] = rng.randrange(2**31)
    if rng.random() < 0.4:
        adapters = rng.sample(ADAPTERS, rng.randint(1, 3))
        body["ip_adapter"] = adapters
        body["ip_adapter_scale"] = [round(rng.random(), 2) for _ in adapters]
        body["ip_adapter_image"] = "https://example.com/face.jpg"
        body["ip_adapter_style_images"] = [
            f"https://example.com/style-{i}.jpg" for i in range(1, len(adapters))
        ]
    return body


INVALID_CHANGES: tuple[tuple[str, Any], ...] = (
    ("samples", 9),
    ("width", 1001),
    ("height", 4096),
    ("guidance_scale", 50),
    ("num_inference_steps", 0),
    ("prompt", ""),
    ("ip_adapter", ["ip-adapter_sd15"]),
    ("ip_adapter", ["ip-adapter_sdxl"]),  # no ip_adapter_image for it
)


def invalid_body(rng: random.Random) -> bytes:
    """A submit body the API must refuse with 400: one rule broken, or not JSON at all."""
    if rng.random() < 0.1:
        return b'{"prompt": "a cat", "samples": '
    body = valid_body(rng)
    for name in ("ip_adapter", "ip_adapter_scale", "ip_adapter_image", "ip_adapter_style_images"):
        body.pop(name, None)
    name, value = rng.choice(INVALID_CHANGES)
    body[name] = value
    return json.dumps(body).encode()


def png_size(png: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's header, or None if it is not a PNG."""
    if len(png) < 24 or not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", png[16:24])
    return width, height


# --- the load -------------------------------------------------------------------------


def error_kind(exc: Exception) -> str:
    """A client error's kind: its class and the fixed start of its message (no byte dumps,
    counts or addresses), e.g. ``RemoteProtocolError: illegal status line``."""
    message = re.split(r"[:(\[]", str(exc), maxsplit=1)[0]
    message = re.sub(r"\s+", " ", re.sub(r"\d+", "N", message)).strip(" .")[:60]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _short(response: httpx.Response) -> str:
    return response.content[:200].decode("utf-8", "replace")


class Load:
    """C clients against one server, counting everything into a Tally."""

    def __init__(self, base_url: str, options: SoakOptions, http: httpx.AsyncClient) -> None:
        self.base = base_url.rstrip("/")
        self.options = options
        self.http = http
        self.tally = Tally()
        self.stop = asyncio.Event()

    # One request: an answer (counted by status), or None (counted by error kind).
    async def call(
        self,
        endpoint: str,
        method: str,
        url: str,
        *,
        key: str | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response | None:
        sent = {**({"API-Key": key} if key else {}), **(headers or {})}
        try:
            response = await self.http.request(method, url, content=content, headers=sent)
        except httpx.HTTPError as exc:
            self.tally.client_errors[endpoint][error_kind(exc)] += 1
            return None
        except (OSError, ValueError) as exc:  # anything a broken answer raises unwrapped
            self.tally.client_errors[endpoint]["unwrapped " + error_kind(exc)] += 1
            return None
        self.tally.requests[endpoint][str(response.status_code)] += 1
        if response.status_code >= 500 and not fault_answer(response.status_code, response.content):
            self.finding(
                "unexpected_5xx",
                f"{method} {urlsplit(url).path}: {response.status_code} {_short(response)}",
            )
        return response

    def finding(self, kind: str, text: str, keep: int = 50) -> None:
        """Count a finding of ``kind`` (one of FINDINGS); keep the first ``keep`` texts."""
        self.tally.found[kind] += 1
        examples: list[str] = getattr(self.tally, kind)
        if len(examples) < keep:
            examples.append(text)

    def json_of(self, endpoint: str, response: httpx.Response) -> dict[str, Any] | None:
        try:
            body = response.json()
        except ValueError:
            self.tally.client_errors[endpoint]["bad-json"] += 1
            return None
        if not isinstance(body, dict):
            self.tally.client_errors[endpoint]["bad-json"] += 1
            return None
        return body

    @staticmethod
    def backoff(rng: random.Random, errors_in_a_row: int) -> float:
        return min(5.0, 0.2 * 2.0 ** (errors_in_a_row - 1)) * rng.uniform(0.5, 1.0)

    async def pause(self, seconds: float) -> None:
        """Sleep between tasks; cut short when the load ends."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def call_until_answered(
        self,
        endpoint: str,
        url: str,
        rng: random.Random,
        *,
        key: str | None = None,
        method: str = "GET",
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        attempts: int = 8,
    ) -> httpx.Response | None:
        """A request retried on client errors, 5xx and 429 (Retry-After honoured); the
        first other answer, or None once ``attempts`` are spent."""
        for attempt in range(1, attempts + 1):
            response = await self.call(
                endpoint, method, url, key=key, content=content, headers=headers
            )
            retryable = response is None or response.status_code == 429
            retryable |= response is not None and response.status_code >= 500
            if not retryable:
                return response
            wait = _retry_after(response) if response is not None else None
            if attempt < attempts:
                await asyncio.sleep(wait if wait is not None else self.backoff(rng, attempt))
        return None

    async def client(self, index: int) -> None:
        rng = random.Random(f"{self.options.seed}/{index}")
        key = f"soak-{index:03d}"
        try:
            while not self.stop.is_set():
                roll = rng.random()
                if roll < 0.06:
                    await self.invalid_submit(rng, key)
                elif roll < 0.10:
                    await self.unknown_id(rng, key)
                else:
                    await self.job(rng, key)
        except Exception as exc:  # a bug here must fail the soak, not end a client quietly
            self.finding("crashes", f"client {index}: {type(exc).__name__}: {exc}")

    async def fill(self, index: int, full: Callable[[], bool]) -> None:
        """A warm-up client: jobs of the load's own bodies, SUCCESS at once (named by the
        scenario header, so the chaos mix is not drawn), and their images, until ``full``."""
        rng = random.Random(f"{self.options.seed}/warm-up/{index}")
        key, warm = f"soak-{index:03d}", self.tally.warmup
        try:
            while not full():
                body = valid_body(rng)
                response = await self.call_until_answered(
                    "POST submit (warm-up)",
                    self.base + SUBMIT_PATH,
                    rng,
                    key=key,
                    method="POST",
                    content=json.dumps(body).encode(),
                    headers={SCENARIO_HEADER: "success"},
                )
                if response is None:
                    continue
                answer = self.json_of("POST submit (warm-up)", response)
                urls = answer.get("download_urls") if answer else None
                if response.status_code != 200 or not isinstance(urls, list):
                    self.finding(
                        "wrong_answers",
                        f"warm-up submit: {response.status_code} {_short(response)}",
                    )
                    continue
                warm["jobs"] += 1
                for url in urls if warm["image_bytes"] < self.options.warmup_image_bytes else ():
                    if not isinstance(url, str) or not url.startswith(self.base + "/"):
                        self.finding("wrong_answers", f"download URL {url!r}")
                        continue
                    image = await self.call_until_answered("GET image (warm-up)", url, rng)
                    if image is not None and png_size(image.content) is not None:
                        warm["images"] += 1
                        warm["image_bytes"] += len(image.content)
                    elif image is not None:
                        self.finding("wrong_answers", f"GET {url}: {image.status_code}")
        except Exception as exc:  # a bug here must fail the soak, not end a client quietly
            self.finding("crashes", f"warm-up {index}: {type(exc).__name__}: {exc}")

    async def invalid_submit(self, rng: random.Random, key: str) -> None:
        body = invalid_body(rng)
        endpoint = "POST submit (invalid body)"
        response = await self.call_until_answered(
            endpoint, self.base + SUBMIT_PATH, rng, key=key, method="POST", content=body
        )
        if response is not None and response.status_code != 400:
            self.finding(
                "wrong_answers",
                f"invalid body {body[:120]!r}: {response.status_code} {_short(response)}",
            )

    async def unknown_id(self, rng: random.Random, key: str) -> None:
        unknown = rng.randbytes(18).hex()
        if rng.random() < 0.5:
            endpoint, path = "GET status (unknown id)", STATUS_PATH.format(id=unknown)
        else:
            endpoint, path = "GET image (unknown id)", f"{IMAGE_PREFIX}{unknown}/0.png"
        response = await self.call_until_answered(endpoint, self.base + path, rng, key=key)
        if response is not None and response.status_code != 404:
            self.finding("wrong_answers", f"GET {path}: {response.status_code} {_short(response)}")

    async def job(self, rng: random.Random, key: str) -> None:
        body = valid_body(rng)
        tally, endpoint = self.tally, "POST submit"
        tally.jobs["submitted"] += 1
        submitted_at = time.monotonic()
        response = await self.call(
            endpoint, "POST", self.base + SUBMIT_PATH, key=key, content=json.dumps(body).encode()
        )
        if response is None:
            tally.jobs["lost"] += 1  # the job may exist: a client must not submit it again
            return
        status = response.status_code
        if status in (400, 404, 413):
            tally.jobs["lost"] += 1
            self.finding("wrong_answers", f"valid body {body}: {status} {_short(response)}")
            return
        if status >= 300:
            tally.jobs["refused"] += 1
            await self.pause(_retry_after(response) or self.options.poll_interval)
            return
        answer = self.json_of(endpoint, response)
        if answer is None or not isinstance(answer.get("id"), str):
            tally.jobs["lost"] += 1
            if answer is not None:
                self.finding("wrong_answers", f"submit answered {status} {_short(response)}")
            return
        tally.jobs["accepted"] += 1
        job_id = answer["id"]
        if answer.get("status") == "PENDING":
            answer = await self.follow(rng, key, job_id, submitted_at)
            if answer is None:
                return
        outcome = answer.get("status")
        if outcome in ("FAILURE", "SUCCESS"):
            tally.finals[job_id] = (key, outcome)
        if outcome == "FAILURE":
            tally.jobs["failure"] += 1
        elif outcome == "SUCCESS":
            tally.jobs["success"] += 1
            await self.download(rng, answer, body)
        else:
            tally.jobs["wrong"] += 1
            self.finding("wrong_answers", f"job {job_id}: status {outcome!r}")

    async def follow(
        self, rng: random.Random, key: str, job_id: str, submitted_at: float
    ) -> dict[str, Any] | None:
        """Poll a job until it is final (its last answer) or counted otherwise (None)."""
        tally, endpoint = self.tally, "GET status"
        url = self.base + STATUS_PATH.format(id=job_id)
        deadline = submitted_at + self.options.job_bound
        wait, errors_in_a_row = self.options.poll_interval, 0
        while True:
            if time.monotonic() + wait > deadline:
                tally.jobs["not_final"] += 1
                self.finding(
                    "not_final",
                    f"job {job_id} (key {key}) still not final "
                    f"{time.monotonic() - submitted_at:.0f} s after its submit",
                )
                return None
            await asyncio.sleep(wait)
            wait = self.options.poll_interval
            response = await self.call(endpoint, "GET", url, key=key)
            if response is None:
                errors_in_a_row += 1
                wait = self.backoff(rng, errors_in_a_row)
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                errors_in_a_row += 1
                wait = max(_retry_after(response) or 0.0, self.backoff(rng, errors_in_a_row))
                continue
            if status == 404:
                tally.jobs["vanished"] += 1
                self.finding("not_final", f"job {job_id} forgotten: 404 {_short(response)}")
                return None
            if status == 410:
                tally.jobs["expired"] += 1
                return None
            if status != 200:
                tally.jobs["wrong"] += 1
                self.finding("wrong_answers", f"poll of {job_id}: {status} {_short(response)}")
                return None
            answer = self.json_of(endpoint, response)
            if answer is None or answer.get("id") != job_id:
                if answer is not None:
                    tally.client_errors[endpoint]["bad-shape"] += 1
                errors_in_a_row += 1
                wait = self.backoff(rng, errors_in_a_row)
                continue
            errors_in_a_row = 0
            if answer.get("status") != "PENDING":
                return answer

    async def recheck(self, most: int) -> int:
        """Poll again up to ``most`` jobs followed to their outcome (a random pick, 8 at a
        time): each must answer the same outcome, never a second one. Jobs the store has
        dropped since (its bound) or whose time is over are passed by. How many compared."""
        tally, rng = self.tally, random.Random(f"{self.options.seed}/recheck")
        picked = list(tally.finals.items())
        picked = rng.sample(picked, min(most, len(picked)))
        compared = 0

        async def one(job_id: str, key: str, outcome: str) -> None:
            nonlocal compared
            url = self.base + STATUS_PATH.format(id=job_id)
            response = await self.call_until_answered("GET status (again)", url, rng, key=key)
            if response is None or response.status_code in (404, 410):
                return
            answer = self.json_of("GET status (again)", response) or {}
            compared += 1
            if response.status_code != 200 or answer.get("status") != outcome:
                self.finding(
                    "answered_twice",
                    f"job {job_id} answered {outcome}, later {response.status_code} "
                    f"{_short(response)}",
                )

        for start in range(0, len(picked), 8):
            batch = picked[start : start + 8]
            await asyncio.gather(*(one(job_id, key, out) for job_id, (key, out) in batch))
        return compared

    async def download(
        self, rng: random.Random, answer: dict[str, Any], body: dict[str, Any]
    ) -> None:
        tally = self.tally
        urls = answer.get("download_urls")
        if not isinstance(urls, list) or len(urls) != body["samples"]:
            self.finding("wrong_answers", f"SUCCESS with download_urls {urls!r}")
            return
        for url in urls:
            if not isinstance(url, str) or not url.startswith(self.base + "/"):
                self.finding("wrong_answers", f"download URL off this server: {url!r}")
                continue
            response = await self.call_until_answered("GET image", url, rng)
            if response is None:
                tally.images["given_up"] += 1
                continue
            size = png_size(response.content)
            if response.status_code != 200 or size != (body["width"], body["height"]):
                self.finding(
                    "wrong_answers",
                    f"GET {url}: {response.status_code}, PNG size {size}, "
                    f"asked {body['width']}x{body['height']}",
                )
                continue
            tally.images["downloaded"] += 1
            tally.image_bytes += len(response.content)
            etag = response.headers.get("etag")
            if etag and rng.random() < 0.25:
                again = await self.call_until_answered(
                    "GET image (If-None-Match)", url, rng, headers={"If-None-Match": etag}
                )
                if again is None:
                    tally.images["given_up"] += 1
                elif again.status_code == 304:
                    tally.images["not_modified"] += 1
                else:
                    self.finding(
                        "wrong_answers",
                        f"GET {url} with If-None-Match {etag}: {again.status_code}, not 304",
                    )


# --- the run --------------------------------------------------------------------------


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


def _server_arg(server_args: Sequence[str], flag: str) -> str | None:
    """The value of ``flag`` among the server's arguments (``--flag V`` or ``--flag=V``)."""
    for i, arg in enumerate(server_args):
        if arg == flag and i + 1 < len(server_args):
            return server_args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def server_workers(server_args: Sequence[str]) -> int:
    """The ``--workers N`` among the server's arguments (1 when absent)."""
    return max(1, int(_server_arg(server_args, "--workers") or 1))


def print_now(line: str) -> None:
    print(line, flush=True)


def run_soak(
    options: SoakOptions, log: Callable[[str], None] = print_now, watch: Watch | None = None
) -> SoakReport:
    """Serve a fresh chaos mock, load it, and judge: the whole soak.

    With ``--workers N`` each worker process has its own image cache, so the warm-up
    downloads N times the bytes (the jobs live in the shared --store, counted once).
    ``watch`` reports on what lies beside the server (``bench/soak_shared.py``: Redis and
    the ``ipmock worker`` processes) at each sample.
    """
    workers = server_workers(options.server_args)
    if workers > 1:
        options = replace(options, warmup_image_bytes=options.warmup_image_bytes * workers)
    args = ["--chaos", "--seed", str(options.seed), "--log-level", "warning",
            *options.server_args]  # fmt: skip
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
    lines.append("\nsoak: " + ("PASSED" if report.passed else "FAILED: " + "; ".join(
        report.failures)))  # fmt: skip
    return "\n".join(lines)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds, so the server is stopped too


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    trailing: list[str] = []
    if "--" in argv:
        trailing = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    defaults = SoakOptions()
    parser.add_argument("--duration", type=float, default=defaults.duration,
                        help="seconds of load (600)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency,
                        help="concurrent clients, 1 to 256 (32)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=defaults.seed, help="chaos and load seed (7)")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an extra `ipmock serve` argument (repeatable; write --server-arg=--workers); "
        "everything after a bare -- is passed too",
    )
    parser.add_argument("--job-bound", type=float, default=defaults.job_bound,
                        help="seconds a job may take to become final (120)")  # fmt: skip
    parser.add_argument("--poll-interval", type=float, default=defaults.poll_interval,
                        help="seconds between polls of a job (0.2)")  # fmt: skip
    parser.add_argument("--sample-every", type=float, default=defaults.sample_every,
                        help="seconds between RSS/FD samples (5)")  # fmt: skip
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
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        report = run_soak(options)
    except ServerDidNotStart as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
