"""mock_server.words: how the mock words values in its messages, on the standard library
alone, so the engine's modules word values without importing the validation package."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from mock_server.words import closest, describe, did_you_mean, leaves, shorten


def _imported(module: str) -> set[str]:
    """Every module ``module`` imports, at any depth of its code (``from a import b`` gives
    both ``a`` and ``a.b``: b may be a module)."""
    origin = importlib.import_module(module).__file__
    assert origin is not None
    names: set[str] = set()
    for node in ast.walk(ast.parse(Path(origin).read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("module", ["mock_server.scenarios", "mock_server.config"])
def test_scenarios_and_config_word_values_without_the_validation_package(module: str) -> None:
    assert not {name for name in _imported(module) if name.startswith("mock_server.validation")}


def test_words_needs_nothing_of_the_mock() -> None:
    assert not {name for name in _imported("mock_server.words") if name.startswith("mock_")}


def test_a_misspelt_name_gets_its_closest_match_or_nothing() -> None:
    assert closest("pendng", ["pending", "success"]) == "pending"
    assert closest("zzz", ["pending", "success"]) is None
    assert did_you_mean("pendng", ["pending", "success"]) == " (did you mean 'pending'?)"
    assert did_you_mean("zzz", ["pending", "success"]) == ""


def test_a_schema_is_described_with_its_refs_followed_into_defs() -> None:
    defs = {"size": {"type": "integer", "minimum": 8, "maximum": 2048, "multipleOf": 8}}
    assert describe({"$ref": "#/$defs/size"}, defs) == (
        "an integer from 8 to 2048, a multiple of 8"
    )
    assert describe({"type": ["string", "null"], "maxLength": 5}) == (
        "a string or null, at most 5 characters"
    )
    assert describe({"title": "an adapter name", "type": "string"}) == "an adapter name"


def test_leaves_come_in_document_order_with_their_paths() -> None:
    assert list(leaves({"a": [1, {"b": 2}], "c": 3})) == [
        (["a", 0], 1),
        (["a", 1, "b"], 2),
        (["c"], 3),
    ]


def test_long_values_are_echoed_short() -> None:
    assert shorten("x" * 81) == "x" * 60 + "... (81 characters)"
    assert shorten("x" * 80) == "x" * 80
    assert shorten(list(range(100))) == "<array of 100 items>"
    assert shorten([1, 2]) == [1, 2]
