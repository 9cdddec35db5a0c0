"""Turns a raw request body into a GenerationRequest, or into every reason it is refused.

The pipeline is: parse (JSON whatever the content type, bounded depth, finite numbers)
-> normalise (comma strings to lists, "true"/"false" to booleans, defaults filled in,
all derived from the schema) -> JSON Schema -> the cross-field rules JSON Schema cannot
say -> warnings for what the docs do not promise (strict mode makes them errors).

One module a step: ``parse``, ``normalise``, ``explain`` (the schema's refusals in
words), ``rules`` (beyond JSON Schema; ``tokens`` counts CLIP tokens for them). ``schema``
loads the request schema and its validators once; ``outcome`` holds what comes out.
"""

from __future__ import annotations

from mock_server.validation.explain import compiled_errors, schema_errors
from mock_server.validation.normalise import fill_defaults, normalise
from mock_server.validation.outcome import (
    Accepted,
    FieldError,
    GenerationRequest,
    InvalidRequest,
    documented_body,
)
from mock_server.validation.parse import MAX_DEPTH, parse
from mock_server.validation.rules import beyond_schema
from mock_server.validation.schema import fast_validator

__all__ = [
    "MAX_DEPTH",
    "Accepted",
    "FieldError",
    "GenerationRequest",
    "InvalidRequest",
    "documented_body",
    "normalise",
    "validate",
]


def validate(raw: bytes, *, strict: bool = False, accept_model_uuid: bool = True) -> Accepted:
    """Validate a raw body. Raises InvalidRequest listing every problem found."""
    body = parse(raw)
    normalised = normalise(body)
    schema_ok = fast_validator().is_valid(normalised)
    errors = [] if schema_ok else schema_errors(normalised)
    warnings: list[FieldError] = []
    beyond_schema(normalised, errors, warnings, accept_model_uuid)
    if not schema_ok and not errors:
        errors = compiled_errors(normalised)  # never accept what the schema refuses
    if strict:
        errors.extend([w.refused() for w in warnings])
        warnings = []
    if errors:
        raise InvalidRequest(errors, warnings)
    fill_defaults(normalised)
    return Accepted(normalised, tuple(warnings))
