"""Turns the wire's alternative spellings into the one form the schema checks (comma
strings to lists, "true"/"false" to booleans), and fills in the defaults once it passed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from mock_server.validation.schema import is_url_list, properties, types_of

_SPACE = " \t\n\r"  # what JSON Schema's patterns here call space; str.strip() takes more


def normalise(body: Mapping[str, Any]) -> dict[str, Any]:
    """The wire's alternative spellings, turned into one form, as the schema allows them.

    A comma-separated string becomes a list (of numbers, where the items are numbers);
    a lone number becomes a one-item list; a URL string becomes a one-URL list (URLs are
    never split: data: URLs hold commas); "true"/"false" become booleans.
    """
    out = dict(body)
    spellings = _spellings()
    for name, value in body.items():
        spelling = spellings.get(name)
        if spelling is None:
            continue
        if spelling.kind == "array":
            if isinstance(value, str):
                if spelling.url_list:
                    out[name] = [value] if value else []
                else:
                    number_pattern = spelling.number_pattern
                    if number_pattern is not None and not number_pattern.search(value):
                        continue  # left as it is, for the schema to refuse in words
                    pieces = (
                        [p.strip(_SPACE) for p in value.split(",")] if value.strip(_SPACE) else []
                    )
                    out[name] = [float(p) for p in pieces] if spelling.number_items else pieces
            elif spelling.number_items and _is_number(value):
                out[name] = [value]
        elif spelling.kind == "boolean":
            if value in ("true", "false"):
                out[name] = value == "true"
        elif isinstance(value, float) and value.is_integer():
            out[name] = int(value)  # 2.0 is a valid JSON Schema integer; keep it one
    return out


@dataclass(frozen=True, slots=True)
class _Spelling:
    """What normalise needs to know of a property it may rewrite (see _spellings)."""

    kind: str
    """One of "array" (the types include "array"), "boolean" (else, the types include
    "boolean") and "integer" (the type is "integer" alone)."""
    url_list: bool = False
    number_items: bool = False
    number_pattern: re.Pattern[str] | None = None
    """The string form's pattern, for an array of numbers that is not a URL list."""


@cache
def _spellings() -> dict[str, _Spelling]:
    """The properties normalise may rewrite, by name, worked out from the schema once."""
    spellings: dict[str, _Spelling] = {}
    for name, prop in properties().items():
        types = types_of(prop)
        if "array" in types:
            url_list = is_url_list(prop)
            number_items = prop.get("items", {}).get("type") == "number"
            pattern = re.compile(prop["pattern"]) if number_items and not url_list else None
            spellings[name] = _Spelling("array", url_list, number_items, pattern)
        elif "boolean" in types:
            spellings[name] = _Spelling("boolean")
        elif types == ["integer"]:
            spellings[name] = _Spelling("integer")
    return spellings


def fill_defaults(body: dict[str, Any]) -> None:
    for name, default in _defaults():
        if name not in body:
            body[name] = default


@cache
def _defaults() -> tuple[tuple[str, Any], ...]:
    """Each property with a default, and the default, in the schema's order."""
    return tuple(
        (name, prop["default"]) for name, prop in properties().items() if "default" in prop
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
