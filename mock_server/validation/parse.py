"""Reads a raw body as a JSON object (whatever the content type, bounded in depth, every
number finite), and where it cannot, says why: where the body breaks, which field holds
an unusable number."""

from __future__ import annotations

import codecs
import itertools
import json
import math
import re
import sys
from dataclasses import dataclass
from typing import Any

import orjson

from mock_server.validation.outcome import MAX_UNKNOWN_FIELD_WARNINGS, FieldError, InvalidRequest
from mock_server.validation.schema import in_words, properties
from mock_server.words import leaves, shorten

MAX_DEPTH = 32
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constants(text: str) -> Any:
    raise ValueError(f"{text} is not valid JSON")


_JSON_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constants)
"""Built once: json.loads with these hooks builds a new decoder and scanner every call."""


def _utf8_text(raw: bytes) -> str:
    """``raw.decode("utf-8-sig")``, several times faster: that codec is Python code that
    strips one leading BOM, then decodes the rest as UTF-8 (error offsets count from there)."""
    if raw.startswith(codecs.BOM_UTF8):
        return raw[len(codecs.BOM_UTF8) :].decode("utf-8")
    return raw.decode("utf-8")


def _json_loads(text: str) -> Any:
    """``json.loads(text, parse_float=_finite_float, parse_constant=_no_constants)``,
    with the decoder built once."""
    if text.startswith("\ufeff"):  # what json.loads says of a BOM (a second one, here)
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _JSON_DECODER.decode(text)


def parse(raw: bytes) -> dict[str, Any]:
    """Parse the body as JSON, whatever the content type claimed.

    orjson reads it first, in a fifth of the time. What it reads is what the standard
    parser reads, but for integers past 64 bits (floats to orjson); and it refuses all
    the standard parser refuses, and more (a BOM, non-finite numbers, lone surrogates).
    So a body orjson refuses, or one holding a float that large, is parsed again by the
    standard parser, whose refusals say what is wrong.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _parse_slowly(raw)
    if type(body) is not dict or _may_hold_huge_integers(body):
        return _parse_slowly(raw)
    _refuse_deep_nesting(raw, body)
    return body


def _may_hold_huge_integers(body: dict[str, Any]) -> bool:
    """Whether a float of the body is as large as an integer orjson turns into one."""
    stack: list[Any] = [body]
    while stack:
        node = stack.pop()
        for value in node.values() if type(node) is dict else node:
            kind = type(value)
            if kind is float:
                if not -_HUGE < value < _HUGE:
                    return True
            elif kind is dict or kind is list:
                stack.append(value)
    return False


_HUGE = 2.0**63
"""orjson reads integers from -2**63 to 2**64 - 1 as integers, others as floats."""


def _parse_slowly(raw: bytes) -> dict[str, Any]:
    """``parse`` with the standard parser, whose refusals name the problem."""
    if not raw.strip():
        raise InvalidRequest([FieldError("", "the body is empty: send a JSON object")])
    try:
        text = _utf8_text(raw)
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            [FieldError("", f"the body is not valid UTF-8 (byte {exc.start})")]
        ) from None
    try:
        body = _json_loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            [
                FieldError(
                    "",
                    f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                    f"column {exc.colno}",
                )
            ]
        ) from None
    except RecursionError:
        raise InvalidRequest(
            [FieldError("", f"the body is nested deeper than {MAX_DEPTH}")]
        ) from None
    except ValueError:  # huge integers, non-finite floats, NaN
        raise InvalidRequest(_unusable_numbers(text)) from None
    if not isinstance(body, dict):
        raise InvalidRequest(
            [FieldError("", f"the body must be a JSON object, got {_json_type(body)}")]
        )
    # The regex needs a backslash; looking for one first is ten times faster.
    if "\\" in text and _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest(
                [
                    FieldError(
                        "",
                        "the body is not valid Unicode: it escapes a lone surrogate "
                        "(\\ud800-\\udfff without its pair)",
                    )
                ]
            ) from None
    _refuse_deep_nesting(raw, body)
    return body


@dataclass(frozen=True, slots=True)
class _Unusable:
    """A number the parser refuses, kept in its place by ``_LOCATING_DECODER``."""

    text: str


def _locating_float(text: str) -> float | _Unusable:
    value = float(text)
    return value if math.isfinite(value) else _Unusable(text)


def _locating_int(text: str) -> int | _Unusable:
    try:
        return int(text)
    except ValueError:  # more digits than int() reads
        return _Unusable(text)


_LOCATING_DECODER = json.JSONDecoder(
    parse_float=_locating_float, parse_int=_locating_int, parse_constant=_Unusable
)
"""Parses what ``_JSON_DECODER`` refuses for a number, the number left in place: a
second parse, on the error path only, to tell which field holds it."""

_NUMBER_OR_STRING = re.compile(
    r'"(?:[^"\\]|\\.)*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|NaN|-?Infinity'
)


def _unusable_numbers(text: str) -> list[FieldError]:
    """The body's unusable numbers (the standard parser refused one), each named by the
    field that holds it; where the body cannot be parsed even so, the first one, by
    where it is in the text."""
    try:
        body = _LOCATING_DECODER.decode(text)
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict):
        found = _find_unusable(body)
        if found:
            return [_unusable_field(path, number) for path, number in found]
    elif body is not None:
        kind = "a number" if isinstance(body, _Unusable) else _json_type(body)
        return [FieldError("", f"the body must be a JSON object, got {kind}")]
    for token in _NUMBER_OR_STRING.finditer(text):  # strings skipped: they hold no number
        number = token.group()
        if number[0] != '"' and not isinstance(_locating_decode(number), float | int):
            start = token.start()
            line, column = text.count("\n", 0, start) + 1, start - text.rfind("\n", 0, start)
            where = f"at line {line} column {column}"
            return [
                FieldError(
                    "", f"the body holds an unusable number {where}: {_number_problem(number)}"
                )
            ]
    return [FieldError("", "the body holds an unusable number")]


def _locating_decode(number: str) -> Any:
    if number in ("NaN", "Infinity", "-Infinity"):
        return _Unusable(number)
    if "." in number or "e" in number or "E" in number:
        return _locating_float(number)
    return _locating_int(number)


def _find_unusable(body: dict[str, Any]) -> list[tuple[list[str | int], _Unusable]]:
    """Where the unusable numbers are, in the body's order (at most
    MAX_UNKNOWN_FIELD_WARNINGS of them)."""
    found = ((path, value) for path, value in leaves(body) if isinstance(value, _Unusable))
    return list(itertools.islice(found, MAX_UNKNOWN_FIELD_WARNINGS))


def _number_problem(number: str) -> str:
    """What is wrong with a number the parser refuses, in words."""
    if number in ("NaN", "Infinity", "-Infinity"):
        return f"{number}, which is not valid JSON"
    if "." in number or "e" in number or "E" in number:
        return f"{shorten(number)}, a number out of range (beyond about 1.8e308)"
    limit = sys.get_int_max_str_digits()
    return f"an integer of {len(number.lstrip('-'))} digits (at most {limit} are read)"


def _unusable_field(path: list[str | int], number: _Unusable) -> FieldError:
    """An unusable number, told by the field that holds it and what that field accepts."""
    name = ".".join(map(str, path))
    problem = _number_problem(number.text)
    prop = properties().get(str(path[0]))
    if prop is None:
        return FieldError(name, f"{name} holds {problem}", "a finite number")
    allowed = in_words(prop)
    return FieldError(name, f"{name} must be {allowed}, got {problem}", allowed)


def _refuse_deep_nesting(raw: bytes, body: dict[str, Any]) -> None:
    if _may_nest_deeper_than_max(raw) and _depth(body) > MAX_DEPTH:
        raise InvalidRequest([FieldError("", f"the body is nested deeper than {MAX_DEPTH}")])


def _may_nest_deeper_than_max(raw: bytes) -> bool:
    """Whether ``_depth`` of the body parsed from ``raw`` can exceed MAX_DEPTH.

    ``_depth`` counts the body as 1 and each value one deeper than what holds it: a value
    at depth d sits in d - 1 arrays or objects, each opened by its own "[" or "{" in the
    text. So the depth is at most the number of those characters plus one; counting them
    costs a tenth of the walk.
    """
    return raw.count(b"[") + raw.count(b"{") >= MAX_DEPTH


def _depth(node: Any) -> int:
    deepest, stack = 0, [(node, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
