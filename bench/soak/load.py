"""The soak's load: C async clients sending valid and invalid submits, polling each job
to its end, downloading its images, and tallying every answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.soak.judge import fault_answer
from bench.soak.options import (
    ADAPTERS,
    SCENARIO_HEADER,
    SIDES,
    WORDS,
    SoakOptions,
    Tally,
)
from mock_server.contract import IMAGE_PREFIX, PNG_SIGNATURE, STATUS_PATH, SUBMIT_PATH


def valid_body(rng: random.Random) -> dict[str, Any]:
    """A valid submit body: a small image, 1-4 samples, with or without IP-Adapters."""
    body: dict[str, Any] = {
        "model_id": "sdxl",
        "prompt": " ".join(rng.choices(WORDS, k=rng.randint(1, 12))),
        "samples": rng.randint(1, 4),
        "width": rng.choice(SIDES),
        "height": rng.choice(SIDES),
    }
    if rng.random() < 0.5:
        body["negative_prompt"] = " ".join(rng.choices(WORDS, k=rng.randint(1, 6)))
    if rng.random() < 0.5:
        body["num_inference_steps"] = rng.randint(1, 50)
        body["guidance_scale"] = round(rng.uniform(1, 20), 2)
    if rng.random() < 0.3:
        body["seed"] = rng.randrange(2**31)
    if rng.random() < 0.4:
        adapters = rng.sample(ADAPTERS, rng.randint(1, 3))
        body["ip_adapter"] = adapters
        body["ip_adapter_scale"] = [round(rng.random(), 2) for _ in adapters]
        body["ip_adapter_image"] = "https://example.com/face.jpg"
        body["ip_adapter_style_images"] = [
            f"https://example.com/style-{i}.jpg" for i in range(1, len(adapters))
        ]
    return body


INVALID_CHANGES: tuple[tuple[str, Any], ...] = (
    ("samples", 9),
    ("width", 1001),
    ("height", 4096),
    ("guidance_scale", 50),
    ("num_inference_steps", 0),
    ("prompt", ""),
    ("ip_adapter", ["ip-adapter_sd15"]),
    ("ip_adapter", ["ip-adapter_sdxl"]),  # no ip_adapter_image for it
)


def invalid_body(rng: random.Random) -> bytes:
    """A submit body the API must refuse with 400: one rule broken, or not JSON at all."""
    if rng.random() < 0.1:
        return b'{"prompt": "a cat", "samples": '
    body = valid_body(rng)
    for name in ("ip_adapter", "ip_adapter_scale", "ip_adapter_image", "ip_adapter_style_images"):
        body.pop(name, None)
    name, value = rng.choice(INVALID_CHANGES)
    body[name] = value
    return json.dumps(body).encode()


def png_size(png: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's header, or None if it is not a PNG."""
    if len(png) < 24 or not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def error_kind(exc: Exception) -> str:
    """A client error's kind: its class and the fixed start of its message (no byte dumps,
    counts or addresses), e.g. ``RemoteProtocolError: illegal status line``."""
    message = re.split(r"[:(\[]", str(exc), maxsplit=1)[0]
    message = re.sub(r"\s+", " ", re.sub(r"\d+", "N", message)).strip(" .")[:60]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _short(response: httpx.Response) -> str:
    return response.content[:200].decode("utf-8", "replace")


class Load:
    """C clients against one server, counting everything into a Tally."""

    def __init__(self, base_url: str, options: SoakOptions, http: httpx.AsyncClient) -> None:
        self.base = base_url.rstrip("/")
        self.options = options
        self.http = http
        self.tally = Tally()
        self.stop = asyncio.Event()

    # One request: an answer (counted by status), or None (counted by error kind).
    async def call(
        self,
        endpoint: str,
        method: str,
        url: str,
        *,
        key: str | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response | None:
        sent = {**({"API-Key": key} if key else {}), **(headers or {})}
        try:
            response = await self.http.request(method, url, content=content, headers=sent)
        except httpx.HTTPError as exc:
            self.tally.client_errors[endpoint][error_kind(exc)] += 1
            return None
        except (OSError, ValueError) as exc:  # anything a broken answer raises unwrapped
            self.tally.client_errors[endpoint]["unwrapped " + error_kind(exc)] += 1
            return None
        self.tally.requests[endpoint][str(response.status_code)] += 1
        if response.status_code >= 500 and not fault_answer(response.status_code, response.content):
            self.finding(
                "unexpected_5xx",
                f"{method} {urlsplit(url).path}: {response.status_code} {_short(response)}",
            )
        return response

    def finding(self, kind: str, text: str, keep: int = 50) -> None:
        """Count a finding of ``kind`` (one of FINDINGS); keep the first ``keep`` texts."""
        self.tally.found[kind] += 1
        examples: list[str] = getattr(self.tally, kind)
        if len(examples) < keep:
            examples.append(text)

    def json_of(self, endpoint: str, response: httpx.Response) -> dict[str, Any] | None:
        try:
            body = response.json()
        except ValueError:
            self.tally.client_errors[endpoint]["bad-json"] += 1
            return None
        if not isinstance(body, dict):
            self.tally.client_errors[endpoint]["bad-json"] += 1
            return None
        return body

    @staticmethod
    def backoff(rng: random.Random, errors_in_a_row: int) -> float:
        return min(5.0, 0.2 * 2.0 ** (errors_in_a_row - 1)) * rng.uniform(0.5, 1.0)

    async def pause(self, seconds: float) -> None:
        """Sleep between tasks; cut short when the load ends."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def call_until_answered(
        self,
        endpoint: str,
        url: str,
        rng: random.Random,
        *,
        key: str | None = None,
        method: str = "GET",
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        attempts: int = 8,
    ) -> httpx.Response | None:
        """A request retried on client errors, 5xx and 429 (Retry-After honoured); the
        first other answer, or None once ``attempts`` are spent."""
        for attempt in range(1, attempts + 1):
            response = await self.call(
                endpoint, method, url, key=key, content=content, headers=headers
            )
            retryable = response is None or response.status_code == 429
            retryable |= response is not None and response.status_code >= 500
            if not retryable:
                return response
            wait = _retry_after(response) if response is not None else None
            if attempt < attempts:
                await asyncio.sleep(wait if wait is not None else self.backoff(rng, attempt))
        return None

    async def client(self, index: int) -> None:
        rng = random.Random(f"{self.options.seed}/{index}")
        key = f"soak-{index:03d}"
        try:
            while not self.stop.is_set():
                roll = rng.random()
                if roll < 0.06:
                    await self.invalid_submit(rng, key)
                elif roll < 0.10:
                    await self.unknown_id(rng, key)
                else:
                    await self.job(rng, key)
        except Exception as exc:  # a bug here must fail the soak, not end a client quietly
            self.finding("crashes", f"client {index}: {type(exc).__name__}: {exc}")

    async def fill(self, index: int, full: Callable[[], bool]) -> None:
        """A warm-up client: jobs of the load's own bodies, SUCCESS at once (named by the
        scenario header, so the chaos mix is not drawn), and their images, until ``full``."""
        rng = random.Random(f"{self.options.seed}/warm-up/{index}")
        key, warm = f"soak-{index:03d}", self.tally.warmup
        try:
            while not full():
                body = valid_body(rng)
                response = await self.call_until_answered(
                    "POST submit (warm-up)",
                    self.base + SUBMIT_PATH,
                    rng,
                    key=key,
                    method="POST",
                    content=json.dumps(body).encode(),
                    headers={SCENARIO_HEADER: "success"},
                )
                if response is None:
                    continue
                answer = self.json_of("POST submit (warm-up)", response)
                urls = answer.get("download_urls") if answer else None
                if response.status_code != 200 or not isinstance(urls, list):
                    self.finding(
                        "wrong_answers",
                        f"warm-up submit: {response.status_code} {_short(response)}",
                    )
                    continue
                warm["jobs"] += 1
                for url in urls if warm["image_bytes"] < self.options.warmup_image_bytes else ():
                    if not isinstance(url, str) or not url.startswith(self.base + "/"):
                        self.finding("wrong_answers", f"download URL {url!r}")
                        continue
                    image = await self.call_until_answered("GET image (warm-up)", url, rng)
                    if image is not None and png_size(image.content) is not None:
                        warm["images"] += 1
                        warm["image_bytes"] += len(image.content)
                    elif image is not None:
                        self.finding("wrong_answers", f"GET {url}: {image.status_code}")
        except Exception as exc:  # a bug here must fail the soak, not end a client quietly
            self.finding("crashes", f"warm-up {index}: {type(exc).__name__}: {exc}")

    async def invalid_submit(self, rng: random.Random, key: str) -> None:
        body = invalid_body(rng)
        endpoint = "POST submit (invalid body)"
        response = await self.call_until_answered(
            endpoint, self.base + SUBMIT_PATH, rng, key=key, method="POST", content=body
        )
        if response is not None and response.status_code != 400:
            self.finding(
                "wrong_answers",
                f"invalid body {body[:120]!r}: {response.status_code} {_short(response)}",
            )

    async def unknown_id(self, rng: random.Random, key: str) -> None:
        unknown = rng.randbytes(18).hex()
        if rng.random() < 0.5:
            endpoint, path = "GET status (unknown id)", STATUS_PATH.format(id=unknown)
        else:
            endpoint, path = "GET image (unknown id)", f"{IMAGE_PREFIX}{unknown}/0.png"
        response = await self.call_until_answered(endpoint, self.base + path, rng, key=key)
        if response is not None and response.status_code != 404:
            self.finding("wrong_answers", f"GET {path}: {response.status_code} {_short(response)}")

    async def job(self, rng: random.Random, key: str) -> None:
        body = valid_body(rng)
        tally, endpoint = self.tally, "POST submit"
        tally.jobs["submitted"] += 1
        submitted_at = time.monotonic()
        response = await self.call(
            endpoint, "POST", self.base + SUBMIT_PATH, key=key, content=json.dumps(body).encode()
        )
        if response is None:
            tally.jobs["lost"] += 1  # the job may exist: a client must not submit it again
            return
        status = response.status_code
        if status in (400, 404, 413):
            tally.jobs["lost"] += 1
            self.finding("wrong_answers", f"valid body {body}: {status} {_short(response)}")
            return
        if status >= 300:
            tally.jobs["refused"] += 1
            await self.pause(_retry_after(response) or self.options.poll_interval)
            return
        answer = self.json_of(endpoint, response)
        if answer is None or not isinstance(answer.get("id"), str):
            tally.jobs["lost"] += 1
            if answer is not None:
                self.finding("wrong_answers", f"submit answered {status} {_short(response)}")
            return
        tally.jobs["accepted"] += 1
        job_id = answer["id"]
        if answer.get("status") == "PENDING":
            answer = await self.follow(rng, key, job_id, submitted_at)
            if answer is None:
                return
        outcome = answer.get("status")
        if outcome in ("FAILURE", "SUCCESS"):
            tally.finals[job_id] = (key, outcome)
        if outcome == "FAILURE":
            tally.jobs["failure"] += 1
        elif outcome == "SUCCESS":
            tally.jobs["success"] += 1
            await self.download(rng, answer, body)
        else:
            tally.jobs["wrong"] += 1
            self.finding("wrong_answers", f"job {job_id}: status {outcome!r}")

    async def follow(
        self, rng: random.Random, key: str, job_id: str, submitted_at: float
    ) -> dict[str, Any] | None:
        """Poll a job until it is final (its last answer) or counted otherwise (None)."""
        tally, endpoint = self.tally, "GET status"
        url = self.base + STATUS_PATH.format(id=job_id)
        deadline = submitted_at + self.options.job_bound
        wait, errors_in_a_row = self.options.poll_interval, 0
        while True:
            if time.monotonic() + wait > deadline:
                tally.jobs["not_final"] += 1
                self.finding(
                    "not_final",
                    f"job {job_id} (key {key}) still not final "
                    f"{time.monotonic() - submitted_at:.0f} s after its submit",
                )
                return None
            await asyncio.sleep(wait)
            wait = self.options.poll_interval
            response = await self.call(endpoint, "GET", url, key=key)
            if response is None:
                errors_in_a_row += 1
                wait = self.backoff(rng, errors_in_a_row)
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                errors_in_a_row += 1
                wait = max(_retry_after(response) or 0.0, self.backoff(rng, errors_in_a_row))
                continue
            if status == 404:
                tally.jobs["vanished"] += 1
                self.finding("not_final", f"job {job_id} forgotten: 404 {_short(response)}")
                return None
            if status == 410:
                tally.jobs["expired"] += 1
                return None
            if status != 200:
                tally.jobs["wrong"] += 1
                self.finding("wrong_answers", f"poll of {job_id}: {status} {_short(response)}")
                return None
            answer = self.json_of(endpoint, response)
            if answer is None or answer.get("id") != job_id:
                if answer is not None:
                    tally.client_errors[endpoint]["bad-shape"] += 1
                errors_in_a_row += 1
                wait = self.backoff(rng, errors_in_a_row)
                continue
            errors_in_a_row = 0
            if answer.get("status") != "PENDING":
                return answer

    async def recheck(self, most: int) -> int:
        """Poll again up to ``most`` jobs followed to their outcome (a random pick, 8 at a
        time): each must answer the same outcome, never a second one. Jobs the store has
        dropped since (its bound) or whose time is over are passed by. How many compared."""
        tally, rng = self.tally, random.Random(f"{self.options.seed}/recheck")
        picked = list(tally.finals.items())
        picked = rng.sample(picked, min(most, len(picked)))
        compared = 0

        async def one(job_id: str, key: str, outcome: str) -> None:
            nonlocal compared
            url = self.base + STATUS_PATH.format(id=job_id)
            response = await self.call_until_answered("GET status (again)", url, rng, key=key)
            if response is None or response.status_code in (404, 410):
                return
            answer = self.json_of("GET status (again)", response) or {}
            compared += 1
            if response.status_code != 200 or answer.get("status") != outcome:
                self.finding(
                    "answered_twice",
                    f"job {job_id} answered {outcome}, later {response.status_code} "
                    f"{_short(response)}",
                )

        for start in range(0, len(picked), 8):
            batch = picked[start : start + 8]
            await asyncio.gather(*(one(job_id, key, out) for job_id, (key, out) in batch))
        return compared

    async def download(
        self, rng: random.Random, answer: dict[str, Any], body: dict[str, Any]
    ) -> None:
        tally = self.tally
        urls = answer.get("download_urls")
        if not isinstance(urls, list) or len(urls) != body["samples"]:
            self.finding("wrong_answers", f"SUCCESS with download_urls {urls!r}")
            return
        for url in urls:
            if not isinstance(url, str) or not url.startswith(self.base + "/"):
                self.finding("wrong_answers", f"download URL off this server: {url!r}")
                continue
            response = await self.call_until_answered("GET image", url, rng)
            if response is None:
                tally.images["given_up"] += 1
                continue
            size = png_size(response.content)
            if response.status_code != 200 or size != (body["width"], body["height"]):
                self.finding(
                    "wrong_answers",
                    f"GET {url}: {response.status_code}, PNG size {size}, "
                    f"asked {body['width']}x{body['height']}",
                )
                continue
            tally.images["downloaded"] += 1
            tally.image_bytes += len(response.content)
            etag = response.headers.get("etag")
            if etag and rng.random() < 0.25:
                again = await self.call_until_answered(
                    "GET image (If-None-Match)", url, rng, headers={"If-None-Match": etag}
                )
                if again is None:
                    tally.images["given_up"] += 1
                elif again.status_code == 304:
                    tally.images["not_modified"] += 1
                else:
                    self.finding(
                        "wrong_answers",
                        f"GET {url} with If-None-Match {etag}: {again.status_code}, not 304",
                    )
