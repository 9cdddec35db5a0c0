"""One client's exchanges read as the API's steps: submits, polls, downloads, and its jobs.

Everything here reads journal entries (the ``/__mock/journal`` format) and nothing else:
what the server answered says what each job did, so the same reading serves the
in-process fuzzer, ``ipmock fuzz`` and the live report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from mock_server.contract import IMAGE_PREFIX, STATUS_PREFIX, SUBMIT_PATH

Entry = Mapping[str, Any]
Step = Literal["submit", "poll", "download", "other"]

RETRYABLE = frozenset({429, 500, 502, 503, 504})
"""Answers a careful client tries again (after Retry-After when there is one)."""


def step(entry: Entry) -> Step:
    path, method = entry.get("path", ""), entry.get("method", "")
    if method == "POST" and path == SUBMIT_PATH:
        return "submit"
    if method == "GET" and path.startswith(STATUS_PREFIX):
        return "poll"
    if method == "GET" and path.startswith(IMAGE_PREFIX):
        return "download"
    return "other"


def answered(entry: Entry) -> dict[str, Any] | None:
    """The answer's JSON object, when the client got it whole."""
    body = entry.get("response_json")
    return body if not entry.get("dropped") and isinstance(body, dict) else None


def job_status(entry: Entry) -> str | None:
    """PENDING, SUCCESS or FAILURE: what a 200 or 202 said of its job, if it arrived."""
    body = answered(entry)
    if body is None or entry.get("status") not in (200, 202) or step(entry) == "other":
        return None
    status = body.get("status")
    return status if isinstance(status, str) else None


def is_final(entry: Entry) -> bool:
    """The client got its job's final answer (SUCCESS or FAILURE) from this exchange."""
    return job_status(entry) in ("SUCCESS", "FAILURE")


def is_gone(entry: Entry) -> bool:
    """A poll the server answered 404 or 410: the job is unknown or expired."""
    return step(entry) == "poll" and not entry.get("dropped") and entry.get("status") in (404, 410)


def failed_retryably(entry: Entry) -> bool:
    """A dropped answer, a 5xx or a 429: worth another try."""
    return bool(entry.get("dropped")) or entry.get("status") in RETRYABLE


def retry_after(entry: Entry) -> float | None:
    """The Retry-After the client got, in seconds (None: none, or the answer was lost)."""
    if entry.get("dropped"):
        return None
    headers = entry.get("response_headers") or {}
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return None if raw is None else float(raw)
    except ValueError:
        return None


def job_of(entry: Entry) -> str | None:
    """The job an exchange made or asked about: a submit's (from the journal), a poll's
    or a download's (from its path)."""
    kind, path = step(entry), entry.get("path", "")
    if kind == "submit":
        job = entry.get("job_id")
        return job if isinstance(job, str) else None
    if kind == "poll":
        return path[len(STATUS_PREFIX) :] or None
    if kind == "download":
        return path[len(IMAGE_PREFIX) :].split("/", 1)[0] or None
    return None


def is_lost_submit(entry: Entry) -> bool:
    """A submit that made a job whose answer the client never had: dropped, or an error
    sent in its place (the job exists, its id unknown to the client)."""
    return (
        step(entry) == "submit"
        and entry.get("job_id") is not None
        and (bool(entry.get("dropped")) or entry.get("status") not in (200, 202))
    )


def image_paths(entry: Entry) -> list[str]:
    """The paths of a SUCCESS answer's download URLs."""
    body = answered(entry) or {}
    urls = body.get("download_urls")
    if not isinstance(urls, list):
        return []
    return [urlsplit(url).path for url in urls if isinstance(url, str)]


@dataclass
class Job:
    """One job as the client's exchanges show it (indexes into the exchanges)."""

    id: str
    submit: int | None = None
    """The submit that made it (None: it fell out of the journal, or another key's)."""
    exchanges: list[int] = field(default_factory=list)
    final: int | None = None
    """The first exchange that gave the client SUCCESS or FAILURE."""
    gone: int | None = None
    """The first poll answered 404 or 410."""


def jobs(exchanges: Sequence[Entry]) -> dict[str, Job]:
    """Every job the exchanges made or asked about, in the order first seen."""
    found: dict[str, Job] = {}
    for index, entry in enumerate(exchanges):
        job_id = job_of(entry)
        if job_id is None:
            continue
        job = found.setdefault(job_id, Job(job_id))
        job.exchanges.append(index)
        if step(entry) == "submit" and job.submit is None:
            job.submit = index
        if job.final is None and is_final(entry):
            job.final = index
        if job.gone is None and is_gone(entry):
            job.gone = index
    return found


def ended_by(job: Job, exchanges: Sequence[Entry], index: int, deadline: float) -> bool:
    """Whether the client had followed ``job`` to its end before exchange ``index``: its
    final answer, a 404 or 410, or its deadline spent asking."""
    if any(i is not None and i < index for i in (job.final, job.gone)):
        return True
    if job.submit is None:
        return False
    start = exchanges[job.submit]["at"]
    return any(exchanges[i]["at"] - start >= deadline for i in job.exchanges if i < index)


def gave_up_on_a_download(exchanges: Sequence[Entry]) -> bool:
    """Whether the last request for some image URL failed: an error then surfaces it."""
    last: dict[str, Entry] = {}
    for entry in exchanges:
        if step(entry) == "download":
            last[entry["path"]] = entry
    return any(e.get("dropped") or e.get("status") != 200 for e in last.values())


def reason_to_fail(exchanges: Sequence[Entry], deadline: float, poll_floor: float) -> str | None:
    """What the server did that lets a client end in an error, or None: FAILURE, a job
    gone (404, 410), a lost submit, a submit refused for good, a deadline spent, a
    download or a request given up on after it was tried again."""
    for index, entry in enumerate(exchanges):
        kind, status = step(entry), entry.get("status")
        if job_status(entry) == "FAILURE":
            return f"exchange {index} ended its job in FAILURE"
        if is_gone(entry):
            return f"exchange {index} answered {status}: the job is gone"
        if is_lost_submit(entry):
            return f"exchange {index}, a submit that made a job, lost its answer"
        refused = kind == "submit" and isinstance(status, int) and 400 <= status < 500
        if refused and status != 429 and not entry.get("dropped"):
            return f"exchange {index} refused the submit with {status}"
    if gave_up_on_a_download(exchanges):
        return "a download failed on its last try"
    if exchanges:
        last = exchanges[-1]
        tries = [e for e in exchanges if (e["method"], e["path"]) == (last["method"], last["path"])]
        if failed_retryably(last) and len(tries) >= 2 and failed_retryably(tries[-2]):
            return f"{last['method']} {last['path']} failed {_run_of_failures(tries)} times running"
        # The client had its last answer only when it was sent: a slow one (a delay
        # fault) spends the deadline too, on the wall clock.
        answered_at = last["at"] + (last.get("duration_ms") or 0) / 1000
        if answered_at - exchanges[0]["at"] + poll_floor >= deadline:
            return "its deadline was spent"
    return None


def _run_of_failures(tries: Sequence[Entry]) -> int:
    count = 0
    for entry in reversed(tries):
        if not failed_retryably(entry):
            break
        count += 1
    return count
