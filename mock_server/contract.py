"""Loads the contract files in ``schema/`` and bundles the OpenAPI document from them.

The API's paths are read from openapi.json here, once (``SUBMIT_PATH``, ``STATUS_PATH``,
``IMAGE_PATH``), with the PNG signature its images start with: every module of ipmock
takes them from here.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

REQUEST_FILE = "request.schema.json"
RESPONSE_FILE = "response.schema.json"
OPENAPI_FILE = "openapi.json"

JSON = dict[str, Any]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The first eight bytes of every PNG (the contract's images are ``image/png``)."""


def load(name: str) -> JSON:
    """One contract file, parsed (a fresh copy each call)."""
    return copy.deepcopy(_load_cached(name))


@cache
def _load_cached(name: str) -> JSON:
    text = resources.files("ipmock_schema").joinpath(name).read_text(encoding="utf-8")
    data: JSON = json.loads(text)
    return data


def path_of(operation_id: str) -> str:
    """The path (a template, for one with parameters) of an operation of openapi.json."""
    for path, item in _load_cached(OPENAPI_FILE)["paths"].items():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return str(path)
    raise KeyError(f"no operation {operation_id!r} in {OPENAPI_FILE}")


SUBMIT_PATH = path_of("submitText2Image")
"""``/sdxl/text2image/v1``: a job is submitted here (POST)."""
STATUS_PATH = path_of("getText2ImageStatus")
"""``/sdxl/text2image/v1/status/{id}``: a job's status (GET); ``{id}`` is the job's."""
STATUS_PREFIX = STATUS_PATH.removesuffix("{id}")
"""The status path up to the job's id."""
IMAGE_PATH = path_of("downloadImage")
"""``/images/{job_id}/{file_name}``: a download URL of a SUCCESS (GET)."""
IMAGE_PREFIX = IMAGE_PATH.split("{", 1)[0]
"""The download path up to the job's id."""


def request_schema() -> JSON:
    return load(REQUEST_FILE)


def response_schema(definition: str) -> JSON:
    """A schema for one response body, e.g. ``"Pending"``, usable on its own."""
    doc = load(RESPONSE_FILE)
    if definition not in doc["$defs"]:
        raise KeyError(f"no response definition {definition!r}; known: {sorted(doc['$defs'])}")
    return {
        "$schema": doc["$schema"],
        "$defs": doc["$defs"],
        "$ref": f"#/$defs/{definition}",
    }


@cache
def _bundled_openapi() -> JSON:
    """openapi.json with every reference into the schema files moved into components.

    The files stay the single source: the OpenAPI document only points at them, and
    this function inlines them so that tools that cannot follow file references
    (most of them) see one self-contained document.
    """
    doc = load(OPENAPI_FILE)
    schemas: JSON = doc.setdefault("components", {}).setdefault("schemas", {})
    request = load(REQUEST_FILE)
    responses = load(RESPONSE_FILE)
    request_name = request["title"]

    for name, sub in {**request.get("$defs", {}), **responses["$defs"]}.items():
        if name in schemas:
            raise ValueError(f"schema name {name!r} defined twice in the contract files")
        schemas[name] = sub
    body = {k: v for k, v in request.items() if k not in ("$schema", "$id", "$defs")}
    schemas[request_name] = body

    def rewrite(ref: str) -> str:
        if ref == REQUEST_FILE:
            return f"#/components/schemas/{request_name}"
        for prefix in (f"{RESPONSE_FILE}#/$defs/", "#/$defs/"):
            if ref.startswith(prefix):
                return "#/components/schemas/" + ref[len(prefix) :]
        raise ValueError(f"unresolvable $ref {ref!r} in the contract files")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                node["$ref"] = rewrite(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    return doc


def openapi() -> JSON:
    """The bundled OpenAPI 3.1 document that the mock serves at ``/openapi.json``."""
    return copy.deepcopy(_bundled_openapi())


@cache
def openapi_bytes() -> bytes:
    """The bundled document, encoded once."""
    return json.dumps(_bundled_openapi(), separators=(",", ":")).encode()
