"""What a hostile run reports: its counts, every finding with the request that caused
it (enough to send it again), and the server's health before and after."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

PREVIEW_BYTES = 1024
HEADER_PREVIEW = 160
HEADERS_SHOWN = 30


@dataclass(frozen=True)
class Reproducer:
    """One request as it went on the wire: enough to send it again.

    Bytes are shown escaped (``\\xff``, ``\\r\\n``) and cut to ``PREVIEW_BYTES``; the
    caller's own API key is shown as ``<api_key>``.
    """

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: str
    body_bytes: int
    wire: str
    """The exact bytes sent (head, body and any framing), escaped and cut."""
    wire_bytes: int
    after_sending: str
    """What the client did once the bytes were out (waited, or shut its side)."""


@dataclass(frozen=True)
class Finding:
    """A 5xx, a hang (no answer within the timeout), or a connection error."""

    kind: str  # "5xx", "hang", "connection error", "run error"
    source: str  # "raw" or "schemathesis"
    category: str
    detail: str
    status: int | None = None
    request: Reproducer | None = None


@dataclass(frozen=True)
class Health:
    """The server's state: a valid submit, poll and download, the contract, and resources."""

    ok: bool
    problems: list[str]
    rss_kib: int | None
    open_fds: int | None
    seconds: float
    job_id: str | None = None


@dataclass(frozen=True)
class SchemathesisRun:
    """The schemathesis part: its command (key filtered), size, and what it counted."""

    command: list[str]
    max_examples: int
    requests: int
    """Requests sent: its HAR's entries, plus errored test cases the HAR left out."""
    unanswered: int
    """Of those, the ones with no answer (timeouts, connection errors)."""
    failures: int
    exit_code: int
    seconds: float
    statuses: dict[str, int]
    output_tail: str


@dataclass
class HostileReport:
    """What a hostile run sent, what came back, every finding, and health before and after."""

    base_url: str
    seed: int
    count: int
    sent: int
    sent_by_category: dict[str, int]
    status_counts: dict[str, int]
    statuses_by_category: dict[str, dict[str, int]]
    findings: list[Finding]
    health_before: Health
    health_after: Health
    seconds: float
    raw_seconds: float
    schemathesis: SchemathesisRun | None
    pid: int | None
    timeout: float

    @property
    def ok(self) -> bool:
        """No finding, and the server still serves a whole generation."""
        return not self.findings and self.health_after.ok

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}

    def text(self) -> str:
        """The report in words: counts, findings with reproducers, health."""
        lines = [
            f"hostile run against {self.base_url} (seed {self.seed}): {self.sent} requests "
            f"sent (asked for {self.count}) in {self.seconds:.1f} s, "
            f"timeout {self.timeout:g} s each",
        ]
        if self.schemathesis is not None:
            st = self.schemathesis
            lines.append(
                f"  schemathesis --mode negative, --max-examples {st.max_examples}: "
                f"{st.requests} requests ({st.unanswered} unanswered), "
                f"{st.failures} failure(s), exit {st.exit_code}, {st.seconds:.1f} s"
            )
        lines.append(f"  raw requests: {self.sent - _st_sent(self)} in {self.raw_seconds:.1f} s")
        lines.append("  sent by category:")
        for category, n in sorted(self.sent_by_category.items()):
            shown = ", ".join(
                f"{k}: {v}" for k, v in sorted(self.statuses_by_category.get(category, {}).items())
            )
            lines.append(f"    {category:<22} {n:>6}   {shown}")
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.status_counts.items()))
        lines.append(f"  answers: {statuses}")
        for name, health in (("before", self.health_before), ("after", self.health_after)):
            rss = "?" if health.rss_kib is None else f"{health.rss_kib / 1024:.1f} MiB"
            fds = "?" if health.open_fds is None else str(health.open_fds)
            state = "healthy" if health.ok else "UNHEALTHY: " + "; ".join(health.problems)
            lines.append(f"  health {name}: {state} (RSS {rss}, open FDs {fds}, pid {self.pid})")
        lines.append(f"  findings: {len(self.findings)}")
        for finding in self.findings[:50]:
            lines.extend("    " + line for line in _finding_text(finding))
        if len(self.findings) > 50:
            lines.append(f"    ... and {len(self.findings) - 50} more (see the JSON report)")
        return "\n".join(lines)


def _st_sent(report: HostileReport) -> int:
    st = report.schemathesis
    return 0 if st is None else st.requests


def _finding_text(finding: Finding) -> list[str]:
    status = f" HTTP {finding.status}" if finding.status is not None else ""
    lines = [f"- {finding.kind}{status} [{finding.source}/{finding.category}]: {finding.detail}"]
    request = finding.request
    if request is not None:
        lines.append(f"    {request.method} {request.target} ({request.after_sending})")
        lines.extend(f"    {name}: {value}" for name, value in request.headers)
        lines.append(f"    body ({request.body_bytes} bytes): {request.body}")
        if request.wire_bytes:
            lines.append(f"    wire ({request.wire_bytes} bytes): {request.wire[:300]}")
    return lines


def escaped(data: bytes) -> str:
    return repr(data)[2:-1]


def shown_headers(headers: list[tuple[str, str]], api_key: str) -> list[tuple[str, str]]:
    shown: list[tuple[str, str]] = []
    for name, value in headers[:HEADERS_SHOWN]:
        value = "<api_key>" if api_key and value == api_key else value
        if len(value) > HEADER_PREVIEW:
            value = f"{value[:HEADER_PREVIEW]!r}... ({len(value)} characters)"
        elif not value.isprintable():
            value = repr(value)
        shown.append((name[:HEADER_PREVIEW], value))
    if len(headers) > HEADERS_SHOWN:
        shown.append(("...", f"{len(headers) - HEADERS_SHOWN} more headers"))
    return shown
