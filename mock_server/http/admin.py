"""The admin API under /__mock/: reset, scenario queue, clock, journal, report, jobs, generation.

Each route reads its request, calls ``mock_server.state.admin.Admin`` (the admin logic,
which the in-process harness calls too) and answers JSON; a refusal is a 400 (404 for an
unknown job) whose error is ``admin API: `` and the refusal's message.

Open to loopback clients only, unless an admin token is set: then every admin call
must carry it in X-Ipmock-Admin-Token, from wherever it comes.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mock_server.errors import ApiError
from mock_server.state import MockState, mock_state
from mock_server.state.admin import Admin, AdminRefused
from mock_server.words import did_you_mean, shorten

ADMIN_TOKEN_HEADER = "x-ipmock-admin-token"


def _guard(request: Request) -> MockState:
    state = mock_state(request)
    token = state.settings.admin_token
    if token is not None:
        sent = request.headers.get(ADMIN_TOKEN_HEADER, "")
        if not hmac.compare_digest(sent.encode(), token.reveal().encode()):
            raise ApiError(
                403, "unauthorized", f"admin API: send the admin token in {ADMIN_TOKEN_HEADER}"
            )
        return state
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host in ("localhost", "testclient")
    if not loopback:
        raise ApiError(
            403,
            "unauthorized",
            "admin API is open to loopback clients only; "
            "start the server with --admin-token to allow others",
        )
    return state


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_request", "admin API: the body is not valid JSON") from None


def _admin(request: Request) -> Admin:
    return Admin(_guard(request))


def _refused(exc: AdminRefused) -> ApiError:
    return ApiError(exc.status, exc.code, f"admin API: {exc.message}")


async def reset(request: Request) -> Response:
    """POST: forget the jobs, the queue, the journal and the image cache; the clock's
    offset and the seeded mixes start over."""
    await _admin(request).reset()
    return JSONResponse({"reset": True})


async def scenarios(request: Request) -> Response:
    """GET: every scenario, its test key, and the default."""
    return JSONResponse(_admin(request).scenarios())


async def queue(request: Request) -> Response:
    """GET: the queue. POST {"scenarios": [name or object, ...]}: append. DELETE: empty it."""
    admin = _admin(request)
    if request.method == "POST":
        body = await _json_body(request)
        usage = 'send {"scenarios": [name or scenario object, ...]}'
        unknown = [k for k in body if k != "scenarios"] if isinstance(body, dict) else []
        if unknown:
            names = ", ".join(
                f"{shorten(k)!r}{did_you_mean(k, ['scenarios'])}" for k in unknown[:10]
            )
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise ApiError(
                400,
                "invalid_request",
                f"admin API: unknown key{'s' * (len(unknown) > 1)} {names}{more}: {usage}",
            )
        specs = body.get("scenarios") if isinstance(body, dict) else body
        if not isinstance(specs, list) or not specs:
            raise ApiError(400, "invalid_request", f"admin API: {usage}")
        try:
            queued = await admin.queue(specs)
        except AdminRefused as exc:
            raise _refused(exc) from None
    else:
        if request.method == "DELETE":
            await admin.clear_queue()
        queued = await admin.queued()
    return JSONResponse({"queue": [s.to_json() for s in queued]})


async def clock(request: Request) -> Response:
    """GET: the mock's time. POST {"advance": seconds}: move it forward; {"set": time}:
    set it (seconds since the epoch or an ISO 8601 time with its zone, back too);
    {"freeze": true/false}: stop it or let it run on. Several at once: set, advance,
    then freeze."""
    admin = _admin(request)
    changes = await _json_body(request) if request.method == "POST" else None
    try:
        return JSONResponse(await admin.clock(changes))
    except AdminRefused as exc:
        raise _refused(exc) from None


async def journal(request: Request) -> Response:
    """GET: the journal, oldest first (?path=P keeps paths starting with P). DELETE: clear."""
    admin = _admin(request)
    if request.method == "DELETE":
        await admin.clear_journal()
    entries = await admin.journal(request.query_params.get("path", ""))
    return JSONResponse({"entries": entries})


REPORT_PARAMS = ("poll_floor", "deadline", "key")


async def report(request: Request) -> Response:
    """GET: each client's traffic judged by the client properties, per client and per job
    (?poll_floor=S&deadline=S: what clients are held to; ?key=ID: one client's id)."""
    admin = _admin(request)
    query = request.query_params
    unknown = [k for k in query if k not in REPORT_PARAMS]
    if unknown:
        names = ", ".join(f"{shorten(k)!r}{did_you_mean(k, REPORT_PARAMS)}" for k in unknown[:10])
        raise ApiError(
            400,
            "invalid_request",
            f"admin API: unknown parameter{'s' * (len(unknown) > 1)} {names}; "
            f"known: {', '.join(REPORT_PARAMS)}",
        )
    seconds: dict[str, float] = {}
    for name in ("poll_floor", "deadline"):
        if name in query:
            try:
                seconds[name] = float(query[name])
            except ValueError:
                raise ApiError(
                    400,
                    "invalid_request",
                    f"admin API: {name} must be a number of seconds, "
                    f"got {json.dumps(shorten(query[name]))}",
                ) from None
    try:
        return JSONResponse(await admin.report(**seconds, client=query.get("key")))
    except AdminRefused as exc:
        raise _refused(exc) from None


async def jobs(request: Request) -> Response:
    """GET: every stored job."""
    return JSONResponse({"jobs": await _admin(request).jobs()})


async def job(request: Request) -> Response:
    """GET: one stored job, by id."""
    admin = _admin(request)
    try:
        return JSONResponse(await admin.job(request.path_params["id"]))
    except AdminRefused as exc:
        raise _refused(exc) from None


async def generation(request: Request) -> Response:
    """GET: how many jobs the generator has yet to settle (queued or running)."""
    return JSONResponse({"waiting": await _admin(request).generation()})


async def index(request: Request) -> Response:
    """GET: this list of the admin routes."""
    _guard(request)
    routes = [r for r in admin_routes() if isinstance(r, Route)]
    return JSONResponse(
        {
            "routes": [
                {
                    "path": r.path,
                    "methods": sorted((r.methods or set()) - {"HEAD"}),
                    "description": _summary(r.endpoint.__doc__),
                }
                for r in routes
            ]
        }
    )


def _summary(doc: str | None) -> str:
    """A docstring's first paragraph, on one line."""
    return " ".join((doc or "").strip().split("\n\n", 1)[0].split())


def admin_routes() -> list[BaseRoute]:
    return [
        Route("/__mock/", index, methods=["GET"]),
        Route("/__mock/reset", reset, methods=["POST"]),
        Route("/__mock/scenarios", scenarios, methods=["GET"]),
        Route("/__mock/queue", queue, methods=["GET", "POST", "DELETE"]),
        Route("/__mock/clock", clock, methods=["GET", "POST"]),
        Route("/__mock/journal", journal, methods=["GET", "DELETE"]),
        Route("/__mock/report", report, methods=["GET"]),
        Route("/__mock/jobs", jobs, methods=["GET"]),
        Route("/__mock/jobs/{id}", job, methods=["GET"]),
        Route("/__mock/generation", generation, methods=["GET"]),
    ]
