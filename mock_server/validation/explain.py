"""Says in words, field by field, why the JSON Schema refuses a body: what each field
accepts and what was sent."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from jsonschema.exceptions import ValidationError

from mock_server.validation.outcome import FieldError
from mock_server.validation.schema import (
    explaining_validator,
    fast_validator,
    in_words,
    properties,
    request_schema,
)
from mock_server.words import shorten


def schema_errors(body: Mapping[str, Any]) -> list[FieldError]:
    """The schema's errors in words, field by field (the compiled validator said no).

    Errors from the top-level allOf (the adapter rules, one if/then per adapter count)
    are left out: the cross-field rules say the same about the fields concerned, better.
    """
    keep = _explained_items()
    cut = {k: v[:keep] for k, v in body.items() if isinstance(v, list) and len(v) > keep}
    explained = sorted(explaining_validator().iter_errors({**body, **cut}), key=_path_key)
    errors = _unique([_explain(e) for e in explained if list(e.schema_path)[:1] != ["allOf"]])
    return [_uncut(e, body[e.field]) if e.field in cut else e for e in errors]


@cache
def _explained_items() -> int:
    """How many items of an array the Python validator explains: more than any maxItems
    of the schema, so a too-long array is still too long, and a 100,000-item array costs
    what a short one does (explaining every item took seconds, and as many errors)."""
    limits: list[int] = []
    stack: list[Any] = [request_schema()]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("maxItems"), int):
                limits.append(node["maxItems"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return max([16, *limits]) + 1


def _uncut(error: FieldError, value: Any) -> FieldError:
    """An error about a whole array, told with the array sent, not the cut one."""
    if error.value is None:
        return error
    message = f"{error.field} must be {error.allowed}, got {_show(value)}"
    return FieldError(error.field, message, error.allowed, value)


def compiled_errors(body: Mapping[str, Any]) -> list[FieldError]:
    """The compiled validator's own errors, where nothing else explained its no.

    Python's regex dialect differs from JSON Schema's here and there (its "$" also
    matches before a final newline), so the Python validator can miss what it caught.
    """
    return _unique(
        [
            _explain_path(list(e.instance_path), body, e.message)
            for e in fast_validator().iter_errors(body)
        ]
    )


def _unique(errors: list[FieldError]) -> list[FieldError]:
    unique: dict[tuple[str, str], FieldError] = {}
    for error in errors:  # one value can break several keywords of one field
        unique.setdefault((error.field, error.message), error)
    return list(unique.values())


def _explain_path(path: list[str | int], body: Mapping[str, Any], detail: str) -> FieldError:
    """An error at ``path``, described by the schema of the field it is in."""
    if not path:
        return FieldError("", f"the body breaks a rule of the contract: {detail[:300]}")
    value: Any = body
    for step in path:
        value = value[step]
    name = ".".join(map(str, path))
    prop = properties().get(str(path[0]), {}) if path else {}
    allowed = in_words(prop) if prop else "a documented value"
    return FieldError(name, f"{name} must be {allowed}, got {_show(value)}", allowed, value)


def _path_key(error: ValidationError) -> list[str]:
    return [str(p) for p in error.absolute_path]


def _explain(error: ValidationError) -> FieldError:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        missing = error.message.split("'")[1]
        prop = properties().get(missing, {})
        return FieldError(missing, f"{missing} is required", in_words(prop))
    if not path:
        return FieldError("", _root_message(error))
    name = ".".join(path)
    # Errors inside a field describe the whole field when its title says it best.
    prop = properties().get(path[0], {}) if path else {}
    schema = error.schema if isinstance(error.schema, dict) else {}
    allowed = schema.get("title") or (prop.get("title") if len(path) == 1 else None)
    allowed = allowed or in_words(schema)
    return FieldError(
        name, f"{name} must be {allowed}, got {_show(error.instance)}", allowed, error.instance
    )


def _root_message(error: ValidationError) -> str:
    if error.validator == "maxProperties":
        fields = len(error.instance) if isinstance(error.instance, dict) else 0
        return f"the body has {fields} fields; at most {error.validator_value} are accepted"
    return f"the body is not acceptable: {error.message}"


def _show(value: Any) -> str:
    return json.dumps(shorten(value), ensure_ascii=False)
