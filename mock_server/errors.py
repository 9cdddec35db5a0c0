"""ApiError, every refusal the API answers, and the JSON answers it and the API send."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import Response

from mock_server.exceptions import IpmockError
from mock_server.scenarios import Refusal
from mock_server.validation import FieldError

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
    Response would send, without building them through its header machinery."""

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
