"""Turns a raw request body into a GenerationRequest, or into every reason it is refused.

The pipeline is: parse (JSON whatever the content type, bounded depth, finite numbers)
-> normalise (comma strings to lists, "true"/"false" to booleans, defaults filled in,
all derived from the schema) -> JSON Schema -> the cross-field rules JSON Schema cannot
say -> warnings for what the docs do not promise (strict mode makes them errors).
"""

from __future__ import annotations

import codecs
import difflib
import itertools
import json
import math
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from mock_server import contract
from mock_server.exceptions import IpmockError
from mock_server.tokens import PROMPT_TOKEN_LIMIT, count_tokens

MAX_DEPTH = 32
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
MAX_UNKNOWN_FIELD_WARNINGS = 20
_SPACE = " \t\n\r"  # what JSON Schema's patterns here call space; str.strip() takes more


@dataclass(frozen=True)
class FieldError:
    """One reason a request is refused (or, as a warning, accepted with a remark)."""

    field: str
    message: str
    allowed: str = ""
    value: Any = None
    strict_message: str = ""
    """A warning's message when strict mode refuses it, where ``message`` tells what is
    done instead (ignored, cut, served as); empty: ``message`` says it either way."""

    def refused(self) -> FieldError:
        """This warning as strict mode's error."""
        if not self.strict_message:
            return self
        return replace(self, message=self.strict_message, strict_message="")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.allowed:
            body["allowed"] = self.allowed
        if self.value is not None:
            body["value"] = shorten(self.value)
        return body


class InvalidRequest(IpmockError):
    """The body cannot be served; ``errors`` names every offending field at once."""

    def __init__(self, errors: list[FieldError], warnings: list[FieldError] | None = None) -> None:
        self.errors = errors
        self.warnings = warnings or []
        super().__init__(summary(errors))


def summary(errors: list[FieldError]) -> str:
    return "; ".join(e.message for e in errors)


@dataclass(frozen=True)
class GenerationRequest:
    """A valid request with defaults filled in and list fields as tuples."""

    model_id: str
    prompt: str
    negative_prompt: str
    num_inference_steps: int
    guidance_scale: float
    width: int
    height: int
    samples: int
    seed: int
    strength: float | None
    ip_adapter: tuple[str, ...]
    ip_adapter_scale: tuple[float, ...]
    ip_adapter_image: str | None
    ip_adapter_style_images: tuple[str, ...]
    body: Mapping[str, Any] = field(repr=False, compare=False)
    """The normalised body, unknown fields included, as a JSON-ready dict."""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> GenerationRequest:
        adapters = tuple(body.get("ip_adapter", ()))
        scales = tuple(map(float, body.get("ip_adapter_scale", ()))) or (1.0,) * len(adapters)
        return cls(
            model_id=body["model_id"],
            prompt=body["prompt"],
            negative_prompt=body["negative_prompt"],
            num_inference_steps=body["num_inference_steps"],
            guidance_scale=float(body["guidance_scale"]),
            width=body["width"],
            height=body["height"],
            samples=body["samples"],
            seed=body["seed"],
            strength=body.get("strength"),
            ip_adapter=adapters,
            ip_adapter_scale=scales if adapters else (),
            ip_adapter_image=body.get("ip_adapter_image") or None,
            ip_adapter_style_images=tuple(body.get("ip_adapter_style_images", ()))
            if adapters
            else (),
            body=body,
        )


def documented_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body without its unknown fields (each was a warning): what a job keeps.

    Its arrays are tuples: a job's request never changes, and a dict of numbers, strings
    and tuples of them is one the garbage collector stops tracking. (With lists, 10,000
    stored jobs made each full collection take about 90 ms.)
    """
    known = _known_fields()
    return {
        name: tuple(value) if type(value) is list else value
        for name, value in body.items()
        if name in known
    }


@dataclass(frozen=True)
class Accepted:
    body: dict[str, Any]
    """The normalised body, defaults filled in, unknown fields included."""
    warnings: tuple[FieldError, ...]

    @cached_property
    def request(self) -> GenerationRequest:
        return GenerationRequest.from_body(self.body)


def validate(raw: bytes, *, strict: bool = False, accept_model_uuid: bool = True) -> Accepted:
    """Validate a raw body. Raises InvalidRequest listing every problem found."""
    body = parse(raw)
    normalised = normalise(body)
    schema_ok = _fast_validator().is_valid(normalised)
    errors = [] if schema_ok else _schema_errors(normalised)
    warnings: list[FieldError] = []
    _unknown_fields(normalised, warnings)
    _cross_field_rules(normalised, errors, warnings)
    _lora_rules(normalised, warnings)
    _model_id(normalised, errors, warnings, accept_model_uuid)
    _prompt_tokens(normalised, warnings)
    if not schema_ok and not errors:
        errors = _compiled_errors(normalised)  # never accept what the schema refuses
    if strict:
        errors.extend([w.refused() for w in warnings])
        warnings = []
    if errors:
        raise InvalidRequest(errors, warnings)
    _fill_defaults(normalised)
    return Accepted(normalised, tuple(warnings))


# -- parse ---------------------------------------------------------------------------


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
    prop = _properties().get(str(path[0]))
    if prop is None:
        return FieldError(name, f"{name} holds {problem}", "a finite number")
    allowed = describe(prop)
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


# -- normalise -----------------------------------------------------------------------


@cache
def _schema() -> dict[str, Any]:
    schema = contract.request_schema()
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(_schema())


@cache
def _fast_validator() -> jsonschema_rs.Validator:
    """A compiled validator: about 100 times faster at saying yes; the Python one explains no."""
    return jsonschema_rs.validator_for(_schema())


def _properties() -> dict[str, Any]:
    props: dict[str, Any] = _schema()["properties"]
    return props


def _types(prop: Mapping[str, Any]) -> list[str]:
    t = prop.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def _is_url_list(prop: Mapping[str, Any]) -> bool:
    return bool(prop.get("items", {}).get("$ref") == "#/$defs/image_url")


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
    for name, prop in _properties().items():
        types = _types(prop)
        if "array" in types:
            url_list = _is_url_list(prop)
            number_items = prop.get("items", {}).get("type") == "number"
            pattern = re.compile(prop["pattern"]) if number_items and not url_list else None
            spellings[name] = _Spelling("array", url_list, number_items, pattern)
        elif "boolean" in types:
            spellings[name] = _Spelling("boolean")
        elif types == ["integer"]:
            spellings[name] = _Spelling("integer")
    return spellings


def _fill_defaults(body: dict[str, Any]) -> None:
    for name, default in _defaults():
        if name not in body:
            body[name] = default


@cache
def _defaults() -> tuple[tuple[str, Any], ...]:
    """Each property with a default, and the default, in the schema's order."""
    return tuple(
        (name, prop["default"]) for name, prop in _properties().items() if "default" in prop
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- JSON Schema errors, in words ----------------------------------------------------


def _schema_errors(body: Mapping[str, Any]) -> list[FieldError]:
    """The schema's errors in words, field by field (the compiled validator said no).

    Errors from the top-level allOf (the adapter rules, one if/then per adapter count)
    are left out: the cross-field rules say the same about the fields concerned, better.
    """
    keep = _explained_items()
    cut = {k: v[:keep] for k, v in body.items() if isinstance(v, list) and len(v) > keep}
    explained = sorted(_validator().iter_errors({**body, **cut}), key=_path_key)
    errors = _unique([_explain(e) for e in explained if list(e.schema_path)[:1] != ["allOf"]])
    return [_uncut(e, body[e.field]) if e.field in cut else e for e in errors]


@cache
def _explained_items() -> int:
    """How many items of an array the Python validator explains: more than any maxItems
    of the schema, so a too-long array is still too long, and a 100,000-item array costs
    what a short one does (explaining every item took seconds, and as many errors)."""
    limits: list[int] = []
    stack: list[Any] = [_schema()]
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


def _compiled_errors(body: Mapping[str, Any]) -> list[FieldError]:
    """The compiled validator's own errors, where nothing else explained its no.

    Python's regex dialect differs from JSON Schema's here and there (its "$" also
    matches before a final newline), so the Python validator can miss what it caught.
    """
    return _unique(
        [
            _explain_path(list(e.instance_path), body, e.message)
            for e in _fast_validator().iter_errors(body)
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
    prop = _properties().get(str(path[0]), {}) if path else {}
    allowed = describe(prop) if prop else "a documented value"
    return FieldError(name, f"{name} must be {allowed}, got {_show(value)}", allowed, value)


def _path_key(error: ValidationError) -> list[str]:
    return [str(p) for p in error.absolute_path]


def _explain(error: ValidationError) -> FieldError:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        missing = error.message.split("'")[1]
        prop = _properties().get(missing, {})
        return FieldError(missing, f"{missing} is required", describe(prop))
    if not path:
        return FieldError("", _root_message(error))
    name = ".".join(path)
    # Errors inside a field describe the whole field when its title says it best.
    prop = _properties().get(path[0], {}) if path else {}
    schema = error.schema if isinstance(error.schema, dict) else {}
    allowed = schema.get("title") or (prop.get("title") if len(path) == 1 else None)
    allowed = allowed or describe(schema)
    return FieldError(
        name, f"{name} must be {allowed}, got {_show(error.instance)}", allowed, error.instance
    )


def _root_message(error: ValidationError) -> str:
    if error.validator == "maxProperties":
        fields = len(error.instance) if isinstance(error.instance, dict) else 0
        return f"the body has {fields} fields; at most {error.validator_value} are accepted"
    return f"the body is not acceptable: {error.message}"


_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "an array",
    "boolean": "true or false",
    "object": "an object",
    "null": "null",
}


def describe(schema: Mapping[str, Any]) -> str:
    """What a (sub)schema accepts, in words: ``an integer from 1 to 4, a multiple of 8``."""
    if "title" in schema:
        return str(schema["title"])
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return describe(_schema()["$defs"][name])
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    text = " or ".join(_TYPE_WORDS[t] for t in _types(schema)) or "a value"
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


def _show(value: Any) -> str:
    return json.dumps(shorten(value), ensure_ascii=False)


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


# -- beyond JSON Schema --------------------------------------------------------------


def _unknown_fields(body: Mapping[str, Any], warnings: list[FieldError]) -> None:
    known = _known_fields()
    if known.issuperset(body):
        return  # the usual case, twice as fast as the list below
    unknown = [name for name in body if name not in known]
    for name in unknown[:MAX_UNKNOWN_FIELD_WARNINGS]:
        close = difflib.get_close_matches(name, list(_properties()), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        shown = shorten(name)
        warnings.append(
            FieldError(
                name,
                f"unknown field {shown} is ignored{hint}",
                "the documented fields",
                strict_message=f"unknown field {shown} is not allowed: "
                f"it is not a documented field{hint}",
            )
        )
    if len(unknown) > MAX_UNKNOWN_FIELD_WARNINGS:
        rest = len(unknown) - MAX_UNKNOWN_FIELD_WARNINGS
        warnings.append(
            FieldError(
                "",
                f"{rest} more unknown fields are ignored",
                strict_message=f"{rest} more unknown fields are not allowed",
            )
        )


@cache
def _known_fields() -> frozenset[str]:
    """The documented field names, as a set: a list scan per field was most of the cost."""
    return frozenset(_properties())


def _cross_field_rules(
    body: Mapping[str, Any], errors: list[FieldError], warnings: list[FieldError]
) -> None:
    adapters = body.get("ip_adapter", [])
    if not isinstance(adapters, list):
        return
    scales = body.get("ip_adapter_scale")
    image = body.get("ip_adapter_image")
    styles = body.get("ip_adapter_style_images")
    n = len(adapters)
    if n == 0:
        for name, value in (
            ("ip_adapter_scale", scales),
            ("ip_adapter_image", image),
            ("ip_adapter_style_images", styles),
        ):
            if value:
                warnings.append(
                    FieldError(
                        name,
                        f"{name} is ignored: no ip_adapter is given",
                        strict_message=f"{name} is not allowed without an ip_adapter",
                    )
                )
    else:
        if isinstance(scales, list) and len(scales) != n:
            errors.append(
                FieldError(
                    "ip_adapter_scale",
                    f"ip_adapter_scale has {len(scales)} value(s) but ip_adapter names {n} "
                    f"adapter(s): give one scale per adapter",
                    f"{n} number(s) from 0 to 1",
                    scales,
                )
            )
        if not image:
            errors.append(
                FieldError(
                    "ip_adapter_image",
                    f"ip_adapter_image is required: it is the image for the primary adapter "
                    f"{adapters[0]}",
                    "an http:// or https:// URL, or a data:image/ URL",
                    image,
                )
            )
        if isinstance(styles, list) and len(styles) != n - 1:
            errors.append(
                FieldError(
                    "ip_adapter_style_images",
                    f"ip_adapter_style_images has {len(styles)} image(s) but ip_adapter names "
                    f"{n - 1} adapter(s) after the primary one: give one image each",
                    f"{n - 1} image URL(s)",
                    styles,
                )
            )
        elif styles is None and n > 1:
            errors.append(
                FieldError(
                    "ip_adapter_style_images",
                    f"ip_adapter_style_images is required: ip_adapter names {n - 1} adapter(s) "
                    f"after the primary one, each needs an image",
                    f"{n - 1} image URL(s)",
                )
            )


def _lora_rules(body: Mapping[str, Any], warnings: list[FieldError]) -> None:
    loras, weights = body.get("lora_models"), body.get("lora_weights")
    if not isinstance(weights, list) or not weights:
        return
    if not loras:
        warnings.append(
            FieldError(
                "lora_weights",
                "lora_weights is ignored: no lora_models given",
                strict_message="lora_weights is not allowed without lora_models",
            )
        )
    elif isinstance(loras, list) and len(loras) != len(weights):
        warnings.append(
            FieldError(
                "lora_weights",
                f"lora_weights has {len(weights)} value(s) but lora_models names {len(loras)}: "
                f"give one weight per model; the extra ones are ignored",
                f"{len(loras)} number(s) from 0 to 1",
                weights,
                strict_message=f"lora_weights has {len(weights)} value(s) but lora_models "
                f"names {len(loras)}: give one weight per model",
            )
        )


def _model_id(
    body: Mapping[str, Any],
    errors: list[FieldError],
    warnings: list[FieldError],
    accept_uuid: bool,
) -> None:
    model_id = body.get("model_id")
    if isinstance(model_id, str) and _UUID.fullmatch(model_id):
        target = warnings if accept_uuid else errors
        target.append(
            FieldError(
                "model_id",
                f'model_id {model_id} is a model UUID; the docs only accept "sdxl"'
                + ("; served as sdxl" if accept_uuid else ""),
                '"sdxl"',
                model_id,
                strict_message=f'model_id {model_id} is a model UUID; the docs only accept "sdxl"',
            )
        )


def _prompt_tokens(body: Mapping[str, Any], warnings: list[FieldError]) -> None:
    """A warning for each prompt past the token limit; prompts the schema refuses as too
    long are not counted (the BPE is quadratic in a run of emoji: a megabyte takes minutes)."""
    for name, longest in _prompt_max_lengths():
        text = body.get(name)
        if isinstance(text, str) and text and (longest is None or len(text) <= longest):
            n = count_tokens(text)
            if n > PROMPT_TOKEN_LIMIT:
                warnings.append(
                    FieldError(
                        name,
                        f"{name} has {n} CLIP tokens; only the first {PROMPT_TOKEN_LIMIT} are used",
                        f"at most {PROMPT_TOKEN_LIMIT} CLIP tokens",
                        text,
                        strict_message=f"{name} has {n} CLIP tokens; at most "
                        f"{PROMPT_TOKEN_LIMIT} are allowed",
                    )
                )


@cache
def _prompt_max_lengths() -> tuple[tuple[str, int | None], ...]:
    """Each prompt field and the longest the schema accepts (None: no limit)."""
    props = _properties()
    return tuple(
        (name, props.get(name, {}).get("maxLength")) for name in ("prompt", "negative_prompt")
    )
