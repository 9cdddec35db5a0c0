"""The soak's options, its running tally, its figures and its report."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

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
    "lighthouse",
    "dusk",
    "harbour",
    "fox",
    "forest",
    "neon",
    "city",
    "rain",
    "portrait",
    "mango",
    "juice",
    "mountain",
    "river",
    "cinematic",
    "bokeh",
    "film",
    "grain",
    "moody",
    "watercolour",
    "robot",
    "garden",
    "winter",
    "desert",
    "castle",
    "ocean",
    "sunrise",
)
SIDES = tuple(range(64, 385, 8))
"""Image sides in pixels: small, so rendering stays cheap, and varied (multiples of 8)."""

FINAL_OUTCOMES = ("success", "failure", "expired")
JOB_COUNTS = (
    "submitted",
    "accepted",
    "refused",
    "lost",
    *FINAL_OUTCOMES,
    "vanished",
    "wrong",
    "not_final",
)
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
