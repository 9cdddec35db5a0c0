"""A well-behaved client of the text-to-image API, sync and async, on httpx.

It is the client the contract suite holds up as correct, and a base to copy. The
protocol is written once, as a generator that yields what to do (send a call, sleep)
and receives what happened; ``Text2ImageClient`` and ``AsyncText2ImageClient`` only
carry it out. What it promises:

- submits once: a refused submit (429, 503) is retried after Retry-After, but a submit
  whose answer was lost is never sent again (the job may exist: a second charge);
- polls no faster than ``poll_interval``, longer when Retry-After says so;
- rides out transient poll errors (5xx, dropped connections) up to ``max_retries`` in a row;
- gives up at ``deadline`` seconds with DeadlineExceeded;
- raises GenerationFailed carrying the server's message on FAILURE;
- returns exactly one image per download URL, riding out transient download errors
  (429 and 5xx after their Retry-After, dropped connections) up to ``max_retries``
  each, and ignores fields it does not know.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import httpx

from mock_server.contract import STATUS_PATH, SUBMIT_PATH

_TRANSIENT = frozenset({500, 502, 503, 504})


class ClientError(Exception):
    """Base of everything this client raises."""


class RequestRefused(ClientError):
    """The server refused the request (the message is the server's own)."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(f"{message} (HTTP {status_code})")
        self.status_code = status_code


class GenerationFailed(ClientError):
    """The job ended in FAILURE; ``str(exc)`` is the server's error message."""


class DeadlineExceeded(ClientError):
    """The job did not finish within the deadline."""


class SubmitUncertain(ClientError):
    """The submit's answer was lost: the job may exist, so it is not sent again."""


@dataclass(frozen=True)
class Policy:
    poll_interval: float = 2.0
    deadline: float = 300.0
    max_retries: int = 5


class _Call(NamedTuple):
    method: str
    url: str
    body: bytes | None = None


_Action = _Call | float  # a call to make, or seconds to sleep
_Result = httpx.Response | httpx.TransportError | None
_Steps = Generator[_Action, _Result, list[bytes]]


def _retry_after(response: httpx.Response, floor: float) -> float:
    try:
        return max(floor, float(response.headers.get("retry-after", "")))
    except ValueError:
        return floor


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise RequestRefused("the answer is not JSON", response.status_code) from None
    if not isinstance(body, dict):
        raise RequestRefused("the answer is not a JSON object", response.status_code)
    return body


def _protocol(
    base_url: str, request: Mapping[str, Any], policy: Policy, now: Callable[[], float]
) -> _Steps:
    base = base_url.rstrip("/")
    deadline = now() + policy.deadline

    def wait(seconds: float, why: str) -> float:
        if now() + seconds > deadline:
            raise DeadlineExceeded(f"gave up after {policy.deadline:g} s: {why}")
        return seconds

    # Submit: retried only when the server said it did nothing (429, 503).
    body_bytes = json.dumps(dict(request)).encode()
    while True:
        result = yield _Call("POST", base + SUBMIT_PATH, body_bytes)
        if isinstance(result, httpx.TransportError):
            raise SubmitUncertain(f"the submit's answer was lost ({result!r}); not re-sent")
        assert result is not None
        if result.status_code in (429, 503):
            yield wait(_retry_after(result, 1.0), f"submit refused with {result.status_code}")
            continue
        answer = _json(result)
        if result.status_code >= 400:
            raise RequestRefused(str(answer.get("error", "request refused")), result.status_code)
        break

    # Poll until the job ends.
    errors_in_a_row = 0
    pause = policy.poll_interval
    while answer.get("status") == "PENDING":
        job_id = str(answer["id"])
        yield wait(pause, f"job {job_id} still PENDING")
        pause = policy.poll_interval
        result = yield _Call("GET", base + STATUS_PATH.format(id=job_id))
        transient = isinstance(result, httpx.TransportError) or (
            result is not None and result.status_code in _TRANSIENT
        )
        if transient:
            errors_in_a_row += 1
            if errors_in_a_row > policy.max_retries:
                raise RequestRefused(f"status of job {job_id} failed {errors_in_a_row} times", 0)
            if isinstance(result, httpx.Response):
                pause = _retry_after(result, policy.poll_interval)
            continue
        assert isinstance(result, httpx.Response)
        if result.status_code == 429:
            pause = _retry_after(result, policy.poll_interval)
            continue
        errors_in_a_row = 0
        polled = _json(result)
        if result.status_code != 200:
            raise RequestRefused(str(polled.get("error", "status refused")), result.status_code)
        answer = polled

    if answer.get("status") == "FAILURE":
        raise GenerationFailed(str(answer.get("error", "generation failed")))
    if answer.get("status") != "SUCCESS":
        raise RequestRefused(f"unknown status {answer.get('status')!r}", 200)

    # Download each image, riding out transient errors (and 429s) after their Retry-After.
    images: list[bytes] = []
    for url in answer["download_urls"]:
        for attempt in range(policy.max_retries + 1):
            result = yield _Call("GET", url)
            pause = policy.poll_interval
            if isinstance(result, httpx.Response):
                if result.status_code == 200:
                    images.append(result.content)
                    break
                if result.status_code not in _TRANSIENT | {429}:
                    raise RequestRefused(f"download of {url} refused", result.status_code)
                pause = _retry_after(result, policy.poll_interval)
            if attempt == policy.max_retries:
                raise RequestRefused(f"download of {url} kept failing", 0)
            yield wait(pause, f"downloading {url}")
    return images


class Text2ImageClient:
    """Blocking client. ``sleep`` and ``monotonic`` are injectable for virtual time."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.Client | None = None,
        policy: Policy = Policy(),
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url, self.policy = base_url, policy
        self._http = http or httpx.Client(timeout=30.0)
        self._key, self._sleep, self._now = api_key, sleep, monotonic

    def generate(self, request: Mapping[str, Any]) -> list[bytes]:
        """Submit, poll, download: the PNG bytes of each sample, in order."""
        steps = _protocol(self.base_url, request, self.policy, self._now)
        result: _Result = None
        try:
            while True:
                action = steps.send(result)
                if isinstance(action, float | int):
                    self._sleep(action)
                    result = None
                    continue
                try:
                    result = self._http.request(
                        action.method,
                        action.url,
                        content=action.body,
                        headers={"API-Key": self._key},
                    )
                except httpx.TransportError as exc:
                    result = exc
        except StopIteration as done:
            images: list[bytes] = done.value
            return images


class AsyncText2ImageClient:
    """The same client for asyncio; ``sleep`` is a coroutine function."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.AsyncClient | None = None,
        policy: Policy = Policy(),
        sleep: Callable[[float], Any] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        import anyio

        self.base_url, self.policy = base_url, policy
        self._http = http or httpx.AsyncClient(timeout=30.0)
        self._key, self._now = api_key, monotonic
        self._sleep = sleep or anyio.sleep

    async def generate(self, request: Mapping[str, Any]) -> list[bytes]:
        steps = _protocol(self.base_url, request, self.policy, self._now)
        result: _Result = None
        try:
            while True:
                action = steps.send(result)
                if isinstance(action, float | int):
                    await self._sleep(action)
                    result = None
                    continue
                try:
                    result = await self._http.request(
                        action.method,
                        action.url,
                        content=action.body,
                        headers={"API-Key": self._key},
                    )
                except httpx.TransportError as exc:
                    result = exc
        except StopIteration as done:
            images: list[bytes] = done.value
            return images
