"""The API's answers in JSON: ApiError (a refusal, sent as a FAILURE body), ``answer_for``
(the one map from an exception to its answer) and the encoder and Response they use."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope

from mock_server.exceptions import IpmockError
from mock_server.faults import ConnectionDropped
from mock_server.scenarios import Refusal
from mock_server.state import StoreUnavailable
from mock_server.validation import FieldError
from mock_server.words import shorten

log = logging.getLogger("ipmock")

_FALLBACK = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode_json(body: Any) -> bytes:
    """Compact UTF-8 JSON, as Starlette's JSONResponse writes it, at orjson's speed.
    orjson refuses integers past 64 bits (a request's own values can be echoed in a
    refusal): those go through the standard encoder.

    The bytes are a copy of orjson's, which hold a 4 KiB buffer whatever their length:
    answers are kept (each job's, and the journal's), and 10,000 kept jobs took 36 MB
    more than with copies."""
    try:
        return memoryview(orjson.dumps(body)).tobytes()
    except orjson.JSONEncodeError:
        return _FALLBACK.encode(body).encode()


class JsonAnswer(Response):
    """A JSON answer whose bytes are ready: the status, headers and body Starlette's
    Response would send, without building them through its header machinery.

    The in-place protocol (``mock_server.http.inplace``) writes an answer of exactly this
    type straight to the socket; any other Response (a fault's: late, streamed, or no
    HTTP at all) it hands to an ASGI request cycle (``mock_server.http.cycle``)."""

    media_type = "application/json"

    def __init__(
        self, body: bytes, status_code: int = 200, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        self.status_code, self.body, self.background = status_code, body, None
        self.raw_headers = [
            (b"content-length", b"%d" % len(body)),
            (b"content-type", b"application/json"),
            *headers,
        ]


class ApiError(IpmockError):
    """A FAILURE answer: HTTP status, machine-readable code, message for a person."""

    def __init__(
        self,
        http_status: int,
        code: str,
        error: str,
        *,
        errors: list[FieldError] | None = None,
        warnings: list[FieldError] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(error)
        self.http_status, self.code, self.error = http_status, code, error
        self.errors, self.warnings, self.retry_after = errors, warnings, retry_after

    @classmethod
    def refusal(cls, refusal: Refusal) -> ApiError:
        return cls(
            refusal.http_status, refusal.code, refusal.error, retry_after=refusal.retry_after
        )

    def response(self) -> JsonAnswer:
        body: dict[str, Any] = {"status": "FAILURE", "error": self.error, "code": self.code}
        if self.errors:
            body["errors"] = [e.to_json() for e in self.errors]
        if self.warnings:
            body["warnings"] = [w.message for w in self.warnings]
        retry = () if self.retry_after is None else ((b"retry-after", b"%d" % self.retry_after),)
        return JsonAnswer(encode_json(body), self.http_status, retry)


def answer_for(exc: Exception, scope: Scope) -> JsonAnswer:
    """The API's one error map: the answer to an exception raised while answering the
    request of ``scope``. The engine (``api.respond``) and the app's exception handlers
    (``mock_server.http.app``) both answer with it.

    - ``ApiError``: its FAILURE body, status and Retry-After.
    - Starlette's ``HTTPException`` (the router's 404 and 405): a FAILURE body naming the
      path or the method; a 405 keeps its Allow header (RFC 9110).
    - ``StoreUnavailable``: 503 ``busy`` with Retry-After: 1, logged as a warning.
    - ``ConnectionDropped``: a 500, not logged (the drop is on purpose; the server closes
      the connection, and an answer already begun is not sent).
    - anything else: a 500, logged with its traceback (a bug).
    """
    if isinstance(exc, ApiError):
        return exc.response()
    if isinstance(exc, HTTPException):
        return _http_error(exc, scope)
    if isinstance(exc, StoreUnavailable):
        log.warning("%s %s: %s", scope["method"], scope["path"], exc)
        return ApiError(
            503, "busy", "the service is briefly unavailable: try again shortly", retry_after=1
        ).response()
    if not isinstance(exc, ConnectionDropped):
        log.error("unexpected error on %s %s", scope["method"], scope["path"], exc_info=exc)
    return ApiError(500, "server_error", "internal error in the mock server").response()


def _http_error(exc: HTTPException, scope: Scope) -> JsonAnswer:
    path, method = shorten(URL(scope=scope).path), shorten(scope["method"])
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
    message = {
        404: f"no such endpoint: {path}",
        405: f"method {method} is not allowed on {path}",
    }.get(exc.status_code, exc.detail)
    answer = ApiError(exc.status_code, code, message).response()
    if exc.headers:  # a 405 carries Allow (RFC 9110)
        answer.raw_headers += [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in exc.headers.items()
        ]
    return answer
