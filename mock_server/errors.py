"""ApiError: every refusal the API answers, rendered as one FAILURE body."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from mock_server.scenarios import Refusal
from mock_server.validation import FieldError


class ApiError(Exception):
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

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"status": "FAILURE", "error": self.error, "code": self.code}
        if self.errors:
            body["errors"] = [e.to_json() for e in self.errors]
        if self.warnings:
            body["warnings"] = [w.message for w in self.warnings]
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return JSONResponse(body, self.http_status, headers=headers)
