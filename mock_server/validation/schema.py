"""The request schema, checked and compiled once, and what the other steps look up in it."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

from mock_server import contract
from mock_server.words import describe


@cache
def request_schema() -> dict[str, Any]:
    schema = contract.request_schema()
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def explaining_validator() -> Draft202012Validator:
    return Draft202012Validator(request_schema())


@cache
def fast_validator() -> jsonschema_rs.Validator:
    """A compiled validator: about 100 times faster at saying yes; the Python one explains no."""
    return jsonschema_rs.validator_for(request_schema())


def properties() -> dict[str, Any]:
    props: dict[str, Any] = request_schema()["properties"]
    return props


@cache
def known_fields() -> frozenset[str]:
    """The documented field names, as a set: a list scan per field was most of the cost."""
    return frozenset(properties())


def types_of(prop: Mapping[str, Any]) -> list[str]:
    t = prop.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def is_url_list(prop: Mapping[str, Any]) -> bool:
    return bool(prop.get("items", {}).get("$ref") == "#/$defs/image_url")


def in_words(schema: Mapping[str, Any]) -> str:
    """What a part of the request schema accepts, in words, each ``$ref`` followed."""
    return describe(schema, request_schema().get("$defs"))
