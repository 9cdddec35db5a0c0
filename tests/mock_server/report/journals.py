"""Small hand-written journals (the ``/__mock/journal`` entry format) for the property tests."""

from __future__ import annotations

from typing import Any

SUBMIT = "/sdxl/text2image/v1"
BODY = {"prompt": "a lighthouse at dusk", "samples": 2}
PNG = b"\x89PNG\r\n\x1a\n" + b"pixels"


def _entry(
    at: float,
    method: str,
    path: str,
    status: int | None,
    answer: dict[str, Any] | None,
    *,
    job_id: str | None = None,
    dropped: bool = False,
    retry_after: float | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return {
        "at": at,
        "method": method,
        "path": path,
        "json": body,
        "body": "" if body is None else str(body),
        "status": status,
        "response_headers": headers,
        "response_json": answer,
        "dropped": dropped,
        "fault": "drop" if dropped else None,
        "job_id": job_id,
        "client": "sk-t…ab·123456",
    }


def submit(
    at: float,
    job: str | None = "J1",
    *,
    status: int = 202,
    answer: str = "PENDING",
    dropped: bool = False,
    retry_after: float | None = None,
    body: dict[str, Any] | None = None,
    urls: int = 2,
) -> dict[str, Any]:
    said: dict[str, Any] = {"status": answer, "id": job}
    if answer == "SUCCESS":
        said["download_urls"] = [f"http://127.0.0.1:8000/images/{job}/{i}.png" for i in range(urls)]
    if status not in (200, 202):
        said = {"status": "FAILURE", "error": f"refused with {status}"}
    return _entry(
        at,
        "POST",
        SUBMIT,
        status,
        said,
        job_id=job,
        dropped=dropped,
        retry_after=retry_after,
        body=BODY if body is None else body,
    )


def poll(
    at: float,
    job: str = "J1",
    *,
    status: int = 200,
    answer: str = "PENDING",
    urls: int = 2,
    error: str = "generation failed: out of memory",
    dropped: bool = False,
    retry_after: float | None = None,
) -> dict[str, Any]:
    said: dict[str, Any] = {"status": answer, "id": job}
    if answer == "SUCCESS":
        said["download_urls"] = [f"http://127.0.0.1:8000/images/{job}/{i}.png" for i in range(urls)]
    if answer == "FAILURE":
        said["error"] = error
    if status != 200:
        said = {"status": "FAILURE", "error": f"answered {status}"}
    path = f"{SUBMIT}/status/{job}"
    return _entry(
        at, "GET", path, status, said, job_id=job, dropped=dropped, retry_after=retry_after
    )


def download(
    at: float, job: str = "J1", index: int = 0, *, status: int = 200, dropped: bool = False
) -> dict[str, Any]:
    return _entry(
        at, "GET", f"/images/{job}/{index}.png", status, None, job_id=job, dropped=dropped
    )


def careful(job: str = "J1", start: float = 0.0) -> list[dict[str, Any]]:
    """A generation done right: submit, two polls a second apart, both images fetched."""
    return [
        submit(start, job),
        poll(start + 1, job),
        poll(start + 2, job, answer="SUCCESS"),
        download(start + 2.1, job, 0),
        download(start + 2.2, job, 1),
    ]
