"""Clients with one planted bug each, for proving that the judges catch them.

``generate(..., bug=NAME)`` is a careful client (the example clients' rules) but for its
bug; ``python -m tests.support.planted_clients NAME`` runs it under ``ipmock fuzz``'s
protocol (the IPMOCK_* variables), where the process-level bugs live too: a client that
hangs, floods its output, writes junk for PNGs or dies by a signal. ``careful`` plants
nothing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from mock_server.contract import STATUS_PREFIX, SUBMIT_PATH

BUGS = {
    "careful": "none: the rules the example clients keep",
    "no-pause": "polls a PENDING job with no pause (respects_poll_floor)",
    "ignores-retry-after": "waits the poll floor, not Retry-After, after a 429 or 503 "
    "(honours_retry_after)",
    "failure-is-success": "takes FAILURE for success and returns no images (surfaces_failure)",
    "crashes-on-429": "crashes on a 429, without the server's words (returns_every_sample)",
    "resubmits-on-poll-error": "submits again when a status request fails (submits_once)",
    "first-image-only": "downloads only the first image (fetches_every_image)",
    "drops-key-on-polls": "sends no API key with its status requests (sends_its_key)",
}
"""Each bug planted in ``generate``, and the property that catches it."""

PROCESS_BUGS = {
    "hangs": "submits, then sleeps forever (finishes: killed at 3 x deadline)",
    "floods": "prints 8 MiB to stdout and stderr, then works carefully (judged, not a crash)",
    "junk-images": "writes text instead of each PNG (writes_served_images)",
    "dies-by-signal": "kills itself with SIGKILL after its submit (returns_every_sample)",
}
"""Bugs only a process has: run them under ``ipmock fuzz``."""

_RETRIED = frozenset({429, 500, 502, 503, 504})
_TRIES = 5


class PlantedError(Exception):
    """A planted client's error: its step and the server's words."""


def _retry_after(response: httpx.Response | None) -> float:
    text = "" if response is None else response.headers.get("Retry-After", "")
    return float(text) if text.isdigit() else 0.0


def generate(
    base_url: str,
    api_key: str,
    request: Mapping[str, Any],
    *,
    poll_floor: float,
    deadline: float,
    bug: str = "careful",
    http: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> list[bytes]:
    """One generation with ``bug`` planted (a key of BUGS): the images' bytes."""
    if bug not in BUGS:
        raise ValueError(f"unknown bug {bug!r}; known: {', '.join(BUGS)}")
    own = http is None
    client = httpx.Client(timeout=30) if http is None else http
    try:
        return _Generation(
            base_url, api_key, request, poll_floor, deadline, bug, client, sleep, monotonic
        ).run()
    finally:
        if own:
            client.close()


class _Generation:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        request: Mapping[str, Any],
        poll_floor: float,
        deadline: float,
        bug: str,
        http: httpx.Client,
        sleep: Callable[[float], None],
        monotonic: Callable[[], float],
    ) -> None:
        self.base, self.request, self.floor, self.bug, self.http = (
            base_url.rstrip("/"),
            request,
            poll_floor,
            bug,
            http,
        )
        self.headers = {"API-Key": api_key}
        self.sleep, self.monotonic = sleep, monotonic
        self.ends = monotonic() + deadline
        self.deadline = deadline

    def wait(self, seconds: float, why: str) -> None:
        if self.monotonic() + seconds > self.ends:
            raise PlantedError(f"gave up after {self.deadline:g} s ({why})")
        self.sleep(seconds)

    def run(self) -> list[bytes]:
        answer = self.submit()
        while answer.get("status") == "PENDING":
            answer = self.poll(str(answer["id"]))
        if answer.get("status") == "FAILURE":
            if self.bug == "failure-is-success":
                return []
            raise PlantedError(f"job failed: {answer.get('error')}")
        urls = list(answer["download_urls"])
        if self.bug == "first-image-only":
            urls = urls[:1]
        return [self.download(url) for url in urls]

    def submit(self) -> dict[str, Any]:
        for _ in range(_TRIES):
            try:
                response = self.http.post(
                    self.base + SUBMIT_PATH, content=json.dumps(self.request), headers=self.headers
                )
            except httpx.TransportError as exc:
                raise PlantedError(f"submit: the answer was lost ({exc}); not sent again") from None
            if response.status_code == 429 and self.bug == "crashes-on-429":
                raise RuntimeError("unexpected answer")  # the planted crash: no server words
            if response.status_code in (429, 503):
                pause = self.floor if self.bug == "ignores-retry-after" else _retry_after(response)
                self.wait(pause, f"submit refused with {response.status_code}")
                continue
            if response.status_code >= 500:
                raise PlantedError(f"submit: HTTP {response.status_code}; not sent again")
            body = response.json()
            if response.status_code >= 400:
                raise PlantedError(f"submit: {body.get('error')} (HTTP {response.status_code})")
            return dict(body)
        raise PlantedError(f"submit: refused {_TRIES} times")

    def poll(self, job_id: str) -> dict[str, Any]:
        """The job's next answer, after the poll floor (none with the no-pause bug)."""
        self.wait(0.0 if self.bug == "no-pause" else self.floor, "still PENDING")
        headers = {} if self.bug == "drops-key-on-polls" else self.headers
        for _ in range(_TRIES):
            response: httpx.Response | None = None
            try:
                response = self.http.get(self.base + STATUS_PREFIX + job_id, headers=headers)
                if response.status_code not in _RETRIED:
                    body = response.json()
                    if response.status_code != 200:
                        raise PlantedError(f"status request: {body.get('error')}")
                    return dict(body)
            except httpx.TransportError:
                pass
            if self.bug == "resubmits-on-poll-error":
                return self.submit()  # the planted double charge
            pause = self.floor if self.bug == "ignores-retry-after" else _retry_after(response)
            self.wait(max(pause, self.floor), "status request failed")
        raise PlantedError(f"status request failed {_TRIES} times")

    def download(self, url: str) -> bytes:
        for _ in range(_TRIES):
            response: httpx.Response | None = None
            try:
                response = self.http.get(url)
                if response.status_code == 200:
                    return response.content
                if response.status_code not in _RETRIED:
                    raise PlantedError(f"download {url}: HTTP {response.status_code}")
            except httpx.TransportError:
                pass
            pause = self.floor if self.bug == "ignores-retry-after" else _retry_after(response)
            self.wait(max(pause, self.floor), f"download {url} failed")
        raise PlantedError(f"download {url} failed {_TRIES} times")


def _under_protocol(bug: str, environ: Mapping[str, str]) -> int:
    """Run ``bug`` as ``ipmock fuzz`` runs a client: the exit status."""
    base, key = environ["IPMOCK_BASE_URL"], environ["IPMOCK_API_KEY"]
    request = json.loads(environ["IPMOCK_REQUEST"])
    out = Path(environ["IPMOCK_OUT"])
    floor, deadline = float(environ["IPMOCK_POLL_FLOOR"]), float(environ["IPMOCK_DEADLINE"])
    if bug == "hangs":
        httpx.post(base + SUBMIT_PATH, content=json.dumps(request), headers={"API-Key": key})
        while True:  # the planted hang: the fuzzer kills its process group
            time.sleep(60)
    if bug == "dies-by-signal":
        httpx.post(base + SUBMIT_PATH, content=json.dumps(request), headers={"API-Key": key})
        os.kill(os.getpid(), signal.SIGKILL)
    if bug == "floods":
        line = b"x" * 1023 + b"\n"
        for _ in range(8 * 1024):
            sys.stdout.buffer.write(line)
            sys.stderr.buffer.write(line)
        sys.stdout.flush()
    planted = bug if bug in BUGS else "careful"
    try:
        images = generate(base, key, request, poll_floor=floor, deadline=deadline, bug=planted)
    except PlantedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for i, image in enumerate(images):
        (out / f"{i}.png").write_bytes(b"not a PNG\n" if bug == "junk-images" else image)
    return 0


def main(argv: list[str]) -> int:
    known = {**BUGS, **PROCESS_BUGS}
    if len(argv) != 1 or argv[0] not in known:
        print(
            f"usage: python -m tests.support.planted_clients BUG; BUG one of {', '.join(known)}",
            file=sys.stderr,
        )
        return 2
    return _under_protocol(argv[0], os.environ)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
