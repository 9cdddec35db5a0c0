"""The mock API as a Starlette app: submit and status (``mock_server.api``), image
downloads, the contract document and the admin API, with the journal outermost.

Every refusal is an ApiError; the app's exception handlers answer every exception with
``errors.answer_for``, the map ``api.respond`` uses too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mock_server import api, contract, fault_answers
from mock_server.clock import Clock
from mock_server.contract import IMAGE_PATH, STATUS_PATH, SUBMIT_PATH
from mock_server.errors import ApiError, answer_for
from mock_server.generators import Generator
from mock_server.http.admin import admin_routes
from mock_server.http.cors import CorsMiddleware, cors_for
from mock_server.http.journal import JournalMiddleware
from mock_server.http.ui import ui_routes
from mock_server.jobs import JOB_SCOPE_KEY
from mock_server.scenarios import SCENARIO_SCOPE_KEY, ScenarioBook
from mock_server.settings import Settings
from mock_server.state import JobStore, MockState, StoreUnavailable, mock_state, open_state
from mock_server.words import shorten

log = logging.getLogger("ipmock")

_IMAGE_FILE = re.compile(r"([0-9])\.png")


async def image(request: Request) -> Response:
    state = mock_state(request)
    await state.clock.sync()
    job_id, file_name = request.path_params["job_id"], request.path_params["file_name"]
    not_found = ApiError(
        404, "not_found", f"no image {shorten(file_name)!r} for job {shorten(job_id)!r}"
    )
    match = _IMAGE_FILE.fullmatch(file_name)
    job = await state.store.get(job_id)
    if match is None or job is None or job.state != "SUCCESS" or job.finished_at is None:
        raise not_found
    sample = int(match.group(1))
    if sample >= job.samples:
        raise not_found
    request.scope[JOB_SCOPE_KEY], request.scope[SCENARIO_SCOPE_KEY] = job.id, job.scenario.name
    url_ttl = job.scenario.url_ttl if job.scenario.url_ttl is not None else state.settings.url_ttl
    if state.clock.now() >= job.finished_at + url_ttl:
        raise ApiError(410, "expired", "this download URL has expired")
    fault = None
    if state.book.faults_on(job.scenario, "download"):  # else nothing counts downloads
        job.downloads += 1
        await state.store.save(job)
        fault = state.book.fault_for(job.scenario, job.downloads, "download")
    if fault is not None:
        faulted = await fault_answers.answer(
            fault, request.scope, state.clock, state.book.fault_rng
        )
        if faulted is not None:
            return faulted
    rendered = await state.generator.image(job, sample)
    headers = {"ETag": rendered.etag, "Cache-Control": "private, max-age=3600"}
    if_none_match = request.headers.get("if-none-match", "")
    if if_none_match.strip() == "*" or rendered.etag in if_none_match:
        return Response(status_code=304, headers=headers)
    answer = Response(rendered.png, media_type="image/png", headers=headers)
    return fault_answers.paced(fault, answer, state.clock)


async def openapi(request: Request) -> Response:
    return Response(contract.openapi_bytes(), media_type="application/json")


async def _answer_for(request: Request, exc: Exception) -> Response:
    return answer_for(exc, request.scope)


class HotRoutes:
    """Submit and status, dispatched straight to ``mock_server.api`` (past Starlette's
    routing and middleware); everything else goes through the Starlette stack (``rest``).

    ``mock_server.http.inplace`` answers the same two operations without the ASGI stack,
    with this object's ``state``.
    """

    def __init__(self, rest: ASGIApp, app: Starlette) -> None:
        self.rest, self.starlette = rest, app
        self.state: MockState = app.state.mock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = api.route(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if hot is None:
            await self.rest(scope, receive, send)
            return
        operation, job_id = hot
        scope["app"], scope["path_params"] = self.starlette, {"id": job_id} if job_id else {}
        request = api.ApiRequest.from_scope(scope, receive)
        response = await api.respond(self.state, operation, request)
        await response(scope, receive, send)


def _endpoint(operation: api.Operation) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint for an operation (HotRoutes answers first; the route is there
    so that the router answers 405 with Allow for the path's other methods)."""

    async def endpoint(request: Request) -> Response:
        parsed = api.ApiRequest.from_scope(request.scope, request.receive)
        return await api.respond(mock_state(request), operation, parsed)

    return endpoint


class _Starlette(Starlette):
    """Starlette with the journal outermost (but for CORS) and the hot routes dispatched
    directly."""

    hot_routes: HotRoutes | None = None
    """Built with the middleware stack, at the first call (the lifespan's start)."""

    def build_middleware_stack(self) -> ASGIApp:
        state: MockState = self.state.mock
        self.hot_routes = HotRoutes(super().build_middleware_stack(), self)
        stack = JournalMiddleware(self.hot_routes, journal=state.journal, clock=state.clock)
        cors = cors_for(state.settings.cors_origins)  # outside the journal: no preflights
        return stack if cors is None else CorsMiddleware(stack, cors)


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
    state = open_state(
        settings or Settings(), store=store, clock=clock, book=book, generator=generator
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await state.aclose()

    app = _Starlette(
        routes=[
            Route(SUBMIT_PATH, _endpoint(api.submit), methods=["POST"]),
            Route(STATUS_PATH, _endpoint(api.status), methods=["GET"]),
            Route(IMAGE_PATH, image, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            *admin_routes(),
            *ui_routes(),  # the dashboard at /__mock/ui
        ],
        exception_handlers=dict.fromkeys(
            (ApiError, HTTPException, StoreUnavailable, Exception), _answer_for
        ),
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # a wrong path is a JSON 404, never a redirect
    app.state.mock = state
    return app
