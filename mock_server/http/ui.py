"""The dashboard at /__mock/ui: a static page (``ui_files/``) that draws the admin API.

The page, its script and its style hold no data: everything it shows it fetches from the
guarded admin routes, sending the admin token (which the page asks for when the server has
one) in X-Ipmock-Admin-Token, never in a URL. Without a token the page is served to
loopback clients only, as the admin API is. Its one route of its own is a job's image for
the thumbnails, guarded the same way and left out of the journal (it is under /__mock/),
so that looking at a job never counts as its client's download.

Every answer carries a Content-Security-Policy that allows scripts and styles from this
server only: no inline script runs, whatever a client's prompt smuggles into a page.
"""

from __future__ import annotations

import html
import re
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mock_server.contract import IMAGE_PREFIX, STATUS_PREFIX, SUBMIT_PATH
from mock_server.errors import ApiError
from mock_server.http.admin import ADMIN_TOKEN_HEADER, _guard
from mock_server.state import mock_state
from mock_server.words import shorten

UI_PATH = "/__mock/ui"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
"""Scripts, styles and data from this server only; thumbnails as blob: URLs; no inline
script or style, no framing, no form posted anywhere."""

_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_ASSETS = {
    **dict.fromkeys(("ui.js", "dom.js", "journal.js", "jobs.js", "report.js"), "text/javascript"),
    "ui.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
"""The page's files besides index.html: ui.js and the modules it imports, style, icon."""
_IMAGE_FILE = re.compile(r"([0-9])\.png")


@cache
def _file(name: str) -> str:
    return resources.files("mock_server.http").joinpath("ui_files", name).read_text("utf-8")


@cache
def _index() -> str:
    """index.html with the API's paths (from the contract, never from a client) filled in."""
    page = _file("index.html")
    for placeholder, value in (
        ("{submit_path}", SUBMIT_PATH),
        ("{status_prefix}", STATUS_PREFIX),
        ("{image_prefix}", IMAGE_PREFIX),
        ("{token_header}", ADMIN_TOKEN_HEADER),
    ):
        page = page.replace(placeholder, html.escape(value))
    return page


def _page_guard(request: Request) -> None:
    """The admin API's rule for the page: loopback only, unless the server has a token
    (then the page is served to anyone, and asks for the token before it shows data)."""
    if mock_state(request).settings.admin_token is None:
        _guard(request)


async def index(request: Request) -> Response:
    """GET: the dashboard."""
    _page_guard(request)
    return Response(_index(), media_type="text/html; charset=utf-8", headers=_SECURITY_HEADERS)


async def asset(request: Request) -> Response:
    """GET: the dashboard's script, style or icon (asked for here, so that a browser's
    /favicon.ico never lands in the journal as a client's request)."""
    _page_guard(request)
    name = request.path_params["name"]
    media_type = _ASSETS.get(name)
    if media_type is None:
        allowed = ", ".join(_ASSETS)
        raise ApiError(404, "not_found", f"no dashboard file {shorten(name)!r} (one of {allowed})")
    return Response(_file(name), media_type=media_type, headers=_SECURITY_HEADERS)


async def thumbnail(request: Request) -> Response:
    """GET: sample N of a SUCCESS job, for the dashboard's thumbnails (guarded, not
    journaled, never counted as a download, whatever its URL's lifetime)."""
    state = _guard(request)
    job_id, file_name = request.path_params["job_id"], request.path_params["file_name"]
    job = await state.store.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"admin API: no job {shorten(job_id)!r}")
    match = _IMAGE_FILE.fullmatch(file_name)
    if match is None or int(match.group(1)) >= job.samples:
        raise ApiError(
            404,
            "not_found",
            f"admin API: no image {shorten(file_name)!r} for job {shorten(job_id)!r} "
            f"(0.png to {job.samples - 1}.png)",
        )
    if job.state != "SUCCESS":
        raise ApiError(
            404, "not_found", f"admin API: job {shorten(job_id)!r} is {job.state}, not SUCCESS"
        )
    rendered = await state.generator.image(job, int(match.group(1)))
    return Response(rendered.png, media_type="image/png", headers=_SECURITY_HEADERS)


def ui_routes() -> list[BaseRoute]:
    return [
        Route(UI_PATH, index, methods=["GET"]),
        Route(UI_PATH + "/thumbnails/{job_id}/{file_name}", thumbnail, methods=["GET"]),
        Route(UI_PATH + "/{name}", asset, methods=["GET"]),
    ]
