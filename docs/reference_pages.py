"""The docs site's reference pages, generated from the code each time the site is built:
the command line from its argparse parser, the config file from its JSON Schema, the
contract from ``schema/``, the admin API from the app's routes and their docstrings.

A page under ``docs/reference/`` holds its prose and a marker line, ``<!-- reference: NAME
-->``, that the build (``docs/hooks.py``) replaces with ``GENERATORS[NAME]()``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- reference: ([a-z-]+) -->$", re.MULTILINE)
HELP_COLUMNS = "100"
"""The width argparse wraps help to (it reads COLUMNS), so the page is the same anywhere."""


def cell(text: str) -> str:
    """``text`` as one markdown table cell: on one line, no markup of its own."""
    text = " ".join(str(text).split())
    for raw, safe in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|")):
        text = text.replace(raw, safe)
    return text


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _fenced(text: str) -> str:
    return "```text\n" + text.rstrip() + "\n```"


# The command line.


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli() -> str:
    """``ipmock --help`` and every subcommand's ``--help``, as the parser prints them."""
    from mock_server.cli.options import build_parser

    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        parser = build_parser()
        parts = ["## `ipmock`", _fenced(parser.format_help())]
        for name, command in _subcommands(parser).items():
            parts += [f"## `ipmock {name}`", _fenced(command.format_help())]
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before
    return "\n\n".join(parts)


# JSON Schema, as tables.


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def describe_type(schema: dict[str, Any]) -> str:
    """What a schema admits, in a few words: ``integer or null``, ``"a" | "b"``, ..."""
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(value) for value in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(describe_type(each) for each in schema[key])
    if "if" in schema and "then" in schema and "else" in schema:
        return f"{describe_type(schema['then'])} or {describe_type(schema['else'])}"
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    words = []
    for each in kinds:
        if each == "array" and isinstance(schema.get("items"), dict):
            words.append(f"array of {describe_type(schema['items'])}")
        elif each == "object" and isinstance(schema.get("additionalProperties"), dict):
            words.append(f"object of {describe_type(schema['additionalProperties'])}")
        else:
            words.append(each)
    if not words and "pattern" in schema:
        return f"matching `{schema['pattern']}`"
    return " or ".join(words) or "any"


_LIMITS = (
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("minItems", "at least {} items"),
    ("maxItems", "at most {} items"),
    ("minProperties", "at least {} keys"),
    ("maxProperties", "at most {} keys"),
    ("pattern", "matches {}"),
    ("multipleOf", "a multiple of {}"),
)


def describe_limits(schema: dict[str, Any]) -> str:
    """The schema's bounds and default, in words."""
    said = [form.format(f"`{schema[key]}`") for key, form in _LIMITS if key in schema]
    for key in ("items", "additionalProperties"):
        inner = schema.get(key)
        if isinstance(inner, dict):
            said += [f"each {part}" for part in describe_limits(inner).split("; ") if part]
    if "default" in schema:
        said.append(f"default `{json.dumps(schema['default'])}`")
    if schema.get("uniqueItems"):
        said.append("no repeats")
    return "; ".join(said)


def _rows(schema: dict[str, Any], prefix: str) -> Iterator[tuple[str, ...]]:
    """One row per property, its own properties after it (``scenarios[].faults[].kind``)."""
    required = set(schema.get("required", []))
    for name, each in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        about = each.get("description") or each.get("title") or ""
        yield (
            f"`{path}`",
            "yes" if name in required else "",
            cell(describe_type(each)),
            cell(describe_limits(each)),
            cell(about),
        )
        inner = each.get("items") if isinstance(each.get("items"), dict) else each
        if "properties" in inner:
            nested = dict(inner)
            nested.setdefault("required", each.get("items", {}).get("required", []))
            yield from _rows(nested, path + ("[]." if inner is not each else "."))


def schema_tables(schema: dict[str, Any], heading: str = "##") -> str:
    """The schema's properties as a table, then each of its ``$defs`` under a heading."""
    head = ("field", "required", "type", "limits and default", "description")
    parts = []
    if schema.get("description"):
        parts.append(cell(schema["description"]))
    if "properties" in schema:
        parts.append(_table(head, list(_rows(schema, ""))))
    for name, each in schema.get("$defs", {}).items():
        parts.append(f"{heading} `{name}`")
        if each.get("description"):
            parts.append(cell(each["description"]))
        if "properties" in each:
            parts.append(_table(head, list(_rows(each, ""))))
        else:
            parts.append(f"Type: {cell(describe_type(each))}. {cell(describe_limits(each))}")
    return "\n\n".join(parts)


def config() -> str:
    """The config file's fields, from ``mock_server/config.schema.json``."""
    schema = json.loads((REPO / "mock_server/config.schema.json").read_text("utf-8"))
    return schema_tables(schema)


# The contract.


def contract() -> str:
    """The operations of ``schema/openapi.json`` with their statuses, then the request and
    response schemas as tables."""
    openapi = json.loads((REPO / "schema/openapi.json").read_text("utf-8"))
    rows = []
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = ", ".join(
                f"{code} ({cell(answer.get('description', ''))})"
                for code, answer in operation["responses"].items()
            )
            summary = cell(operation.get("summary", ""))
            rows.append((f"`{method.upper()} {path}`", summary, statuses))
    parts = ["## Operations", _table(("operation", "does", "answers"), rows)]
    request = json.loads((REPO / "schema/request.schema.json").read_text("utf-8"))
    parts += ["## The request body", schema_tables(request, "###")]
    responses = json.loads((REPO / "schema/response.schema.json").read_text("utf-8"))
    parts += ["## The responses", schema_tables(responses, "###")]
    return "\n\n".join(parts)


# The admin API.


def admin_routes() -> list[tuple[str, list[str], str]]:
    """(path, methods, docstring) of every route under /__mock of the app ``ipmock serve``
    builds, in the order the app matches them."""
    from starlette.routing import Mount, Route

    from mock_server import Settings, create_app

    found = []
    for route in create_app(Settings()).routes:
        if not route.path.startswith("/__mock"):  # type: ignore[attr-defined]
            continue
        if isinstance(route, Route):
            methods = sorted((route.methods or set()) - {"HEAD"})
            found.append((route.path, methods, inspect.getdoc(route.endpoint) or ""))
        elif isinstance(route, Mount):
            served = route.app
            doc = inspect.getdoc(served) or inspect.getdoc(type(served)) or ""
            found.append((route.path + "/...", ["GET"], doc))
    return found


def admin() -> str:
    """Each admin route: its methods and path, then its docstring."""
    parts = []
    for path, methods, doc in admin_routes():
        parts.append(f"### `{' '.join(methods)} {path}`")
        parts.append(cell(doc) if doc else "(no description)")
    return "\n\n".join(parts)


GENERATORS: dict[str, Callable[[], str]] = {
    "cli": cli,
    "config": config,
    "contract": contract,
    "admin": admin,
}


def expand(markdown: str) -> str:
    """``markdown`` with each reference marker replaced by its generated text (KeyError
    naming an unknown one)."""

    def generated(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in GENERATORS:
            raise KeyError(f"unknown reference {name!r}, not one of {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(generated, markdown)
