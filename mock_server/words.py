"""How the mock words values in its messages: echoed short, a schema said in words, a
misspelt name's closest match, and the leaves of nested data that messages point at."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any


def shorten(value: Any) -> Any:
    """A value as a refusal echoes it: a long string cut to its first 60 characters and
    its length, a large array or object to its item count."""
    if isinstance(value, str) and len(value) > 80:
        return f"{value[:60]}... ({len(value)} characters)"
    if isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False)
        if len(text) > 200:
            kind = "array of" if isinstance(value, list) else "object with"
            return f"<{kind} {len(value)} items>"
    return value


def closest(name: str, allowed: Iterable[str]) -> str | None:
    """The allowed name closest to a misspelt one, if any is close enough."""
    close = difflib.get_close_matches(name, list(allowed), n=1)
    return close[0] if close else None


def did_you_mean(name: str, allowed: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the allowed name closest to a misspelt one, or ""."""
    close = closest(name, allowed)
    return f" (did you mean {close!r}?)" if close is not None else ""


def leaves(node: Any) -> Iterator[tuple[list[str | int], Any]]:
    """Each value in nested objects and arrays that is neither, with its path of keys and
    indexes, in document order."""
    stack: list[tuple[list[str | int], Any]] = [([], node)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict | list):
            items = node.items() if isinstance(node, dict) else enumerate(node)
            stack.extend(reversed([([*path, key], value) for key, value in items]))
        else:
            yield path, node


_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "an array",
    "boolean": "true or false",
    "object": "an object",
    "null": "null",
}


def describe(schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> str:
    """What a (sub)schema accepts, in words: ``an integer from 1 to 4, a multiple of 8``.

    A ``$ref`` is followed into ``defs`` (the ``$defs`` of the schema it is part of).
    """
    if "title" in schema:
        return str(schema["title"])
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return describe((defs or {})[name], defs)
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    text = " or ".join(_TYPE_WORDS[t] for t in types) or "a value"
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        text += f" from {low} to {high}"
    elif low is not None:
        text += f" of at least {low}"
    elif high is not None:
        text += f" of at most {high}"
    if "multipleOf" in schema:
        text += f", a multiple of {schema['multipleOf']}"
    if "minLength" in schema:
        text += f", at least {schema['minLength']} character(s)"
    if "maxLength" in schema:
        text += f", at most {schema['maxLength']} characters"
    if "maxItems" in schema:
        text += f", at most {schema['maxItems']} items"
    if schema.get("uniqueItems"):
        text += ", each at most once"
    return text
