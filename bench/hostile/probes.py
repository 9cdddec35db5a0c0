"""Hostile traffic against a server claiming the contract: every 5xx, hang and drop, reported."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from mock_server.contract import IMAGE_PREFIX as IMAGES
from mock_server.contract import PNG_SIGNATURE
from mock_server.contract import STATUS_PREFIX as STATUS
from mock_server.contract import SUBMIT_PATH as SUBMIT

DEFAULT_BODY_LIMIT = 8 * 1024 * 1024
"""The mock's default request body limit (``max_body_bytes``); oversize probes go past it."""
SCHEMATHESIS = "schemathesis"
PREVIEW_BYTES = 1024
HEADER_PREVIEW = 160
HEADERS_SHOWN = 30
_SEND_PIECE = 256 * 1024
_READ_PIECE = 64 * 1024
_HEAD_LIMIT = 1024 * 1024
# Requests schemathesis sends for the bundled contract in negative mode, measured with
# schemathesis 4.32: about 300 in its coverage phase whatever max-examples is, then about
# 9 per unit of max-examples (three operations, fuzzing and stateful phases).
_ST_FIXED_REQUESTS = 300
_ST_REQUESTS_PER_EXAMPLE = 9
VALID_BODY: dict[str, Any] = {
    "model_id": "sdxl",
    "prompt": "hostile fuzz: a lighthouse at dusk",
    "width": 256,
    "height": 256,
    "samples": 1,
}
RICH_BODY: dict[str, Any] = {
    **VALID_BODY,
    "negative_prompt": "blurry, low quality",
    "num_inference_steps": 20,
    "guidance_scale": 7.5,
    "seed": 42,
    "ip_adapter": ["ip-adapter-plus_sdxl_vit-h"],
    "ip_adapter_scale": [0.6],
    "ip_adapter_image": "https://example.com/face.jpg",
}


# -- the report ------------------------------------------------------------------------


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


# -- finding the server's process ------------------------------------------------------


def listening_pid(base_url: str) -> int | None:
    """The PID of the local process listening on the URL's port (Linux /proc), or None."""
    port = urlsplit(base_url).port
    if port is None:
        return None
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return int(entry.name)
    return None


def _resources(pid: int | None) -> tuple[int | None, int | None]:
    """(RSS in KiB, open file descriptors) of the process, from /proc; None where unknown."""
    if pid is None:
        return None, None
    rss: int | None = None
    fds: int | None = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with contextlib.suppress(OSError):
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds


def _settled_resources(pid: int | None) -> tuple[int | None, int | None]:
    """(RSS, open FDs) once the FD count holds still for 0.15 s (at most 2 s of readings):
    connections the client has just closed take the server a moment to let go."""
    reading = _resources(pid)
    steady = 0
    for _ in range(40):
        if pid is None or steady == 3:
            break
        time.sleep(0.05)
        now = _resources(pid)
        steady = steady + 1 if now[1] == reading[1] else 0
        reading = now
    return reading


# -- health ----------------------------------------------------------------------------


def check_health(
    base_url: str,
    api_key: str,
    *,
    pid: int | None = None,
    timeout: float = 10.0,
    deadline: float = 60.0,
) -> Health:
    """A whole generation (submit, poll to SUCCESS, download each PNG) and /openapi.json.

    The process's RSS and open descriptors are read first, so the check's own
    connection is not counted.
    """
    rss, fds = _settled_resources(pid)
    started = time.monotonic()
    problems: list[str] = []
    job_id: str | None = None
    base = base_url.rstrip("/")
    try:
        with httpx.Client(base_url=base, timeout=timeout) as http:
            document = http.get("/openapi.json")
            if document.status_code != 200 or "openapi" not in _json_object(document):
                problems.append(f"/openapi.json answered HTTP {document.status_code}")
            job_id = _generation(http, api_key, deadline, problems)
    except httpx.HTTPError as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    return Health(not problems, problems, rss, fds, time.monotonic() - started, job_id)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _generation(
    http: httpx.Client, api_key: str, deadline: float, problems: list[str]
) -> str | None:
    headers = {"API-Key": api_key}
    give_up = time.monotonic() + deadline
    submitted = http.post(SUBMIT, headers=headers, json=VALID_BODY)
    answer = _json_object(submitted)
    if submitted.status_code not in (200, 202) or "id" not in answer:
        problems.append(f"submit answered HTTP {submitted.status_code}: {submitted.text[:200]}")
        return None
    job_id = str(answer["id"])
    while answer.get("status") == "PENDING" and time.monotonic() < give_up:
        time.sleep(0.05)
        polled = http.get(STATUS + job_id, headers=headers)
        if polled.status_code != 200:
            problems.append(f"status answered HTTP {polled.status_code}: {polled.text[:200]}")
            return job_id
        answer = _json_object(polled)
    if answer.get("status") != "SUCCESS":
        problems.append(f"the job ended {answer.get('status')!r}, not SUCCESS: {answer}")
        return job_id
    urls = answer.get("download_urls") or []
    if len(urls) != VALID_BODY["samples"]:
        problems.append(f"{len(urls)} download URLs for {VALID_BODY['samples']} sample(s)")
    for url in urls:
        image = http.get(url)
        if image.status_code != 200 or not image.content.startswith(PNG_SIGNATURE):
            problems.append(f"{url}: HTTP {image.status_code}, not a PNG")
    return job_id


# -- schemathesis ----------------------------------------------------------------------


def schemathesis_examples_for(requests: int) -> int:
    """The --max-examples that makes schemathesis send about ``requests`` requests."""
    extra = max(0, requests - _ST_FIXED_REQUESTS)
    return max(1, math.ceil(extra / _ST_REQUESTS_PER_EXAMPLE))


def run_schemathesis_negative(
    base_url: str,
    api_key: str,
    *,
    max_examples: int,
    seed: int,
    timeout: float,
    documented_faults: Collection[int] = (),
) -> tuple[SchemathesisRun, list[Finding]]:
    """schemathesis --mode negative with not_a_server_error against the served contract.

    Run as a subprocess (as ``ipmock verify`` runs it), one worker, seeded, no shrinking.
    Its requests are counted from its HAR report (see ``_read_schemathesis``); each 5xx
    there becomes a finding with its request, each unanswered request a hang (no answer
    within ``timeout``) or a connection error.
    """
    executable = shutil.which(SCHEMATHESIS) or str(Path(sys.executable).with_name(SCHEMATHESIS))
    base = base_url.rstrip("/")
    with tempfile.TemporaryDirectory(prefix="ipmock-hostile-") as scratch:
        har, report = Path(scratch) / "run.har", Path(scratch) / "run.json"
        command = [
            executable, "run", f"{base}/openapi.json", "--url", base,
            "--mode", "negative", "--checks", "not_a_server_error",
            "-H", f"API-Key: {api_key}", "--max-examples", str(max_examples),
            "--seed", str(seed), "--workers", "1", "--request-timeout", str(timeout),
            "--generation-database", "none", "--suppress-health-check", "all",
            "--continue-on-failure", "--no-shrink", "--no-color",
            "--report", "har,json", "--report-har-path", str(har),
            "--report-json-path", str(report), "--output-sanitize", "true",
        ]  # fmt: skip
        shown = [
            ("API-Key: <api_key>" if part == f"API-Key: {api_key}" else part) for part in command
        ]
        started = time.monotonic()
        expected = _ST_FIXED_REQUESTS + _ST_REQUESTS_PER_EXAMPLE * max_examples
        budget = 60.0 + 0.25 * expected  # about ten times its pace against the mock
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=budget,
                check=False,
                env={**os.environ, "NO_COLOR": "1"},
            )
            exit_code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            exit_code = -1
            partial = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
            output = f"schemathesis did not finish in {budget:.0f} s\n{partial}"
        seconds = time.monotonic() - started
        entries = _har_entries(har)
        summary = _json_file(report)
    run, findings = _read_schemathesis(
        entries, summary, api_key, timeout=timeout, documented_faults=documented_faults
    )
    return (
        SchemathesisRun(
            shown, max_examples, run.requests, run.unanswered, run.failures, exit_code, seconds,
            run.statuses, output[-3000:],
        ),
        findings + _schemathesis_run_errors(run, exit_code, output),
    )  # fmt: skip


@dataclass(frozen=True)
class _SchemathesisCount:
    requests: int
    unanswered: int
    failures: int
    statuses: dict[str, int]


def _read_schemathesis(
    entries: list[dict[str, Any]], summary: dict[str, Any], api_key: str, *, timeout: float,
    documented_faults: Collection[int],
) -> tuple[_SchemathesisCount, list[Finding]]:  # fmt: skip
    """The count and findings from schemathesis's HAR and JSON reports.

    The HAR has one entry per request it recorded, an unanswered one with status 0; test
    cases its JSON report counts as errored beyond those were not recorded in the HAR
    (a connection cut mid-answer), and are added to the count without a reproducer.
    """
    findings: list[Finding] = []
    statuses: Counter[str] = Counter()
    unanswered = 0
    for entry in entries:
        status = int(entry.get("response", {}).get("status", 0) or 0)
        statuses[str(status) if status else "unanswered"] += 1
        if status == 0:
            unanswered += 1
            waited = float(entry.get("time", 0) or 0) / 1000
            kind = "hang" if waited >= 0.9 * timeout else "connection error"
            detail = f"no answer (after {waited:.1f} s)"
            reproducer = _har_reproducer(entry, api_key)
            findings.append(Finding(kind, SCHEMATHESIS, SCHEMATHESIS, detail, None, reproducer))
        elif status >= 500 and status not in documented_faults:
            findings.append(
                Finding("5xx", SCHEMATHESIS, SCHEMATHESIS, "not_a_server_error", status,
                        _har_reproducer(entry, api_key))
            )  # fmt: skip
    errored = int(summary.get("test_cases", {}).get("errored", 0) or 0)
    missing = max(0, errored - unanswered)
    if missing:
        titles = json.dumps(summary.get("errors") or [])[:600]
        findings.append(
            Finding("connection error", SCHEMATHESIS, SCHEMATHESIS,
                    f"{missing} request(s) errored and are not in the HAR: {titles}")
        )  # fmt: skip
        statuses["unanswered"] += missing
    failures = sum(int(f.get("count", 1)) for f in summary.get("failures") or [])
    if failures and not any(f.kind == "5xx" for f in findings):
        findings.append(
            Finding("5xx", SCHEMATHESIS, SCHEMATHESIS, json.dumps(summary["failures"])[:1500])
        )
    count = _SchemathesisCount(len(entries) + missing, unanswered + missing, failures,
                               dict(statuses))  # fmt: skip
    return count, findings


def _schemathesis_run_errors(run: _SchemathesisCount, exit_code: int, output: str) -> list[Finding]:
    """The run itself went wrong: it sent nothing, or it ended in a way no finding explains."""
    if not run.requests:
        detail = f"schemathesis sent nothing (exit {exit_code}): {output[-1500:]}"
    elif exit_code == 0 or (exit_code == 1 and (run.failures or run.unanswered)):
        return []
    else:
        detail = f"schemathesis exit {exit_code}: {output[-1500:]}"
    return [Finding("run error", SCHEMATHESIS, SCHEMATHESIS, detail)]


def _har_entries(path: Path) -> list[dict[str, Any]]:
    data = _json_file(path)
    entries = data.get("log", {}).get("entries", [])
    return [e for e in entries if isinstance(e, dict)]


def _json_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _har_reproducer(entry: dict[str, Any], api_key: str) -> Reproducer:
    request = entry.get("request", {})
    url = urlsplit(str(request.get("url", "")))
    target = url.path + (f"?{url.query}" if url.query else "")
    headers = [(str(h.get("name")), str(h.get("value"))) for h in request.get("headers", [])]
    body = str(request.get("postData", {}).get("text", ""))
    data = body.encode("utf-8", "backslashreplace")  # lone surrogates are possible
    return Reproducer(
        str(request.get("method")), target, _shown_headers(headers, api_key), _escaped(data),
        len(data), "", 0, "waited for the answer (schemathesis)",
    )  # fmt: skip


# -- raw probes ------------------------------------------------------------------------


_Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True)
class _Probe:
    """One raw exchange: the bytes to send and what the server owes."""

    category: str
    method: bytes
    target: bytes
    headers: _Headers
    body: bytes = b""
    raw: bytes | None = None
    """The exact bytes to send when they are not method, target, headers and body."""
    answers: int = 1
    """Answers the server owes (pipelined requests owe one each; abandoned ones none)."""
    must_answer: bool = True
    """A valid HTTP request: closing without the owed answers is a finding. Invalid
    framing may get a 400 or a closed connection."""
    shut: bool = False
    """After the owed answers, shut our sending side: the server must answer or close."""

    def wire(self) -> bytes:
        if self.raw is not None:
            return self.raw
        head = [self.method + b" " + self.target + b" HTTP/1.1\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in self.headers]
        return b"".join(head) + b"\r\n" + self.body

    def reproducer(self, api_key: str) -> Reproducer:
        wire = self.wire()
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.headers]
        after = (
            "shut its side after the answers and read to the end"
            if self.shut
            else f"waited for {self.answers} answer(s)"
        )
        return Reproducer(
            self.method.decode("latin-1"),
            _escaped(self.target)[:2000],
            _shown_headers(headers, api_key),
            _escaped(self.body[:PREVIEW_BYTES]),
            len(self.body),
            _escaped(wire[:PREVIEW_BYTES]).replace(api_key, "<api_key>"),
            len(wire),
            after,
        )


def _escaped(data: bytes) -> str:
    return repr(data)[2:-1]


def _shown_headers(headers: list[tuple[str, str]], api_key: str) -> list[tuple[str, str]]:
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


@dataclass
class _Context:
    api_key: str
    host: bytes
    body_limit: int
    job_id: str | None


def _request(
    ctx: _Context,
    category: str,
    method: str | bytes,
    target: str | bytes,
    body: bytes = b"",
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    key: bytes | None = None,
    content_type: bytes | None = b"application/json",
    length: bool = True,
    must_answer: bool = True,
) -> _Probe:
    """A well-framed request with Host, API-Key and Content-Length (unless told otherwise)."""
    head: list[tuple[bytes, bytes]] = [(b"Host", ctx.host)]
    head.append((b"API-Key", ctx.api_key.encode() if key is None else key))
    if content_type is not None and body:
        head.append((b"Content-Type", content_type))
    head += headers or []
    if length and (body or method in ("POST", b"POST")):
        head.append((b"Content-Length", str(len(body)).encode()))
    return _Probe(
        category, _bytes(method), _bytes(target), tuple(head), body, must_answer=must_answer
    )


def _bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")


def _dumps(body: Any) -> bytes:
    return json.dumps(body).encode()


def _some_body(rng: random.Random) -> dict[str, Any]:
    return dict(rng.choice([VALID_BODY, RICH_BODY]))


def _job_path(ctx: _Context) -> str:
    return STATUS + (ctx.job_id or "no-such-job")


_NOISE = b'{}[]",:\\ \t\r\n0123456789.eE+-truefalsenull\x00\xff\x7f'


def _bad_json(rng: random.Random, ctx: _Context) -> _Probe:
    fixed = [
        b"{prompt: 'a cat'}", b"{'prompt': 'a cat'}", b'{"prompt": "a cat",}',
        b'{"prompt" "a cat"}', b'{"prompt": "a cat"}}', b"{]", b"[1, 2", b"nul", b"tru",
        b'"unterminated', b'{"prompt": "a"}{"samples": 2}', b"// comment\n{}",
        b'{"prompt": "a\\q"}', b'{"prompt": "\\u12"}', b'{"prompt": "a\x01b"}',
        b'{"samples": 01, "prompt": "a"}', b'{"samples": 0x10, "prompt": "a"}',
        b"<xml><prompt>a cat</prompt></xml>", b"\x00" * 64, b"{" + b'"a":1,' * 2000 + b"}",
        b'{"prompt": "a cat" /* c */}', b"\xef\xbb\xbf\xef\xbb\xbf{}", b"=" * 100,
    ]  # fmt: skip
    choice = rng.randrange(3)
    if choice == 0:
        body = rng.choice(fixed)
    elif choice == 1:
        mutated = bytearray(_dumps(_some_body(rng)))
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(mutated))
            action = rng.randrange(3)
            if action == 0:
                del mutated[at]
            elif action == 1:
                mutated.insert(at, rng.choice(_NOISE))
            else:
                mutated[at] = rng.choice(_NOISE)
        body = bytes(mutated)
    else:
        body = rng.randbytes(rng.randint(1, 4096))
    return _request(ctx, "bad json", "POST", SUBMIT, body)


def _truncated_json(rng: random.Random, ctx: _Context) -> _Probe:
    full = _dumps(_some_body(rng))
    return _request(ctx, "truncated json", "POST", SUBMIT, full[: rng.randrange(1, len(full))])


_BAD_UTF8 = [
    b"\xff", b"\xfe", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
    b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82", b"\xc3\x28", b"\xe9",
]  # fmt: skip


def _bad_utf8(rng: random.Random, ctx: _Context) -> _Probe:
    body = _some_body(rng)
    choice = rng.randrange(5)
    if choice == 0:  # invalid bytes inside a string value
        text = _dumps(body)
        at = text.index(b'"prompt": "') + len(b'"prompt": "') + rng.randrange(5)
        raw = text[:at] + rng.choice(_BAD_UTF8) * rng.randint(1, 3) + text[at:]
    elif choice == 1:  # in a key
        raw = b'{"pr' + rng.choice(_BAD_UTF8) + b'ompt": "a cat"}'
    elif choice == 2:  # another encoding
        codec = rng.choice(["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"])
        raw = json.dumps({**body, "prompt": "caf\u00e9 \u00fc"}, ensure_ascii=False).encode(
            codec, "replace"
        )
    elif choice == 3:  # lone surrogate escapes (valid JSON, not valid Unicode)
        escape = rng.choice([b"\\ud800", b"\\udfff", b"\\ud83d", b"\\udc00\\ud800"])
        raw = b'{"prompt": "a cat ' + escape + b'", "' + escape + b'": 1}'
    else:  # random high bytes
        raw = b'{"prompt": "' + bytes(rng.randrange(128, 256) for _ in range(64)) + b'"}'
    return _request(ctx, "bad utf-8", "POST", SUBMIT, raw)


_HUGE_NUMBERS = [
    "1e400", "-1e400", "1e-400", "1" + "0" * 5000, "-" + "9" * 5000, "9" * 100_000,
    "1.5e99999999999", "0." + "0" * 5000 + "1", "1" * 4300, "1" * 4301, "2e308",
    "123456789012345678901234567890", "-0", "1e308", "1E+9999", "5e-324",
]  # fmt: skip
_NUMBER_FIELDS = [
    "samples", "seed", "width", "height", "guidance_scale", "strength", "num_inference_steps",
    "ip_adapter_scale", "x_unknown", "lora_weights",
]  # fmt: skip


def _with_literal(field_name: str, literal: str, *, in_list: bool = False) -> bytes:
    value = f"[{literal}]" if in_list else literal
    return f'{{"prompt": "a cat", "{field_name}": {value}}}'.encode()


def _huge_numbers(rng: random.Random, ctx: _Context) -> _Probe:
    literal = rng.choice(_HUGE_NUMBERS)
    raw = _with_literal(rng.choice(_NUMBER_FIELDS), literal, in_list=rng.random() < 0.3)
    return _request(ctx, "huge numbers", "POST", SUBMIT, raw)


def _nested(kind: str, depth: int, leaf: bytes = b"1") -> bytes:
    if kind == "arrays":
        return b"[" * depth + leaf + b"]" * depth
    if kind == "objects":
        return b'{"a":' * depth + leaf + b"}" * depth
    return b'[{"a":' * (depth // 2) + leaf + b"}]" * (depth // 2)


def _deep_nesting(rng: random.Random, ctx: _Context) -> _Probe:
    depth = rng.choice([33, 100, 1000, 10_000, 100_000, 100_000, 100_000])
    nested = _nested(rng.choice(["arrays", "objects", "mixed"]), depth)
    where = rng.randrange(4)
    if where == 0:
        raw = nested
    elif where == 3:
        raw = b'{"prompt": "a cat", "x": ' + nested[: len(nested) // 2]  # never closed
    else:
        field_name = rng.choice(["ip_adapter", "x_unknown", "prompt", "ip_adapter_scale"])
        raw = b'{"prompt": "a cat", "' + field_name.encode() + b'": ' + nested + b"}"
    return _request(ctx, "deep nesting", "POST", SUBMIT, raw)


def _huge_strings(rng: random.Random, ctx: _Context) -> _Probe:
    size = rng.choice([10_001, 100_000, 1_000_000])
    unit = rng.choice(["a", "cat ", "\u00e9", "\U0001f642", "\u732b", "\\u0000", "\\n"])
    text = (unit * (size // len(unit) + 1))[:size]
    choice = rng.randrange(6)
    if choice == 0:
        raw = b'{"prompt": "' + text.encode() + b'"}'
    elif choice == 1:
        raw = b'{"prompt": "a cat", "negative_prompt": "' + text.encode() + b'"}'
    elif choice == 2:
        raw = b'{"prompt": "a cat", "' + text.encode() + b'": 1}'
    elif choice == 3:
        fields = rng.choice([1000, 10_000, 50_000])
        raw = b"{" + b",".join(b'"f%d": 1' % i for i in range(fields)) + b', "prompt": "a"}'
    elif choice == 4:
        items = rng.choice([1000, 100_000])
        name = rng.choice([b"ip_adapter_scale", b"lora_models", b"ip_adapter", b"x"])
        item = rng.choice([b"0.5", b'"a"', b"null", b"[]"])
        raw = b'{"prompt": "a cat", "' + name + b'": [' + b",".join([item] * items) + b"]}"
    else:
        data_url = "data:image/png;base64," + "A" * size
        raw = _dumps({**RICH_BODY, "ip_adapter_image": data_url})
    return _request(ctx, "huge strings", "POST", SUBMIT, raw)


def _duplicate_keys(rng: random.Random, ctx: _Context) -> _Probe:
    choice = rng.randrange(5)
    if choice == 0:
        raw = b'{"prompt": "a cat", "prompt": 5}'
    elif choice == 1:
        raw = b'{"samples": 1, "prompt": "a cat", "samples": 9}'
    elif choice == 2:
        raw = b'{"prompt": "a", ' + b'"samples": 1, ' * rng.choice([10, 1000, 20_000]) + b'"x": 1}'
    elif choice == 3:
        raw = b'{"prompt": "a cat", "Prompt": 1, "PROMPT": [], "prompt ": {}}'
    else:
        raw = b'{"prompt": "a cat", "ip_adapter": [], "ip_adapter": ["ip-adapter_sdxl"]}'
    return _request(ctx, "duplicate keys", "POST", SUBMIT, raw)


_NON_FINITE = ["NaN", "Infinity", "-Infinity", "nan", "inf", "+Infinity", "-NaN", "Inf"]


def _nan_infinity(rng: random.Random, ctx: _Context) -> _Probe:
    literal = rng.choice(_NON_FINITE)
    raw = _with_literal(rng.choice(_NUMBER_FIELDS), literal, in_list=rng.random() < 0.3)
    return _request(ctx, "nan infinity", "POST", SUBMIT, raw)


def _content_types(rng: random.Random, ctx: _Context) -> _Probe:
    types: list[bytes | None] = [
        None, b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=xyz",
        b"multipart/form-data", b"text/plain", b"text/plain; charset=utf-16",
        b"application/json; charset=latin-1", b"application/json; charset=nonsense",
        b"application/json" * 100, b"", b"*/*", b"image/png", b";;;==;", b"\xe9t\xe9/json",
    ]  # fmt: skip
    content_type = rng.choice(types)
    choice = rng.randrange(3)
    if choice == 0:
        body = _dumps(_some_body(rng))
    elif choice == 1:
        body = b"prompt=a+cat&samples=2&width=256&prompt=%ff%00"
    else:
        body = (
            b'--xyz\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na cat\r\n'
            b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
            + PNG_SIGNATURE
            + rng.randbytes(256)
            + b"\r\n--xyz--\r\n"
        )
    probe = _request(ctx, "content types", "POST", SUBMIT, body, content_type=None)
    if content_type is None:
        return probe
    return _with_headers(probe, [(b"Content-Type", content_type)])


def _with_headers(probe: _Probe, extra: list[tuple[bytes, bytes]], **changes: Any) -> _Probe:
    return replace(probe, headers=probe.headers + tuple(extra), **changes)


def _framed(base: _Probe, extra: _Headers, body: bytes, **owed: Any) -> _Probe:
    """``base`` with framing headers and a body of our choosing (no Content-Length added)."""
    return replace(base, headers=base.headers + extra, body=body, **owed)


_BAD_LENGTHS = [b"abc", b"-1", b"1e3", b"+5", b"0x10", b"5, 6", b"", b" " * 10,
                b"99999999999999999999999999", b"\xff"]  # fmt: skip


def _content_length_lies(rng: random.Random, ctx: _Context) -> _Probe:
    body = _dumps(_some_body(rng))
    base = _request(ctx, "content-length lies", "POST", SUBMIT, length=False)
    choice = rng.randrange(4)
    if choice == 0:  # shorter: the rest is read as the next request
        declared = str(rng.randrange(0, len(body))).encode()
        return _framed(base, ((b"Content-Length", declared),), body, shut=True)
    if choice == 1:  # longer, then shut our side: no answer is owed
        declared = str(len(body) + rng.choice([1, 100, 10_000, 1_000_000])).encode()
        return _framed(base, ((b"Content-Length", declared),), body,
                       answers=0, must_answer=False, shut=True)  # fmt: skip
    if choice == 2:  # not a number: invalid framing
        length = ((b"Content-Length", rng.choice(_BAD_LENGTHS)),)
        return _framed(base, length, body, must_answer=False, shut=True)
    # two Content-Length headers that disagree: invalid framing
    lengths = ((b"Content-Length", str(len(body)).encode()),
               (b"Content-Length", str(len(body) // 2).encode()))  # fmt: skip
    return _framed(base, lengths, body, must_answer=False, shut=True)


def _chunks(data: bytes, size: int) -> bytes:
    pieces = [
        b"%x\r\n" % len(data[i : i + size]) + data[i : i + size] + b"\r\n"
        for i in range(0, len(data), size)
    ]
    return b"".join(pieces) + b"0\r\n\r\n"


def _chunked(rng: random.Random, ctx: _Context) -> _Probe:
    data = _dumps(_some_body(rng))
    base = _request(ctx, "broken chunked", "POST", SUBMIT, length=False)
    te: _Headers = ((b"Transfer-Encoding", b"chunked"),)
    variants: list[tuple[bytes, _Headers, bool, bool]] = [
        # body, extra headers, valid framing, complete
        (_chunks(data, rng.randint(1, 64)), te, True, True),
        (b"zz\r\n" + data + b"\r\n0\r\n\r\n", te, False, True),
        (b"-5\r\nhello\r\n0\r\n\r\n", te, False, True),
        (b"fffffffffffffffffffff\r\n" + data + b"\r\n0\r\n\r\n", te, False, True),
        (b"%x\r\n" % (len(data) + 50) + data + b"\r\n0\r\n\r\n", te, False, False),
        (b"%x\r\n" % len(data) + data + b"0\r\n\r\n", te, False, True),
        (b"%x\r\n" % len(data) + data + b"\r\n", te, True, False),
        (b"%x;ext=\x00\x01\r\n" % len(data) + data + b"\r\n0\r\n\r\n", te, False, True),
        (_chunks(data, 8) + b"X-Trailer: " + b"t" * 1000 + b"\r\n\r\n", te, False, True),
        (_chunks(data, 16), (*te, (b"Content-Length", str(len(data)).encode())), False, True),
        (_chunks(data, 16), ((b"Transfer-Encoding", b"chunked, gzip"),), False, True),
        (data, ((b"Transfer-Encoding", b"gzip"),), False, True),
        (_chunks(data, 16), te + te, False, True),
        (b"%x\r\n" % len(data) + data, te, True, False),
    ]
    body, extra, valid, complete = rng.choice(variants)
    return _framed(base, extra, body, answers=1 if complete else 0,
                   must_answer=valid and complete, shut=True)  # fmt: skip


def _oversize(rng: random.Random, ctx: _Context) -> _Probe:
    limit = ctx.body_limit
    prompt_size = limit + rng.choice([1, 1024, 1024 * 1024])
    body = b'{"prompt": "' + b"a" * prompt_size + b'"}'
    base = _request(ctx, "oversize bodies", "POST", SUBMIT, length=False)
    choice = rng.randrange(3)
    if choice == 0:  # declared and sent in full
        return _framed(base, ((b"Content-Length", str(len(body)).encode()),), body)
    if choice == 1:  # declared huge, a little sent, then our side shut: a 413 may come early
        declared = str(limit * rng.choice([2, 100, 10_000])).encode()
        return _framed(base, ((b"Content-Length", declared),), body[:65536],
                       answers=0, must_answer=False, shut=True)  # fmt: skip
    return _framed(base, ((b"Transfer-Encoding", b"chunked"),), _chunks(body, 1024 * 1024))


def _hostile_headers(rng: random.Random, ctx: _Context) -> _Probe:
    target = rng.choice([SUBMIT, _job_path(ctx), "/openapi.json", IMAGES + "x/0.png"])
    method = "POST" if target == SUBMIT else "GET"
    body = _dumps(VALID_BODY) if method == "POST" else b""
    probe = _request(ctx, "hostile headers", method, target, body)
    choice = rng.randrange(9)
    valid = True
    if choice == 0:
        size = rng.choice([1000, 7000, 60_000, 300_000])
        extra = [(b"X-Huge", b"h" * size)]
        valid = size <= 7000
    elif choice == 1:
        n = rng.choice([50, 100, 1000, 5000])
        extra = [(b"X-Many-%d" % i, b"v") for i in range(n)]
        valid = n <= 100
    elif choice == 2:  # obs-text: UTF-8 and latin-1 bytes in values are valid HTTP
        extra = [(b"X-Name", "\u732b caf\u00e9 \U0001f642".encode()), (b"X-Latin", b"caf\xe9")]
    elif choice == 3:
        bad = rng.choice([b"a\x00b", b"a\x01b", b"a\x7fb", b"a\rb", b"\x1b[31mred"])
        extra = [(b"X-Control", bad)]
        valid = False
    elif choice == 4:
        name = rng.choice([b"X Space", b"X\x00Nul", b"\xe9t\xe9", b"", b"X:Colon", b"(x)"])
        extra = [(name, b"v")]
        valid = False
    elif choice == 5:
        value = rng.choice(["no-such-scenario", "x" * 10_000, "\u732b", "server error ",
                            "../../etc/passwd", "success;drop", "\t"])  # fmt: skip
        extra = [(b"X-Ipmock-Scenario", value.encode())]
        valid = len(value) < 7000
    elif choice == 6:
        extra = [
            rng.choice([(b"Expect", b"100-continue"), (b"Expect", b"banana"),
                        (b"Connection", b"Upgrade"), (b"Upgrade", b"h2c"),
                        (b"Range", b"bytes=-1,0-"),
                        (b"If-None-Match", b'"' + b"x" * 5000 + b'", *'),
                        (b"Accept-Encoding", b"x" * 3000), (b"Host", b"evil.example:99999"),
                        (b"X-Forwarded-For", b"::1, 10.0.0.1, \xff")])]  # fmt: skip
    elif choice == 7:  # header continuation (obs-fold): deprecated, a 400 or a close
        raw = probe.wire().replace(b"\r\n\r\n", b"\r\nX-Fold: a\r\n  folded\r\n\r\n", 1)
        return _with_headers(probe, [], raw=raw, must_answer=False)
    else:  # a header line with no colon
        raw = probe.wire().replace(b"\r\n\r\n", b"\r\nNoColonHere\r\n\r\n", 1)
        return _with_headers(probe, [], raw=raw, must_answer=False)
    return _with_headers(probe, extra, must_answer=valid)


def _bad_paths(rng: random.Random, ctx: _Context) -> _Probe:
    job = ctx.job_id or "no-such-job"
    size = rng.choice([1000, 7000, 60_000])
    valid_targets = [
        STATUS + "../../etc/passwd", STATUS + "..%2f..%2fopenapi.json", STATUS + "%00",
        STATUS + "a%00b", IMAGES + "%00/0.png", STATUS + "x" * size,
        IMAGES + "y" * size + "/0.png", STATUS + "%e7%8c%ab", STATUS + "%ff%fe", STATUS + "%",
        STATUS + "%zz", "//sdxl//text2image/v1", SUBMIT + "/", STATUS, STATUS + job + "/",
        STATUS + job + "?x=%zz&&&=&" + "q" * 1000, IMAGES + job + "/0.png%00",
        IMAGES + job + "/-1.png", IMAGES + job + "/99.png", IMAGES + job + "/0.PNG",
        IMAGES + job + "/0.png/..", IMAGES + job + "/%30.png", IMAGES + job + "/00.png",
        IMAGES + job + "/0.png?download=1", IMAGES + "../" + job, IMAGES + job, "/",
        "/openapi.json/../openapi.json", "/__mock/jobs/" + "j" * size, "/__mock/jobs/%00",
        "/__mock/journal?path=%00", "/__mock/journal?path=" + "p" * size,
        "/%2e%2e/%2e%2e/etc/passwd", "/sdxl/text2image/v1\\status\\x", "/sdxl;/text2image/v1",
        "http://evil.example/sdxl/text2image/v1/status/x", "/" + "a/" * 2000,
    ]  # fmt: skip
    invalid_targets = [
        STATUS + "\u732b", STATUS + "a b", STATUS + "a\tb", "", "*", STATUS + "\x00",
        STATUS + "#frag", "sdxl/text2image/v1",
    ]  # fmt: skip
    if rng.random() < 0.8:
        target, valid = rng.choice(valid_targets), True
    else:
        target, valid = rng.choice(invalid_targets), False
    method = "POST" if target.startswith(SUBMIT) and rng.random() < 0.3 else "GET"
    body = _dumps(VALID_BODY) if method == "POST" else b""
    return _request(ctx, "bad paths", method, target, body, must_answer=valid)


def _wrong_methods(rng: random.Random, ctx: _Context) -> _Probe:
    wrong_for = {
        SUBMIT: ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "HEAD"],
        _job_path(ctx): ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"],
        IMAGES + (ctx.job_id or "x") + "/0.png": ["POST", "PUT", "DELETE", "PATCH"],
        "/openapi.json": ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"],
        "/__mock/reset": ["GET", "PUT", "DELETE", "PATCH"],
        "/__mock/queue": ["PUT", "PATCH"],
        "/__mock/clock": ["PUT", "DELETE", "PATCH"],
        "/__mock/journal": ["POST", "PUT", "PATCH"],
        "/__mock/jobs": ["POST", "DELETE"],
        "/__mock/scenarios": ["POST", "DELETE"],
    }
    target = rng.choice(list(wrong_for))
    if rng.random() < 0.8:
        method, valid = rng.choice(wrong_for[target]).encode(), True
    else:  # not a method any parser knows, or not a token: a 400 or a close
        method = rng.choice([b"post", b"GeT", b"FOO", b"M" * 1000, b"PRO PFIND", b"G\x00ET",
                             b"\xe9", b"CONNECT", b"PRI"])  # fmt: skip
        valid = False
    body = _dumps(VALID_BODY) if rng.random() < 0.5 else b""
    probe = _request(ctx, "wrong methods", method, target, body, must_answer=valid)
    if method == b"CONNECT":  # CONNECT needs an authority target
        return _with_headers(probe, [], must_answer=False)
    return probe


def _hostile_keys(rng: random.Random, ctx: _Context) -> _Probe:
    valid_keys = [
        b"k" * 1000, b"k" * 7000, b"", b"   ", b"a\tb", b" padded ", "\u732b".encode(),
        b"caf\xe9", b"test_", b"test_no-such-scenario", b"test_" + b"x" * 5000,
        b"test_../../etc", b"TEST_SUCCESS", b"test_success ", b"' OR 1=1 --", b"${jndi:x}",
        b"%00", b"null",
    ]  # fmt: skip
    invalid_keys = [b"\x00", b"k\x01", b"k\x7f", b"\x1b[2J", b"k" * 70_000]
    if rng.random() < 0.8:
        key, valid = rng.choice(valid_keys), True
    else:
        key, valid = rng.choice(invalid_keys), False
    target = rng.choice([SUBMIT, _job_path(ctx), IMAGES + (ctx.job_id or "x") + "/0.png"])
    method = "POST" if target == SUBMIT else "GET"
    body = _dumps(VALID_BODY) if method == "POST" else b""
    probe = _request(ctx, "hostile api keys", method, target, body, key=key, must_answer=valid)
    if rng.random() < 0.2:  # a second API-Key header
        return _with_headers(probe, [(b"API-Key", rng.choice(valid_keys))])
    return probe


def _admin(rng: random.Random, ctx: _Context) -> _Probe:
    bodies = [
        b"{", b"\xff\xfe", _nested("arrays", 100_000), _nested("objects", 100_000),
        b'{"scenarios": ' + _nested("arrays", 10_000) + b"}", b'{"scenarios": "nope"}',
        b'{"scenarios": [1e400]}', b'{"scenarios": [NaN]}', b'{"scenarios": ["no-such-one"]}',
        b'{"scenarios": [{"outcome": "explode"}]}', b'{"scenarios": [{"pending_polls": -1}]}',
        b'{"scenarios": [{"pending_polls": "x"}]}', b'{"scenarios": []}', b"[]", b"null",
        b'{"scenarios": [' + b'"no-such",' * 10_000 + b'"no"]}', b'{"scenarios": [["x"]]}',
        b'{"scenarios": [{"pending_polls": ' + b"9" * 5000 + b"}]}",
    ]  # fmt: skip
    clock_bodies = [
        b'{"advance": -1}', b'{"advance": 1e400}', b'{"advance": NaN}', b'{"advance": "10"}',
        b'{"advance": true}', b'{"advance": 10000000000}', b'{"advance": ' + b"9" * 5000 + b"}",
        b'{"advance": [1]}', b'{"advance": null}', b'{"advance": Infinity}', b"{", b"\xff",
        _nested("objects", 100_000),
    ]  # fmt: skip
    choice = rng.randrange(4)
    if choice == 0:
        probe = _request(ctx, "admin", "POST", "/__mock/queue", rng.choice(bodies))
    elif choice == 1:
        probe = _request(ctx, "admin", "POST", "/__mock/clock", rng.choice(clock_bodies))
    elif choice == 2:
        target = rng.choice(["/__mock/journal?path=" + "%ff" * 100, "/__mock/jobs/%00",
                             "/__mock/scenarios", "/__mock/queue", "/__mock/clock"])  # fmt: skip
        probe = _request(ctx, "admin", "GET", target)
    else:
        token = rng.choice([b"x" * 10_000, b"\xe9", b"", b"token"])
        probe = _request(
            ctx, "admin", "GET", "/__mock/queue", headers=[(b"X-Ipmock-Admin-Token", token)]
        )
    return probe


def _pipelined(ctx: _Context, n: int) -> bytes:
    head = [b"GET " + STATUS.encode() + b"no-such-job HTTP/1.1", b"Host: " + ctx.host,
            b"API-Key: " + ctx.api_key.encode()]  # fmt: skip
    return (b"\r\n".join(head) + b"\r\n\r\n") * n


def _garbage(rng: random.Random, ctx: _Context) -> _Probe:
    choice = rng.randrange(9)
    method, target = b"GET", b"/"
    if choice == 0:
        raw, answers, valid = rng.randbytes(rng.randint(1, 65536)), 0, False
    elif choice == 1:  # a TLS ClientHello on a plain port
        raw = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(500)
        answers, valid = 0, False
    elif choice == 2:
        raw, answers, valid = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, False
    elif choice == 3:  # only the request line, then our side shut
        raw, answers, valid = b"GET /openapi.json HTTP/1.1\r\n", 0, False
    elif choice == 4:  # connect, send nothing, shut our side
        raw, answers, valid = b"", 0, False
    elif choice == 5:
        raw = rng.choice([b"GET / HTTP/9.9\r\n\r\n", b"GET /\r\n", b"GET / http/1.1\r\n\r\n",
                          b"\r\n\r\n\r\n", b"GET  /  HTTP/1.1\r\n\r\n",
                          b"GET / HTTP/1.1\n\n"])  # fmt: skip
        answers, valid = 0, False
    elif choice == 6:  # HTTP/1.0, no Host: valid
        raw = b"GET /openapi.json HTTP/1.0\r\n\r\n"
        answers, valid, target = 1, True, b"/openapi.json"
    else:  # pipelined requests in one write: one answer each
        n = rng.choice([2, 10, 50])
        raw, answers, valid = _pipelined(ctx, n), n, True
        target = STATUS.encode() + b"no-such-job"
    return _Probe("protocol garbage", method, target, (), raw=raw, answers=answers,
                  must_answer=valid, shut=True)  # fmt: skip


CATEGORIES: dict[str, tuple[int, Callable[[random.Random, _Context], _Probe]]] = {
    "bad json": (10, _bad_json),
    "truncated json": (6, _truncated_json),
    "bad utf-8": (6, _bad_utf8),
    "huge numbers": (6, _huge_numbers),
    "deep nesting": (5, _deep_nesting),
    "huge strings": (4, _huge_strings),
    "duplicate keys": (4, _duplicate_keys),
    "nan infinity": (5, _nan_infinity),
    "content types": (6, _content_types),
    "content-length lies": (6, _content_length_lies),
    "broken chunked": (6, _chunked),
    "oversize bodies": (1, _oversize),
    "hostile headers": (8, _hostile_headers),
    "bad paths": (8, _bad_paths),
    "wrong methods": (6, _wrong_methods),
    "hostile api keys": (8, _hostile_keys),
    "admin": (6, _admin),
    "protocol garbage": (6, _garbage),
}
"""Raw categories: (weight, builder). A probe's category and content come from the seed."""


def build_probe(seed: int, index: int, ctx: _Context) -> _Probe:
    """The ``index``-th raw probe of a seeded run (the same for the same seed)."""
    rng = random.Random(f"{seed}/{index}")
    names = list(CATEGORIES)
    name = rng.choices(names, weights=[CATEGORIES[n][0] for n in names])[0]
    return CATEGORIES[name][1](rng, ctx)


# -- sending raw probes ----------------------------------------------------------------


class _BrokenAnswer(Exception):
    """The server started an answer and broke it off, or sent something not HTTP."""


@dataclass
class _Outcome:
    statuses: list[int] = field(default_factory=list)
    closed: bool = False
    hang: bool = False
    broken: str = ""
    connect_error: str = ""


async def _exchange(host: str, port: int, probe: _Probe, timeout: float) -> _Outcome:
    outcome = _Outcome()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            try:
                reader, writer = await asyncio.open_connection(host, port, limit=_HEAD_LIMIT)
            except OSError as exc:
                outcome.connect_error = f"{type(exc).__name__}: {exc}"
                return outcome
            sending = asyncio.create_task(_send(writer, probe.wire()))
            try:
                await _receive(reader, writer, probe, sending, outcome)
            finally:
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await sending
    except TimeoutError:
        outcome.hang = True
    except _BrokenAnswer as exc:
        outcome.broken = str(exc)
    except OSError:  # reset while reading: the server dropped the connection
        outcome.closed = True
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
    return outcome


async def _send(writer: asyncio.StreamWriter, wire: bytes) -> None:
    with contextlib.suppress(OSError):  # the server may stop reading and close: fine
        for start in range(0, len(wire), _SEND_PIECE):
            writer.write(wire[start : start + _SEND_PIECE])
            await writer.drain()


async def _receive(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    probe: _Probe,
    sending: asyncio.Task[None],
    outcome: _Outcome,
) -> None:
    head_only = probe.method == b"HEAD"
    for _ in range(probe.answers):
        status = await _read_answer(reader, head_only)
        if status is None:
            outcome.closed = True
            return
        outcome.statuses.append(status)
    if not probe.shut:
        return
    await sending
    with contextlib.suppress(OSError):
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()
    while (status := await _read_answer(reader, head_only)) is not None:
        outcome.statuses.append(status)
    if not outcome.statuses:
        outcome.closed = True


async def _read_answer(reader: asyncio.StreamReader, head_only: bool) -> int | None:
    """The status of the next answer (its body read and dropped), or None at a clean close."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                return None
            raise _BrokenAnswer(
                f"the answer broke off in its head: {exc.partial[:200]!r}"
            ) from None
        except asyncio.LimitOverrunError:
            raise _BrokenAnswer("an answer head over 1 MiB") from None
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise _BrokenAnswer(f"not an HTTP answer: {lines[0][:200]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue: the real answer follows
        if head_only or status in (101, 204, 304):
            return status
        await _skip_body(reader, headers)
        return status


async def _skip_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> None:
    try:
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                await _skip_bytes(reader, size + 2)
                if size == 0:
                    return
        elif (length := headers.get(b"content-length")) is not None:
            await _skip_bytes(reader, int(length))
        else:
            while await reader.read(_READ_PIECE):
                pass
    except (asyncio.IncompleteReadError, ValueError) as exc:
        raise _BrokenAnswer(f"the answer's body broke off: {exc}") from None


async def _skip_bytes(reader: asyncio.StreamReader, n: int) -> None:
    while n > 0:
        piece = await reader.readexactly(min(n, _READ_PIECE))
        n -= len(piece)


def _judge(
    probe: _Probe, outcome: _Outcome, documented: Collection[int], api_key: str
) -> tuple[list[str], list[Finding]]:
    """The outcome's labels for the counts, and its findings."""
    labels = [str(s) for s in outcome.statuses]
    found: list[tuple[str, str, int | None]] = []
    if outcome.connect_error:
        labels.append("connect error")
        found.append(("connection error", f"could not connect: {outcome.connect_error}", None))
    elif outcome.hang:
        labels.append("hang")
        found.append(("hang", "no answer and no close within the timeout", None))
    elif outcome.broken:
        labels.append("broken answer")
        found.append(("connection error", outcome.broken, None))
    elif len(outcome.statuses) < probe.answers:
        labels.append("closed")
        if probe.must_answer:
            owed = f"closed after {len(outcome.statuses)} of {probe.answers} owed answer(s)"
            found.append(("connection error", owed, None))
    elif not outcome.statuses:
        labels.append("closed")
    for status in outcome.statuses:
        if status >= 500 and status not in documented:
            found.append(("5xx", f"answered HTTP {status}", status))
    findings = [
        Finding(kind, "raw", probe.category, detail, status, probe.reproducer(api_key))
        for kind, detail, status in found
    ]
    return labels, findings


async def run_raw(
    base_url: str,
    *,
    count: int,
    seed: int,
    api_key: str,
    timeout: float = 10.0,
    concurrency: int = 8,
    body_limit: int = DEFAULT_BODY_LIMIT,
    job_id: str | None = None,
    documented_faults: Collection[int] = (),
) -> tuple[Counter[str], dict[str, Counter[str]], list[Finding]]:
    """Send ``count`` seeded raw probes, ``concurrency`` at a time.

    Returns the probes sent by category, the outcomes by category (statuses, "closed",
    "hang", ...), and the findings.
    """
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    ctx = _Context(api_key, f"{host}:{port}".encode(), body_limit, job_id)
    sent: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = {}
    findings: list[Finding] = []
    indices: Iterator[int] = iter(range(count))

    async def worker() -> None:
        for index in indices:
            probe = build_probe(seed, index, ctx)
            outcome = await _exchange(host, port, probe, timeout)
            labels, found = _judge(probe, outcome, documented_faults, api_key)
            sent[probe.category] += 1
            outcomes.setdefault(probe.category, Counter()).update(labels)
            findings.extend(found)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return sent, outcomes, findings


# -- the whole run ---------------------------------------------------------------------


def run_hostile(
    base_url: str,
    *,
    count: int,
    seed: int,
    api_key: str,
    pid: int | None = None,
    timeout: float = 10.0,
    schemathesis_share: float = 0.3,
    concurrency: int = 8,
    body_limit: int = DEFAULT_BODY_LIMIT,
    documented_faults: Collection[int] = (),
    flow_deadline: float = 60.0,
) -> HostileReport:
    """Health, schemathesis negative mode, raw probes, health again: at least ``count`` requests.

    schemathesis runs over the served ``/openapi.json`` and gets about
    ``schemathesis_share`` of ``count`` (its --max-examples is estimated, its real count
    read from its report); seeded raw probes over sockets make up the rest, at least
    ``count * (1 - schemathesis_share)``: broken JSON, huge numbers, deep nesting, lying
    Content-Length, broken chunked framing, oversize bodies (past ``body_limit``),
    hostile headers, paths, methods and API keys, on the submit, status, image and admin
    paths (see ``CATEGORIES``). Each request waits at most ``timeout`` seconds; no answer
    by then is a hang. The health check (a whole generation and /openapi.json, plus the
    RSS and open FDs of process ``pid`` from /proc) runs before and after.

    ``documented_faults``: statuses the server was configured to give on purpose (none
    with the default scenario); any other 5xx is a finding. Call it outside an event
    loop (it runs its own).
    """
    started = time.monotonic()
    before = check_health(base_url, api_key, pid=pid, timeout=timeout, deadline=flow_deadline)
    findings: list[Finding] = []
    st_run: SchemathesisRun | None = None
    st_target = round(count * schemathesis_share)
    sent: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = {}
    if st_target > 0:
        st_run, st_findings = run_schemathesis_negative(
            base_url, api_key, max_examples=schemathesis_examples_for(st_target), seed=seed,
            timeout=timeout, documented_faults=documented_faults,
        )  # fmt: skip
        findings += st_findings
        sent["schemathesis"] = st_run.requests
        outcomes["schemathesis"] = Counter(st_run.statuses)
    raw_count = max(count - sent["schemathesis"], count - st_target)
    raw_started = time.monotonic()
    raw_sent, raw_outcomes, raw_findings = asyncio.run(
        run_raw(
            base_url, count=raw_count, seed=seed, api_key=api_key, timeout=timeout,
            concurrency=concurrency, body_limit=body_limit, job_id=before.job_id,
            documented_faults=documented_faults,
        )
    )  # fmt: skip
    raw_seconds = time.monotonic() - raw_started
    sent.update(raw_sent)
    outcomes.update(raw_outcomes)
    findings += raw_findings
    after = check_health(base_url, api_key, pid=pid, timeout=timeout, deadline=flow_deadline)
    totals: Counter[str] = Counter()
    for counter in outcomes.values():
        totals.update(counter)
    return HostileReport(
        base_url=base_url,
        seed=seed,
        count=count,
        sent=sum(sent.values()),
        sent_by_category=dict(sent),
        status_counts=dict(totals),
        statuses_by_category={k: dict(v) for k, v in outcomes.items()},
        findings=findings,
        health_before=before,
        health_after=after,
        seconds=time.monotonic() - started,
        raw_seconds=raw_seconds,
        schemathesis=st_run,
        pid=pid,
        timeout=timeout,
    )
