"""The baseline for bench/serve_throughput.py: bare Starlette on the same paths as ipmock.

Both routes answer a constant small JSON, so the gap between this app (under uvicorn) and
ipmock (its own server, on the same loop and parser) is what ipmock itself costs (key
check, validation with CLIP token count, scenario choice, job store, journal middleware).
The POST route reads the body, as any JSON API must.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mock_server.contract import STATUS_PATH, SUBMIT_PATH

_SUBMITTED = {"status": "PENDING", "id": "baseline-job-id-0000000"}
_POLLED = {"status": "SUCCESS", "id": "baseline-job-id-0000000"}


async def submit(request: Request) -> Response:
    await request.body()
    return JSONResponse(_SUBMITTED, status_code=202)


async def status(request: Request) -> Response:
    return JSONResponse(_POLLED)


app = Starlette(
    routes=[
        Route(SUBMIT_PATH, submit, methods=["POST"]),
        Route(STATUS_PATH, status, methods=["GET"]),
    ]
)
