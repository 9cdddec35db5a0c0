"""The mock API as a Starlette app: submit, poll, download, and the contract document.

A submit goes: API key -> scenario named by the request (header, test key) -> body read
(size-limited) -> validation -> scenario for the body (queue, rules, chaos, default) ->
job stored -> the job's first answer. Every refusal is an ApiError, rendered as a
FAILURE body by one handler.
"""

from __future__ import annotations

import contextlib
import gc
import hmac
import json
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mock_server import contract, faults
from mock_server.admin import admin_routes
from mock_server.clock import Clock
from mock_server.config import load_book
from mock_server.errors import ApiError
from mock_server.generators import Generator, PlaceholderGenerator
from mock_server.images import ImageCache
from mock_server.jobs import Job, key_fingerprint, new_job_id
from mock_server.journal import Journal, JournalMiddleware, MemoryJournal
from mock_server.scenario_queue import MemoryQueue, ScenarioQueue
from mock_server.scenarios import TEST_KEY_PREFIX, Scenario, ScenarioBook, UnknownScenario
from mock_server.settings import Secret, Settings
from mock_server.state import MockState, mock_state
from mock_server.stores import JobStore, MemoryStore, StoreUnavailable
from mock_server.validation import InvalidRequest, validate

log = logging.getLogger("ipmock")

SUBMIT_PATH = "/sdxl/text2image/v1"
STATUS_PATH = "/sdxl/text2image/v1/status/{id}"
IMAGE_PATH = "/images/{job_id}/{file_name}"
_IMAGE_FILE = re.compile(r"([0-9])\.png")


def _api_key(state: MockState, request: Request) -> str:
    key = request.headers.get("api-key", "").strip()
    if not key:
        raise ApiError(401, "unauthorized", "missing API key: send it in the API-Key header")
    known = state.settings.api_keys
    if known and not key.startswith(TEST_KEY_PREFIX) and not _one_of(key, known):
        raise ApiError(401, "unauthorized", "invalid API key")
    return key


def _one_of(key: str, known: tuple[Secret, ...]) -> bool:
    # Compare with every key, in constant time each, so timing tells nothing.
    matches = [hmac.compare_digest(key.encode(), k.reveal().encode()) for k in known]
    return any(matches)


def _scenario_named_by(state: MockState, request: Request, key: str) -> Scenario | None:
    """The scenario the request itself names (header, test key); a refusal is raised."""
    try:
        scenario = state.book.by_request(request.headers, key)
    except UnknownScenario as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    if scenario is not None and scenario.refusal is not None:
        raise ApiError.refusal(scenario.refusal)
    return scenario


async def _read_body(request: Request, limit: int) -> bytes:
    too_large = ApiError(413, "payload_too_large", f"the body is larger than {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    try:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise too_large
    except ClientDisconnect:  # nobody is left to read an answer; no alarm either
        raise ApiError(
            400, "invalid_request", "the client closed the connection before the body ended"
        ) from None
    return bytes(body)


def _base_url(state: MockState, request: Request) -> str:
    """Where download URLs point: --public-url, else the scheme and Host the client used."""
    if state.settings.public_url:
        return state.settings.public_url.rstrip("/")
    host = request.headers.get("host")
    if not host:
        server_host, port = request.scope.get("server") or ("127.0.0.1", 80)
        host = f"[{server_host}]:{port}" if ":" in server_host else f"{server_host}:{port}"
    return _origin(request.scope.get("scheme", "http"), host, request.scope.get("root_path", ""))


@lru_cache(maxsize=256)
def _origin(scheme: str, host: str, root_path: str) -> str:
    return f"{scheme}://{host}{root_path}".rstrip("/")


_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _json_response(body: dict[str, Any], status_code: int = 200) -> Response:
    """The bytes JSONResponse sends, from one encoder made once (it makes one per answer)."""
    return Response(_JSON.encode(body).encode(), status_code, media_type="application/json")


def _job_body(state: MockState, job: Job, request: Request) -> dict[str, Any]:
    body: dict[str, Any] = {"status": job.state, "id": job.id}
    if job.state == "SUCCESS":
        base = _base_url(state, request)
        body["download_urls"] = [f"{base}/images/{job.id}/{i}.png" for i in range(job.samples)]
    elif job.state == "FAILURE":
        body["error"] = job.error or job.scenario.error
        body["code"] = "generation_failed"
    if job.warnings:
        body["warnings"] = list(job.warnings)
    if job.scenario.extra_fields:
        body |= {"eta": 12.5, "meta": {"queue_position": 3, "worker": "mock"}, "x_trace": "ab12"}
    return body


async def submit(request: Request) -> Response:
    state = mock_state(request)
    await state.clock.sync()
    key = _api_key(state, request)
    scenario = _scenario_named_by(state, request, key)
    raw = await _read_body(request, state.settings.max_body_bytes)
    try:
        accepted = validate(
            raw, strict=state.settings.strict, accept_model_uuid=state.settings.accept_model_uuid
        )
    except InvalidRequest as exc:
        raise ApiError(
            400,
            "invalid_request",
            f"invalid request: {exc}",
            errors=exc.errors,
            warnings=exc.warnings,
        ) from None
    generation = accepted.request
    scenario = scenario or await state.queue.pop() or state.book.for_body(generation.body)
    if scenario.refusal is not None:
        raise ApiError.refusal(scenario.refusal)
    now = state.clock.now()
    ttl = state.settings.job_ttl if scenario.expires_after is None else scenario.expires_after
    url_ttl = state.settings.url_ttl if scenario.url_ttl is None else scenario.url_ttl
    job = Job(
        id=new_job_id(),
        owner=key_fingerprint(key),
        scenario=scenario,
        request=generation.documented_body(),
        seed=generation.seed if generation.seed >= 0 else state.seeds.randrange(2**32),
        created_at=now,
        expires_at=now + ttl,
        forget_at=now + ttl + url_ttl,
        warnings=tuple(w.message for w in accepted.warnings),
    )
    job.settle(now)
    limit = state.settings.max_in_flight
    if not await state.store.add(job, max_in_flight=limit):
        raise ApiError(
            429,
            "rate_limited",
            f"too many jobs in flight for this API key (the limit is {limit}): "
            "poll them until they finish, then submit again",
            retry_after=1,
        )
    await state.generator.start(job, state.store)
    return _json_response(_job_body(state, job, request), 202 if job.state == "PENDING" else 200)


async def status(request: Request) -> Response:
    state = mock_state(request)
    await state.clock.sync()
    key = _api_key(state, request)
    _scenario_named_by(state, request, key)
    job_id = request.path_params["id"]
    job = await state.store.get(job_id)
    now = state.clock.now()
    if (
        job is None
        or now >= job.forget_at
        or not hmac.compare_digest(job.owner, key_fingerprint(key))
    ):
        raise ApiError(404, "not_found", f"no job with id {job_id!r} for this API key")
    if now >= job.expires_at:
        raise ApiError(410, "expired", f"job {job_id!r} has expired")
    job.status_requests += 1
    fault = state.book.fault_for(job.scenario, job.status_requests)
    if fault is not None:
        await state.store.save(job)
        faulted = await faults.answer(fault, request, state.clock, state.book.fault_rng)
        if faulted is not None:
            return faulted
    job.poll(state.clock.now())
    await state.store.save(job)
    return faults.paced(fault, _json_response(_job_body(state, job, request)), state.clock)


async def image(request: Request) -> Response:
    state = mock_state(request)
    await state.clock.sync()
    job_id, file_name = request.path_params["job_id"], request.path_params["file_name"]
    not_found = ApiError(404, "not_found", f"no image {file_name!r} for job {job_id!r}")
    match = _IMAGE_FILE.fullmatch(file_name)
    job = await state.store.get(job_id)
    if match is None or job is None or job.state != "SUCCESS" or job.finished_at is None:
        raise not_found
    sample = int(match.group(1))
    if sample >= job.samples:
        raise not_found
    url_ttl = job.scenario.url_ttl if job.scenario.url_ttl is not None else state.settings.url_ttl
    if state.clock.now() >= job.finished_at + url_ttl:
        raise ApiError(410, "expired", "this download URL has expired")
    rendered = await state.generator.image(job, sample)
    headers = {"ETag": rendered.etag, "Cache-Control": "private, max-age=3600"}
    if_none_match = request.headers.get("if-none-match", "")
    if if_none_match.strip() == "*" or rendered.etag in if_none_match:
        return Response(status_code=304, headers=headers)
    return Response(rendered.png, media_type="image/png", headers=headers)


async def openapi(request: Request) -> Response:
    return Response(contract.openapi_bytes(), media_type="application/json")


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
    message = {
        404: f"no such endpoint: {request.url.path}",
        405: f"method {request.method} is not allowed on {request.url.path}",
    }
    response = ApiError(exc.status_code, code, message.get(exc.status_code, exc.detail)).response()
    if exc.headers:  # a 405 carries Allow (RFC 9110)
        response.headers.update(exc.headers)
    return response


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return ApiError(
        503, "busy", "the service is briefly unavailable: try again shortly", retry_after=1
    ).response()


async def _unexpected(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, faults.ConnectionDropped):  # a drop is on purpose: no alarm
        log.exception("unexpected error on %s %s", request.method, request.url.path)
    return ApiError(500, "server_error", "internal error in the mock server").response()


Endpoint = Callable[[Request], Awaitable[Response]]


class HotRoutes:
    """Submit and poll, dispatched straight to their endpoints; everything else goes
    through the Starlette stack (``rest``). Errors get the same handlers as in the stack.

    ``mock_server.connection`` also answers these two routes without the ASGI stack:
    ``route`` and ``respond`` are what it calls.
    """

    _STATUS_PREFIX = STATUS_PATH.split("{")[0]

    def __init__(self, rest: ASGIApp, app: Starlette) -> None:
        self.rest, self.starlette = rest, app
        self.state: MockState = app.state.mock

    def route(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        """The endpoint and path parameters of a submit or a poll, else None."""
        if path == SUBMIT_PATH and method == "POST":
            return submit, {}
        if method == "GET" and path.startswith(self._STATUS_PREFIX):
            job_id = path[len(self._STATUS_PREFIX) :]
            if job_id and "/" not in job_id:
                return status, {"id": job_id}
        return None

    async def respond(self, endpoint: Endpoint, request: Request) -> Response:
        """The endpoint's answer, refusals and failures included; a deliberate
        ConnectionDropped is raised for the server to close the connection."""
        try:
            return await endpoint(request)
        except ApiError as exc:
            return exc.response()
        except StoreUnavailable as exc:
            return await _store_unavailable(request, exc)
        except faults.ConnectionDropped:
            raise
        except Exception as exc:
            return await _unexpected(request, exc)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.route(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if hot is None:
            await self.rest(scope, receive, send)
            return
        endpoint, scope["path_params"] = hot
        scope["app"] = self.starlette
        response = await self.respond(endpoint, Request(scope, receive))
        await response(scope, receive, send)


class _Starlette(Starlette):
    """Starlette with the journal outermost and the hot routes dispatched directly."""

    hot_routes: HotRoutes | None = None
    """Built with the middleware stack, at the first call (the lifespan's start)."""

    def build_middleware_stack(self) -> ASGIApp:
        state: MockState = self.state.mock
        self.hot_routes = HotRoutes(super().build_middleware_stack(), self)
        return JournalMiddleware(self.hot_routes, journal=state.journal, clock=state.clock)


def create_app(
    settings: Settings | None = None,
    *,
    store: JobStore | None = None,
    clock: Clock | None = None,
    book: ScenarioBook | None = None,
    generator: Generator | None = None,
) -> Starlette:
    """The mock server as an ASGI app; every collaborator injectable for tests.

    State lives where ``settings.store`` says: in this process ("memory"), or in Redis
    (a ``redis://`` URL), shared with every other worker using that Redis. ``generator``
    makes the images (default: the mock's labelled placeholders).
    """
    settings = settings or Settings()
    clock = clock or Clock()
    queue: ScenarioQueue = MemoryQueue()
    journal: Journal = MemoryJournal(settings.journal_size)
    if settings.store != "memory":
        from mock_server.redis_state import RedisState

        shared = RedisState.open(settings.store, journal_size=settings.journal_size)
        store = store or shared.store
        queue, journal = shared.queue, shared.journal
        clock.shared = shared.clock_offset
    images = ImageCache()
    if settings.backend == "workers" and generator is None:
        from mock_server.work_queue import QueuedGenerator, WorkQueue

        generator = QueuedGenerator(WorkQueue(shared.store), PlaceholderGenerator(images))
    generating = settings.backend != "mock"
    state = MockState(
        settings=settings,
        book=book
        or load_book(
            settings.config, seed=settings.seed, chaos=settings.chaos, generating=generating
        ),
        store=store or MemoryStore(settings.max_jobs),
        queue=queue,
        clock=clock,
        journal=journal,
        seeds=random.Random(settings.seed),
        images=images,
        generator=generator or PlaceholderGenerator(images),
    )
    if settings.store != "memory":
        state.closers.append(shared.client.aclose)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await state.aclose()

    app = _Starlette(
        routes=[
            Route(SUBMIT_PATH, submit, methods=["POST"]),
            Route(STATUS_PATH, status, methods=["GET"]),
            Route(IMAGE_PATH, image, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            *admin_routes(),
        ],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            StoreUnavailable: _store_unavailable,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # a wrong path is a JSON 404, never a redirect
    app.state.mock = state
    return app


def app_from_environ() -> Starlette:
    """The app for each ``ipmock serve --workers N`` process: settings from IPMOCK_*."""
    app = create_app(Settings.from_environ())
    prepare_to_serve()
    return app


def prepare_to_serve() -> None:
    """Build what the first request would (the compiled schema validator, the CLIP
    vocabulary), then freeze every object made so far out of the garbage collector's
    reach. They live as long as the server, and a full collection then walks only what
    requests made (mostly the stored jobs): about 27 ms less per full collection."""
    with contextlib.suppress(InvalidRequest):
        validate(b'{"model_id": "sdxl", "prompt": "warm up", "ip_adapter_scale": "0.5"}')
    gc.collect()
    gc.freeze()
