"""A small `requests` client for a real `ipmock serve`, with every wait bounded."""

from __future__ import annotations

import io
import json
from typing import Any

import requests
from PIL import Image

TIMEOUT = 10.0
"""Seconds any single HTTP request may take."""

SUBMIT = "/sdxl/text2image/v1"
STATUS = "/sdxl/text2image/v1/status/{id}"


class Api:
    """A thin `requests` client for one server: every call bounded by TIMEOUT."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def submit(
        self, key: str | None, body: dict[str, Any], *, headers: dict[str, str] | None = None
    ) -> requests.Response:
        """POST the body as the docs do: a JSON string, API-Key header, no Content-Type."""
        sent = {} if key is None else {"API-Key": key}
        return requests.post(
            self.base_url + SUBMIT,
            headers={**sent, **(headers or {})},
            data=json.dumps(body),
            timeout=TIMEOUT,
        )

    def poll(
        self, key: str | None, job_id: str, *, headers: dict[str, str] | None = None
    ) -> requests.Response:
        sent = {} if key is None else {"API-Key": key}
        return requests.get(
            self.base_url + STATUS.format(id=job_id),
            headers={**sent, **(headers or {})},
            timeout=TIMEOUT,
        )

    def admin(self, method: str, path: str, body: Any = None) -> requests.Response:
        data = None if body is None else json.dumps(body)
        return requests.request(method, self.base_url + path, data=data, timeout=TIMEOUT)

    def scenario(self, name: str) -> dict[str, Any]:
        """The server's own catalogue entry for a scenario (GET /__mock/scenarios)."""
        response = self.admin("GET", "/__mock/scenarios")
        assert response.status_code == 200, response.text
        found = [s for s in response.json()["scenarios"] if s["name"] == name]
        assert found, f"the server does not know scenario {name!r}"
        entry: dict[str, Any] = found[0]
        return entry


def png_size(content: bytes) -> tuple[int, int]:
    """The size of a PNG; fails unless the bytes are a whole, valid PNG."""
    with Image.open(io.BytesIO(content)) as image:
        assert image.format == "PNG", image.format
        size = image.size
        image.verify()
    return size


def check_download(url: str, width: int, height: int, headers: dict[str, str]) -> bytes:
    """Fetch one download URL without and with `headers` (an API key) and check it is a
    cacheable PNG of exactly width x height; return its bytes."""
    plain = requests.get(url, timeout=TIMEOUT)
    keyed = requests.get(url, headers=headers, timeout=TIMEOUT)
    for response in (plain, keyed):
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
        assert response.headers["Content-Type"] == "image/png"
        assert int(response.headers["Content-Length"]) == len(response.content)
        assert response.headers.get("ETag"), response.headers
        assert png_size(response.content) == (width, height)
    assert keyed.content == plain.content
    assert keyed.headers["ETag"] == plain.headers["ETag"]

    again = requests.get(url, timeout=TIMEOUT)
    assert again.status_code == 200
    assert again.content == plain.content
    assert again.headers["ETag"] == plain.headers["ETag"]

    etag = plain.headers["ETag"]
    cached = requests.get(url, headers={"If-None-Match": etag}, timeout=TIMEOUT)
    assert cached.status_code == 304, cached.status_code
    assert cached.content == b""
    assert cached.headers.get("ETag") == etag
    stale = requests.get(url, headers={"If-None-Match": '"not-this-one"'}, timeout=TIMEOUT)
    assert stale.status_code == 200
    assert stale.content == plain.content
    return plain.content


def poll_until_done(api: Api, key: str, job_id: str, max_polls: int = 10) -> list[dict[str, Any]]:
    """Poll until the job leaves PENDING (at most max_polls); return every poll's body.
    Each poll must answer HTTP 200 with the job's id."""
    bodies: list[dict[str, Any]] = []
    for _ in range(max_polls):
        response = api.poll(key, job_id)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["id"] == job_id
        bodies.append(body)
        if body["status"] != "PENDING":
            return bodies
    raise AssertionError(f"job {job_id} still PENDING after {max_polls} polls: {bodies}")
