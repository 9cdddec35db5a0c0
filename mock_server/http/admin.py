"""The admin API under /__mock/: reset, scenario queue, clock, journal, jobs, generation.

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

from mock_server.clock import iso, parse_time
from mock_server.config import ConfigError, queued_scenario
from mock_server.errors import ApiError
from mock_server.scenarios import TEST_KEY_PREFIX
from mock_server.state import MockState, mock_state
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


async def reset(request: Request) -> Response:
    """POST: forget the jobs, the queue, the journal and the image cache; the clock's
    offset and the seeded mixes start over."""
    state = _guard(request)
    await state.store.clear()
    await state.queue.clear()
    await state.journal.clear()
    await state.clock.reset()
    state.book.reset()
    state.images.clear()
    return JSONResponse({"reset": True})


async def scenarios(request: Request) -> Response:
    """GET: every scenario, its test key, and the default."""
    state = _guard(request)
    return JSONResponse(
        {
            "default": state.book.default,
            "scenarios": [
                {**s.to_json(), "test_key": TEST_KEY_PREFIX + name}
                for name, s in state.book.scenarios.items()
            ],
        }
    )


async def queue(request: Request) -> Response:
    """GET: the queue. POST {"scenarios": [name or object, ...]}: append. DELETE: empty it."""
    state = _guard(request)
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
            resolved = [
                queued_scenario(state.book, s, f"scenarios.{i}") for i, s in enumerate(specs)
            ]
        except ConfigError as exc:
            raise ApiError(400, "invalid_request", f"admin API: {exc}") from None
        await state.queue.push(resolved)
    elif request.method == "DELETE":
        await state.queue.clear()
    return JSONResponse({"queue": [s.to_json() for s in await state.queue.queued()]})


async def clock(request: Request) -> Response:
    """GET: the mock's time. POST {"advance": seconds}: move it forward; {"set": time}:
    set it (seconds since the epoch or an ISO 8601 time with its zone, back too);
    {"freeze": true/false}: stop it or let it run on. Several at once: set, advance,
    then freeze."""
    state = _guard(request)
    await state.clock.sync()
    if request.method == "POST":
        body = await _json_body(request)
        if not isinstance(body, dict) or not body:
            raise ApiError(400, "invalid_request", f"admin API: {_CLOCK_USAGE}")
        unknown = [k for k in body if k not in _CLOCK_KEYS]
        if unknown:
            names = ", ".join(f"{shorten(k)!r}{did_you_mean(k, _CLOCK_KEYS)}" for k in unknown[:10])
            raise ApiError(
                400,
                "invalid_request",
                f"admin API: unknown key{'s' * (len(unknown) > 1)} {names}: {_CLOCK_USAGE}",
            )
        at = _clock_time(body["set"]) if "set" in body else None
        seconds = _clock_seconds(body["advance"]) if "advance" in body else None
        freeze = body.get("freeze")
        if "freeze" in body and not isinstance(freeze, bool):
            raise ApiError(
                400,
                "invalid_request",
                f"admin API: freeze must be true or false, got {json.dumps(shorten(freeze))}",
            )
        if at is not None:
            await state.clock.set(at)
        if seconds is not None:
            await state.clock.move(seconds)
        if freeze is True:
            await state.clock.freeze()
        elif freeze is False:
            await state.clock.unfreeze()
    now = state.clock.now()
    return JSONResponse(
        {
            "now": now,
            "time": iso(now),
            "offset": state.clock.offset,
            "frozen": state.clock.frozen,
        }
    )


_CLOCK_KEYS = ["advance", "set", "freeze"]
_CLOCK_USAGE = (
    'send {"advance": seconds} (0 to 1e9), {"set": seconds since the epoch or an ISO 8601 '
    'time such as "2030-01-01T00:00:00Z"} or {"freeze": true or false}'
)


def _clock_seconds(value: Any) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not (0 <= value <= 10**9)  # NaN fails too; JSON's Infinity is past 1e9
    ):
        raise ApiError(
            400,
            "invalid_request",
            "admin API: advance must be a number of seconds from 0 to 1e9 (the clock only "
            f"moves forward; set goes back), got {json.dumps(shorten(value))}",
        )
    return float(value)


def _clock_time(value: Any) -> float:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", f"admin API: set {exc}") from None


async def journal(request: Request) -> Response:
    """GET: the journal, oldest first (?path=P keeps paths starting with P). DELETE: clear."""
    state = _guard(request)
    if request.method == "DELETE":
        await state.journal.clear()
    prefix = request.query_params.get("path", "")
    entries = [e for e in await state.journal.entries() if e["path"].startswith(prefix)]
    return JSONResponse({"entries": entries})


async def jobs(request: Request) -> Response:
    """GET: every stored job."""
    state = _guard(request)
    return JSONResponse({"jobs": [j.to_json() for j in await state.store.jobs()]})


async def job(request: Request) -> Response:
    """GET: one stored job, by id."""
    state = _guard(request)
    found = await state.store.get(request.path_params["id"])
    if found is None:
        raise ApiError(
            404, "not_found", f"admin API: no job {shorten(request.path_params['id'])!r}"
        )
    return JSONResponse(found.to_json())


async def generation(request: Request) -> Response:
    """GET: how many jobs the generator has yet to settle (queued or running)."""
    state = _guard(request)
    return JSONResponse({"waiting": await state.generator.waiting()})


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
        Route("/__mock/jobs", jobs, methods=["GET"]),
        Route("/__mock/jobs/{id}", job, methods=["GET"]),
        Route("/__mock/generation", generation, methods=["GET"]),
    ]
