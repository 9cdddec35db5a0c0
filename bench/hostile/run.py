"""The hostile run: health, schemathesis in negative mode, seeded raw probes, health again."""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.hostile.probe import DEFAULT_BODY_LIMIT, VALID_BODY
from bench.hostile.report import (
    Finding,
    Health,
    HostileReport,
    Reproducer,
    SchemathesisRun,
    escaped,
    shown_headers,
)
from bench.hostile.wire import run_raw
from bench.support import procfs
from contract_tests.verify import schemathesis_run
from mock_server.contract import PNG_SIGNATURE
from mock_server.contract import STATUS_PREFIX as STATUS
from mock_server.contract import SUBMIT_PATH as SUBMIT

SCHEMATHESIS = "schemathesis"
# Requests schemathesis sends for the bundled contract in negative mode, measured with
# schemathesis 4.32: about 300 in its coverage phase whatever max-examples is, then about
# 9 per unit of max-examples (three operations, fuzzing and stateful phases).
_ST_FIXED_REQUESTS = 300
_ST_REQUESTS_PER_EXAMPLE = 9


def _resources(pid: int | None) -> tuple[int | None, int | None]:
    """(RSS in KiB, open file descriptors) of the process; None where unknown."""
    if pid is None:
        return None, None
    return procfs.rss_kb(pid), procfs.fd_count(pid)


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

    verify's runner (as ``ipmock verify`` runs it, over the bundled contract), one worker,
    seeded, no shrinking.
    Its requests are counted from its HAR report (see ``_read_schemathesis``); each 5xx
    there becomes a finding with its request, each unanswered request a hang (no answer
    within ``timeout``) or a connection error.
    """
    base = base_url.rstrip("/")
    with tempfile.TemporaryDirectory(prefix="ipmock-hostile-") as scratch:
        har, report = Path(scratch) / "run.har", Path(scratch) / "run.json"
        options = [
            "--mode",
            "negative",
            "--workers",
            "1",
            "--request-timeout",
            str(timeout),
            "--generation-database",
            "none",
            "--suppress-health-check",
            "all",
            "--continue-on-failure",
            "--no-shrink",
            "--no-color",
            "--report",
            "har,json",
            "--report-har-path",
            str(har),
            "--report-json-path",
            str(report),
        ]
        started = time.monotonic()
        expected = _ST_FIXED_REQUESTS + _ST_REQUESTS_PER_EXAMPLE * max_examples
        budget = 60.0 + 0.25 * expected  # about ten times its pace against the mock
        exit_code, output, shown = schemathesis_run(
            base,
            api_key,
            max_examples=max_examples,
            seed=seed,
            checks="not_a_server_error",
            options=options,
            echo=False,
            timeout=budget,
        )
        seconds = time.monotonic() - started
        entries = _har_entries(har)
        summary = _json_file(report)
    run, findings = _read_schemathesis(
        entries, summary, api_key, timeout=timeout, documented_faults=documented_faults
    )
    return (
        SchemathesisRun(
            shown,
            max_examples,
            run.requests,
            run.unanswered,
            run.failures,
            exit_code,
            seconds,
            run.statuses,
            output[-3000:],
        ),
        findings + _schemathesis_run_errors(run, exit_code, output),
    )


@dataclass(frozen=True)
class _SchemathesisCount:
    requests: int
    unanswered: int
    failures: int
    statuses: dict[str, int]


def _read_schemathesis(
    entries: list[dict[str, Any]],
    summary: dict[str, Any],
    api_key: str,
    *,
    timeout: float,
    documented_faults: Collection[int],
) -> tuple[_SchemathesisCount, list[Finding]]:
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
                Finding(
                    "5xx",
                    SCHEMATHESIS,
                    SCHEMATHESIS,
                    "not_a_server_error",
                    status,
                    _har_reproducer(entry, api_key),
                )
            )
    errored = int(summary.get("test_cases", {}).get("errored", 0) or 0)
    missing = max(0, errored - unanswered)
    if missing:
        titles = json.dumps(summary.get("errors") or [])[:600]
        findings.append(
            Finding(
                "connection error",
                SCHEMATHESIS,
                SCHEMATHESIS,
                f"{missing} request(s) errored and are not in the HAR: {titles}",
            )
        )
        statuses["unanswered"] += missing
    failures = sum(int(f.get("count", 1)) for f in summary.get("failures") or [])
    if failures and not any(f.kind == "5xx" for f in findings):
        findings.append(
            Finding("5xx", SCHEMATHESIS, SCHEMATHESIS, json.dumps(summary["failures"])[:1500])
        )
    count = _SchemathesisCount(
        len(entries) + missing, unanswered + missing, failures, dict(statuses)
    )
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
        str(request.get("method")),
        target,
        shown_headers(headers, api_key),
        escaped(data),
        len(data),
        "",
        0,
        "waited for the answer (schemathesis)",
    )


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
            base_url,
            api_key,
            max_examples=schemathesis_examples_for(st_target),
            seed=seed,
            timeout=timeout,
            documented_faults=documented_faults,
        )
        findings += st_findings
        sent["schemathesis"] = st_run.requests
        outcomes["schemathesis"] = Counter(st_run.statuses)
    raw_count = max(count - sent["schemathesis"], count - st_target)
    raw_started = time.monotonic()
    raw_sent, raw_outcomes, raw_findings = asyncio.run(
        run_raw(
            base_url,
            count=raw_count,
            seed=seed,
            api_key=api_key,
            timeout=timeout,
            concurrency=concurrency,
            body_limit=body_limit,
            job_id=before.job_id,
            documented_faults=documented_faults,
        )
    )
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
