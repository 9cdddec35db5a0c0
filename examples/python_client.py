#!/usr/bin/env python3
"""Generate images with the ImagePipeline SDXL text-to-image API (or ipmock) and save them.

    python examples/python_client.py --base-url http://127.0.0.1:8000 \\
        --api-key test_pending-then-success --out images --prompt "a red fox in the snow"

A careful client, written to be copied. It submits like the API docs do, polls the
status endpoint until SUCCESS or FAILURE, downloads every image and prints the path of
each one it saved. On the way it:

- retries a status request or a download that meets a broken connection, a 5xx or a
  429, after the answer's Retry-After or the poll interval, whichever is longer (a
  status request never comes sooner than the poll interval), at most --max-retries
  times in a row, and never past --timeout;
- retries a submit only when the server refused it before making a job (429, 503);
  never one whose answer was lost (a broken connection, another 5xx): the job may
  exist, and a second submit could be charged twice. It says so and exits 3;
- names the failing step (submit, status request N, download N) in every error.

Exit status: 0 saved every image, 1 the API refused, the job failed or time ran out,
2 a wrong option, 3 the submit's answer was lost (the job may exist).

Run with no options and IPMOCK_REQUEST set (as ``ipmock fuzz -- python
examples/python_client.py`` does), it takes everything from the IPMOCK_* variables:
IPMOCK_BASE_URL, IPMOCK_API_KEY, IPMOCK_REQUEST (the JSON body), IPMOCK_OUT (sample i
saved as i.png), IPMOCK_POLL_FLOOR (the poll interval) and IPMOCK_DEADLINE (the timeout).
Needs only httpx, which ipmock installs. Its default --base-url is the local mock
(`ipmock serve`); the real API costs credits, so it is used only when named.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

LOCAL_MOCK = "http://127.0.0.1:8000"
SUBMIT_PATH = "/sdxl/text2image/v1"
STATUS_PATH = "/sdxl/text2image/v1/status/{id}"
RETRIED = frozenset({429, 500, 502, 503, 504})
"""Statuses a status request or a download is tried again after (Retry-After)."""


class ClientError(Exception):
    """The run cannot go on; the message names the step and the server's own words."""

    exit_status = 1


class SubmitLost(ClientError):
    """The submit's answer never arrived whole: the job may exist, so no second submit."""

    exit_status = 3


def _retry_after(response: httpx.Response | None, default: float) -> float:
    """The answer's Retry-After in seconds, else ``default``."""
    text = "" if response is None else response.headers.get("Retry-After", "")
    return float(text) if text.isdigit() else default


def _json(response: httpx.Response, step: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ClientError(f"{step}: HTTP {response.status_code}, the answer is not a JSON object")
    return body


def _refused(response: httpx.Response, step: str) -> ClientError:
    body = _json(response, step)
    return ClientError(f"{step}: {body.get('error', 'refused')} (HTTP {response.status_code})")


class Client:
    """One generation's calls on one httpx connection pool, each bounded in time."""

    def __init__(
        self, base_url: str, api_key: str, *, poll_interval: float, timeout: float, retries: int
    ) -> None:
        self.base = base_url.rstrip("/")
        self.headers = {"API-Key": api_key}
        self.poll_interval, self.timeout, self.retries = poll_interval, timeout, retries
        self.deadline = time.monotonic() + timeout
        self.http = httpx.Client(timeout=30)

    def close(self) -> None:
        self.http.close()

    def _wait(self, seconds: float, step: str, why: str) -> None:
        if time.monotonic() + seconds > self.deadline:
            raise ClientError(f"{step}: gave up after {self.timeout:g} s ({why})")
        time.sleep(seconds)

    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        """The submit's answer (PENDING or already ended). Sent again only after a 429 or
        503, which the API answers before it makes a job."""
        # As in the docs: the body is a JSON string, sent without a Content-Type header.
        body = json.dumps(request)
        for attempt in range(self.retries + 1):
            try:
                response = self.http.post(
                    self.base + SUBMIT_PATH, content=body, headers=self.headers
                )
            except httpx.TransportError as exc:
                raise SubmitLost(
                    f"submit: the answer was lost ({type(exc).__name__}: {exc or 'no detail'}); "
                    "the job may exist, so it was not submitted again (a second submit could "
                    "be charged twice)"
                ) from None
            if response.status_code in (429, 503) and attempt < self.retries:
                why = f"HTTP {response.status_code}, no job made"
                self._wait(_retry_after(response, 1.0), "submit", why)
                continue
            if response.status_code >= 500:
                raise SubmitLost(
                    f"submit: HTTP {response.status_code} after the request was sent; the job "
                    "may exist, so it was not submitted again (a second submit could be "
                    "charged twice)"
                )
            if response.status_code >= 400:
                raise _refused(response, "submit")
            try:
                return _json(response, "submit")
            except ClientError as exc:
                raise SubmitLost(
                    f"{exc}; the job may exist, so it was not submitted again"
                ) from None
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _get(self, url: str, step: str, headers: dict[str, str]) -> httpx.Response:
        """A GET tried again after a broken connection, a 5xx or a 429, up to the retries."""
        for attempt in range(self.retries + 1):
            response: httpx.Response | None = None
            try:
                response = self.http.get(url, headers=headers)
                if response.status_code not in RETRIED:
                    return response
                why = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                why = f"{type(exc).__name__}: {exc or 'no detail'}"
            if attempt == self.retries:
                raise ClientError(f"{step}: failed {attempt + 1} times, last: {why}")
            self._wait(max(_retry_after(response, 0.0), self.poll_interval), step, why)
        raise AssertionError("unreachable")

    def poll(self, answer: dict[str, Any]) -> dict[str, Any]:
        """Status requests until the job ends: its SUCCESS answer."""
        polls = 0
        while answer.get("status") == "PENDING":
            job_id = str(answer["id"])
            polls += 1
            step = f"status request {polls} of job {job_id}"
            self._wait(self.poll_interval, step, "still PENDING")
            url = self.base + STATUS_PATH.format(id=job_id)
            response = self._get(url, step, self.headers)
            if response.status_code != 200:
                raise _refused(response, step)
            answer = _json(response, step)
        if answer.get("status") == "FAILURE":
            raise ClientError(f"job failed: {answer.get('error', 'no message')}")
        if answer.get("status") != "SUCCESS":
            raise ClientError(f"unknown status {answer.get('status')!r}")
        return answer

    def download(self, urls: list[str], out_dir: Path, prefix: str) -> list[Path]:
        """Save each URL as PREFIX-N.png in out_dir (N.png with an empty prefix). The URLs
        need no API key: none is sent."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for n, url in enumerate(urls):
            step = f"download {n + 1} of {len(urls)} ({url})"
            response = self._get(url, step, {})
            if response.status_code != 200:
                raise ClientError(f"{step}: HTTP {response.status_code}")
            path = out_dir / (f"{prefix}-{n}.png" if prefix else f"{n}.png")
            path.write_bytes(response.content)
            paths.append(path)
        return paths


OPTIONS: list[tuple[str, dict[str, Any]]] = [
    (
        "--base-url",
        {
            "default": LOCAL_MOCK,
            "help": "the API (default %(default)s, `ipmock serve`; the real API is "
            "https://api.imagepipeline.io and spends credits)",
        },
    ),
    ("--api-key", {"required": True, "help": "required"}),
    ("--prompt", {"required": True, "help": "required"}),
    ("--out", {"type": Path, "default": Path("images"), "help": "folder for the PNGs"}),
    ("--negative-prompt", {"default": "low quality, blurry, deformed", "help": "what to avoid"}),
    ("--samples", {"type": int, "default": 1, "help": "1 to 4 images"}),
    ("--width", {"type": int, "default": 1024, "help": "pixels"}),
    ("--height", {"type": int, "default": 1024, "help": "pixels"}),
    ("--ip-adapter-image", {"metavar": "URL", "help": "face image to lock (default: none)"}),
    (
        "--poll-interval",
        {"type": float, "default": 2.0, "metavar": "SECONDS", "help": "between status requests"},
    ),
    ("--timeout", {"type": float, "default": 300.0, "metavar": "SECONDS", "help": "give up after"}),
    (
        "--max-retries",
        {"type": int, "default": 5, "metavar": "N", "help": "tries again of one call in a row"},
    ),
]


def _parser(*, required: bool = True) -> argparse.ArgumentParser:
    """The options (every default shown in --help); without ``required``, none is required
    and -h is no option, so that a misspelt flag is found before a missing one."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], allow_abbrev=False, add_help=required
    )
    for flag, options in OPTIONS:
        given = dict(options)
        if "default" in given and "%(default)" not in given["help"]:
            given["help"] += " (default: %(default)s)"
        if not required:
            given.pop("required", None)
        parser.add_argument(flag, **given)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; a misspelt one is named (with the closest) before any missing one."""
    _, unknown = _parser(required=False).parse_known_args(argv)
    flags = [flag for flag, _ in OPTIONS]
    for word in unknown:
        if word.startswith("-") and word not in ("-h", "--help"):
            name = word.split("=", 1)[0]
            close = difflib.get_close_matches(name, flags, n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]}?)" if close else ""
            _parser().error(f"unrecognized argument {name}{hint}")
    return _parser().parse_args(argv)


PROTOCOL = (
    "IPMOCK_BASE_URL",
    "IPMOCK_API_KEY",
    "IPMOCK_REQUEST",
    "IPMOCK_OUT",
    "IPMOCK_POLL_FLOOR",
    "IPMOCK_DEADLINE",
)
"""What ``ipmock fuzz`` sets for the client it runs (docs/any-language.md)."""


def from_protocol(environ: Mapping[str, str]) -> int:
    """One generation as ``ipmock fuzz`` asks it: every setting from its variables,
    sample i saved as IPMOCK_OUT/i.png; the exit status."""
    missing = [name for name in PROTOCOL if not environ.get(name)]
    if missing:
        print(f"error: {', '.join(missing)} not set (ipmock fuzz sets them)", file=sys.stderr)
        return 2
    try:
        request = json.loads(environ["IPMOCK_REQUEST"])
        poll_floor = float(environ["IPMOCK_POLL_FLOOR"])
        deadline = float(environ["IPMOCK_DEADLINE"])
    except ValueError as exc:
        print(f"error: an IPMOCK_ variable is not what ipmock fuzz sets: {exc}", file=sys.stderr)
        return 2
    client = Client(
        environ["IPMOCK_BASE_URL"],
        environ["IPMOCK_API_KEY"],
        poll_interval=poll_floor,
        timeout=deadline,
        retries=5,
    )
    try:
        answer = client.poll(client.submit(request))
        client.download(answer["download_urls"], Path(environ["IPMOCK_OUT"]), prefix="")
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    finally:
        client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 1 and os.environ.get("IPMOCK_REQUEST"):
        return from_protocol(os.environ)
    args = parse_args(argv)
    request: dict[str, Any] = {
        "model_id": "sdxl",
        "prompt": args.prompt,
        "negative_prompt": args.negative_prompt,
        "num_inference_steps": 20,
        "guidance_scale": 7.5,
        "samples": args.samples,
        "width": args.width,
        "height": args.height,
    }
    if args.ip_adapter_image:
        request |= {
            "ip_adapter": ["ip-adapter-plus-face_sdxl_vit-h"],
            "ip_adapter_scale": [0.6],
            "ip_adapter_image": args.ip_adapter_image,
        }
    client = Client(
        args.base_url,
        args.api_key,
        poll_interval=args.poll_interval,
        timeout=args.timeout,
        retries=args.max_retries,
    )
    try:
        answer = client.poll(client.submit(request))
        paths = client.download(answer["download_urls"], args.out, prefix=str(answer["id"]))
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    finally:
        client.close()
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
