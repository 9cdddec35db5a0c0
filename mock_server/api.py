"""Submit and status, the API's two operations, over a parsed request and the mock's state.

The Starlette app (in process, and every request ``ipmock serve`` does not answer in
place) and the in-place HTTP protocol (``mock_server.http.inplace``) both call these, so
there is one engine. Both run once per request and are written for speed: one header
dict per request, answers encoded once, nothing built that the answer does not need.

A submit goes: API key -> scenario named by the request (header, test key) -> body read
(size-limited) -> validation -> the scenario (``ScenarioBook.choose``: the named one, else
queue, rules, chaos, default) -> the submit's fault, if it refuses (429, 503) -> job
stored -> the submit's other fault, if any (the job exists; its answer is lost, broken or
late) -> the job's first answer. A status request goes: API key -> the scenario the
request names, only for its refusal -> the key's job -> expiry -> the fault of this
request, if any -> poll -> the job's answer. Every refusal is an ApiError, which
``respond`` renders as a FAILURE body. The journal reads the job and scenario from the
request's scope.

The no-task rule: the in-place answers (``mock_server.http.inplace``) start ``respond``
by hand, on the event loop but outside any asyncio task, and hand it to an ASGI cycle (a
task, ``mock_server.http.cycle``) only once it awaits something. So nothing on the
submit and status path may need a task: no ``asyncio.timeout``, no anyio cancel scope or
task group, nothing that reads ``asyncio.current_task()``. With the state in this process
(the memory store, queue and journal, the placeholder generator) a request with no delay
fault awaits nothing at all; tests/mock_server/test_engine_needs_no_task.py drives
submits and polls so, outside any event loop.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from mock_server import fault_answers
from mock_server.contract import IMAGE_PREFIX, STATUS_PREFIX, SUBMIT_PATH
from mock_server.errors import ApiError, JsonAnswer, answer_for, encode_json
from mock_server.faults import REFUSING_FAULT_KINDS, ConnectionDropped
from mock_server.jobs import JOB_SCOPE_KEY, Job, key_fingerprint, new_job_id
from mock_server.scenarios import (
    REFUSALS,
    SCENARIO_SCOPE_KEY,
    TEST_KEY_PREFIX,
    Scenario,
    UnknownScenario,
)
from mock_server.settings import Secret
from mock_server.state import MockState
from mock_server.validation import InvalidRequest, documented_body, validate
from mock_server.words import shorten


class ApiRequest:
    """What submit and status read of a request: its ASGI scope (for the journal and the
    faults), its headers as a dict (lower-case names, the first of repeated ones) and its
    body, whole (the in-place protocol) or still to be received (ASGI)."""

    __slots__ = ("_body", "_receive", "headers", "scope")

    def __init__(
        self,
        scope: Scope,
        headers: dict[str, str],
        *,
        body: bytes | None = None,
        receive: Receive | None = None,
    ) -> None:
        self.scope, self.headers = scope, headers
        self._body, self._receive = body, receive

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> ApiRequest:
        return cls(scope, header_dict(scope["headers"]), receive=receive)

    async def body(self, limit: int) -> bytes:
        """The whole body; 413 past ``limit`` bytes, 400 if the client left mid-body."""
        if self._body is not None:
            if len(self._body) > limit:
                raise _too_large(limit)
            return self._body
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        assert self._receive is not None
        body = bytearray()
        try:
            async for chunk in Request(self.scope, self._receive).stream():
                body.extend(chunk)
                if len(body) > limit:
                    raise _too_large(limit)
        except ClientDisconnect:  # nobody is left to read an answer; no alarm either
            raise ApiError(
                400, "invalid_request", "the client closed the connection before the body ended"
            ) from None
        return bytes(body)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the body is larger than {limit} bytes")


def header_dict(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Headers by lower-case name; of a repeated header, the first (as Starlette reads it)."""
    return {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in reversed(raw)
    }


Operation = Callable[[MockState, ApiRequest], Awaitable[Response]]


def route(method: str, path: str) -> tuple[Operation, str] | None:
    """The operation of a submit or a status request, and the job id of a status one."""
    if path == SUBMIT_PATH:
        return (submit, "") if method == "POST" else None
    if method == "GET" and path.startswith(STATUS_PREFIX):
        job_id = path[len(STATUS_PREFIX) :]
        if job_id and "/" not in job_id:
            return status, job_id
    return None


async def respond(state: MockState, operation: Operation, request: ApiRequest) -> Response:
    """The operation's answer, refusals and failures included (``errors.answer_for``); a
    deliberate ConnectionDropped is raised for the server to close the connection."""
    try:
        return await operation(state, request)
    except ConnectionDropped:
        raise
    except Exception as exc:
        return answer_for(exc, request.scope)


def _api_key(state: MockState, request: ApiRequest) -> str:
    key = request.headers.get("api-key", "").strip()
    if not key:
        raise ApiError(401, "unauthorized", "missing API key: send it in the API-Key header")
    known = state.settings.api_keys
    if known and not key.startswith(TEST_KEY_PREFIX) and not _one_of(key, known):
        raise ApiError.refusal(REFUSALS["unauthorized"])
    return key


def _one_of(key: str, known: tuple[Secret, ...]) -> bool:
    # Compare with every key, in constant time each, so timing tells nothing.
    matches = [hmac.compare_digest(key.encode(), k.reveal().encode()) for k in known]
    return any(matches)


def _named_scenario(state: MockState, request: ApiRequest, key: str) -> Scenario | None:
    """The scenario the request names (header, test key: sources 1 and 2 of
    ``ScenarioBook.choose``), asked before the body is read, marked in the journal's scope.
    Raises a 400 for a name the book does not know and the refusal of a refusing one."""
    try:
        scenario = state.book.named_by_request(request.headers, key)
    except UnknownScenario as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    if scenario is not None:
        request.scope[SCENARIO_SCOPE_KEY] = scenario.name
        if scenario.refusal is not None:
            raise ApiError.refusal(scenario.refusal)
    return scenario


def _refuse_as_the_named_scenario_does(state: MockState, request: ApiRequest, key: str) -> None:
    """A status request's check of the scenario it names: a 400 for an unknown name, the
    refusal of a refusing one (a ``test_busy`` key refuses every call), else nothing."""
    _named_scenario(state, request, key)


def _base_url(state: MockState, request: ApiRequest) -> str:
    """Where download URLs point: --public-url, else the scheme and Host the client used
    (the server's own address when the Host is missing or not a host[:port])."""
    if state.settings.public_url:
        return state.settings.public_url.rstrip("/")
    scope = request.scope
    scheme, root_path = scope.get("scheme", "http"), scope.get("root_path", "")
    origin = _origin(scheme, request.headers.get("host", ""), root_path)
    if origin is None:
        server_host, port = scope.get("server") or ("127.0.0.1", 80)
        host = f"[{server_host}]" if ":" in server_host else server_host
        host += "" if port is None else f":{port}"
        origin = f"{scheme}://{host}{root_path}".rstrip("/")
    return origin


_HOST = re.compile(r"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
"""A Host header fit for a URL: a name or IPv4 address (RFC 3986's unreserved
characters) or a bracketed IPv6 address, and an optional port."""


@lru_cache(maxsize=256)
def _origin(scheme: str, host: str, root_path: str) -> str | None:
    """The base URL for a Host header, checked once per Host; None if it is not fit."""
    if not _HOST.fullmatch(host):
        return None
    return f"{scheme}://{host}{root_path}".rstrip("/")


def _job_answer(state: MockState, job: Job, request: ApiRequest) -> bytes:
    """The job's answer body, as the submit and status endpoints give it, encoded; made
    once for each state the job is in (and each base URL it is asked through)."""
    base = _base_url(state, request)
    cached = job.answer
    if cached is not None and cached[0] == job.state and cached[1] == base:
        return cached[2]
    answer = encode_json(_job_body(job, base))
    job.answer = (job.state, base, answer)
    return answer


def _job_body(job: Job, base_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {"status": job.state, "id": job.id}
    if job.state == "SUCCESS":
        images = f"{base_url}{IMAGE_PREFIX}{job.id}/"
        body["download_urls"] = [f"{images}{i}.png" for i in range(job.samples)]
    elif job.state == "FAILURE":
        body["error"] = job.error or job.scenario.error
        body["code"] = "generation_failed"
    if job.warnings:
        body["warnings"] = list(job.warnings)
    if job.scenario.extra_fields:
        body |= {"eta": 12.5, "meta": {"queue_position": 3, "worker": "mock"}, "x_trace": "ab12"}
    return body


async def submit(state: MockState, request: ApiRequest) -> Response:
    if state.clock.shared is not None:
        await state.clock.sync()
    key = _api_key(state, request)
    named = _named_scenario(state, request, key)  # refuses before the body is read
    raw = await request.body(state.settings.max_body_bytes)
    settings = state.settings
    try:
        accepted = validate(
            raw, strict=settings.strict, accept_model_uuid=settings.accept_model_uuid
        )
    except InvalidRequest as exc:
        raise ApiError(
            400,
            "invalid_request",
            f"invalid request: {exc}",
            errors=exc.errors,
            warnings=exc.warnings,
        ) from None
    body = accepted.body
    scenario = await state.book.choose(named, state.queue, body)
    scope = request.scope
    scope[SCENARIO_SCOPE_KEY] = scenario.name
    if scenario.refusal is not None:
        raise ApiError.refusal(scenario.refusal)
    fault = state.book.fault_for(scenario, 1, "submit")
    if fault is not None and fault.kind in REFUSING_FAULT_KINDS:  # refused: no job made
        await fault_answers.answer(fault, scope, state.clock, state.book.fault_rng)
    now = state.clock.now()
    ttl = settings.job_ttl if scenario.expires_after is None else scenario.expires_after
    url_ttl = settings.url_ttl if scenario.url_ttl is None else scenario.url_ttl
    job = Job(
        id=new_job_id(),
        owner=key_fingerprint(key),
        scenario=scenario,
        request=documented_body(body),
        seed=body["seed"] if body["seed"] >= 0 else state.seeds.randrange(2**32),
        created_at=now,
        expires_at=now + ttl,
        forget_at=now + ttl + url_ttl,
        warnings=tuple(w.message for w in accepted.warnings),
    )
    job.settle(now)
    limit = settings.max_in_flight
    if not await state.store.add(job, max_in_flight=limit):
        raise ApiError(
            429,
            "rate_limited",
            f"too many jobs in flight for this API key (the limit is {limit}): "
            "poll them until they finish, then submit again",
            retry_after=1,
        )
    scope[JOB_SCOPE_KEY] = job.id
    await state.generator.start(job, state.store)
    answer = JsonAnswer(_job_answer(state, job, request), 202 if job.state == "PENDING" else 200)
    if fault is None:
        return answer
    # The job exists and runs: the fault only loses, breaks or delays its answer.
    faulted = await fault_answers.answer(fault, scope, state.clock, state.book.fault_rng)
    return fault_answers.paced(fault, answer, state.clock) if faulted is None else faulted


async def status(state: MockState, request: ApiRequest) -> Response:
    if state.clock.shared is not None:
        await state.clock.sync()
    key = _api_key(state, request)
    _refuse_as_the_named_scenario_does(state, request, key)
    job_id: str = request.scope["path_params"]["id"]
    job = await state.store.get(job_id)
    now = state.clock.now()
    if (
        job is None
        or now >= job.forget_at
        or not hmac.compare_digest(job.owner, key_fingerprint(key))
    ):
        raise ApiError(404, "not_found", f"no job with id {shorten(job_id)!r} for this API key")
    request.scope[JOB_SCOPE_KEY], request.scope[SCENARIO_SCOPE_KEY] = job.id, job.scenario.name
    if now >= job.expires_at:
        raise ApiError(410, "expired", f"job {job_id!r} has expired")
    job.status_requests += 1
    fault = state.book.fault_for(job.scenario, job.status_requests)
    if fault is not None:
        await state.store.save(job)
        faulted = await fault_answers.answer(
            fault, request.scope, state.clock, state.book.fault_rng
        )
        if faulted is not None:
            return faulted
    job.poll(now if fault is None else state.clock.now())
    await state.store.save(job)
    answer = JsonAnswer(_job_answer(state, job, request))
    return answer if fault is None else fault_answers.paced(fault, answer, state.clock)
