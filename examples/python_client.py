#!/usr/bin/env python3
"""Generate images with the ImagePipeline SDXL text-to-image API (or ipmock) and save them.

    python examples/python_client.py --base-url http://127.0.0.1:8000 \\
        --api-key test_pending-then-success --out images --prompt "a red fox in the snow"

Submits like the API docs do, polls the status endpoint until SUCCESS or FAILURE, waits
as long as Retry-After says on 429/503, and prints the path of every image it saved.
Needs only httpx, which ipmock installs. Its default --base-url is the local mock
(`ipmock serve`); the real API costs credits, so it is used only when named.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

LOCAL_MOCK = "http://127.0.0.1:8000"
SUBMIT_PATH = "/sdxl/text2image/v1"
STATUS_PATH = "/sdxl/text2image/v1/status/{id}"


class ApiError(RuntimeError):
    """The API answered FAILURE (or an HTTP error); the message is the server's own."""


def _call(method: str, url: str, api_key: str, deadline: float, **kwargs: Any) -> dict[str, Any]:
    """One API call; on 429/503 wait for Retry-After and try again until the deadline."""
    while True:
        response = httpx.request(method, url, headers={"API-Key": api_key}, timeout=30, **kwargs)
        if response.status_code in (429, 503):
            retry_after = response.headers.get("Retry-After", "")
            wait = float(retry_after) if retry_after.isdigit() else 1.0
            if time.monotonic() + wait > deadline:
                raise TimeoutError(f"gave up: HTTP {response.status_code} past the deadline")
            time.sleep(wait)
            continue
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            response.raise_for_status()
            raise ApiError(f"HTTP {response.status_code}: the answer is not JSON") from None
        if body.get("status") == "FAILURE" or response.status_code >= 400:
            raise ApiError(f"{body.get('error', 'unknown error')} (HTTP {response.status_code})")
        return body


def generate(
    base_url: str,
    api_key: str,
    request: dict[str, Any],
    *,
    poll_interval: float = 2.0,
    timeout: float = 300.0,
) -> tuple[str, list[str]]:
    """Submit one request and poll until it succeeds; return the job id and download URLs."""
    base = base_url.rstrip("/")
    deadline = time.monotonic() + timeout
    # As in the docs: the body is a JSON string, sent without a Content-Type header.
    result = _call("POST", base + SUBMIT_PATH, api_key, deadline, content=json.dumps(request))
    while result["status"] == "PENDING":
        if time.monotonic() + poll_interval > deadline:
            raise TimeoutError(f"job {result['id']} still PENDING after {timeout:g} s")
        time.sleep(poll_interval)
        result = _call("GET", base + STATUS_PATH.format(id=result["id"]), api_key, deadline)
    return result["id"], result["download_urls"]


def download(urls: list[str], out_dir: Path, prefix: str = "image") -> list[Path]:
    """Save each URL as PREFIX-N.png in out_dir. The URLs need no API key: none is sent."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, url in enumerate(urls):
        response = httpx.get(url, timeout=60)
        response.raise_for_status()
        path = out_dir / f"{prefix}-{n}.png"
        path.write_bytes(response.content)
        paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base-url",
        default=LOCAL_MOCK,
        help=f"the API (default {LOCAL_MOCK}, `ipmock serve`; the real API is "
        "https://api.imagepipeline.io and spends credits)",
    )
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--out", type=Path, default=Path("images"), help="folder for the PNGs")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--negative-prompt", default="low quality, blurry, deformed")
    parser.add_argument("--samples", type=int, default=1, help="1 to 4 images")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--ip-adapter-image", metavar="URL", help="face image to lock")
    parser.add_argument("--poll-interval", type=float, default=2.0, metavar="SECONDS")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS")
    args = parser.parse_args()

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
    try:
        job_id, urls = generate(
            args.base_url,
            args.api_key,
            request,
            poll_interval=args.poll_interval,
            timeout=args.timeout,
        )
        paths = download(urls, args.out, prefix=job_id)
    except (ApiError, TimeoutError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
