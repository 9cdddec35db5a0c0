"""mock_server.validation's face: its __all__ is exactly what the rest of the tree imports
from it."""

from __future__ import annotations

import ast
from pathlib import Path

import mock_server.validation as validation
from tests.conftest import REPO

FOLDERS = ("mock_server", "contract_tests", "reference_impl", "bench", "tests", "examples")


def _imported_from_the_package() -> dict[str, list[str]]:
    """Each name imported ``from mock_server.validation import ...`` outside the package,
    with the files that import it."""
    package = REPO / "mock_server" / "validation"
    names: dict[str, list[str]] = {}
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            if package in path.parents:
                continue
            for node in ast.walk(ast.parse(Path(path).read_text("utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == "mock_server.validation":
                    for alias in node.names:
                        names.setdefault(alias.name, []).append(str(path.relative_to(REPO)))
    return names


def test_every_name_the_tree_imports_from_the_package_is_in_its_all() -> None:
    imported = _imported_from_the_package()
    assert {"validate", "InvalidRequest", "GenerationRequest"} <= set(imported)
    modules = {p.stem for p in (REPO / "mock_server" / "validation").glob("*.py")}
    missing = {
        name: files
        for name, files in imported.items()
        if name not in validation.__all__ and name not in modules
    }
    assert missing == {}
    assert set(validation.__all__) <= set(imported)  # nothing exported that nobody uses


def test_the_package_exports_what_it_names() -> None:
    for name in validation.__all__:
        assert getattr(validation, name) is not None
    assert sorted(validation.__all__) == sorted(set(validation.__all__))
