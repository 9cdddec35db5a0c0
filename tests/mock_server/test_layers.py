"""The engine's layering: the engine (``mock_server``'s own modules, ``validation``,
``state``, ``report``) imports neither its HTTP adapters, its command line, the toolkit
nor the reference implementation; they import it. Imports made only for type checking
do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

ENGINE = REPO / "mock_server"
ABOVE_THE_ENGINE = ("mock_server.http", "mock_server.cli", "contract_tests", "reference_impl")


def _engine_files() -> list[Path]:
    files = [p for p in ENGINE.glob("*.py") if p.name != "__init__.py"]  # __init__: the face
    for package in ("validation", "state", "report"):
        files += sorted((ENGINE / package).glob("*.py"))
    return sorted(files)


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module imported outside ``if TYPE_CHECKING:`` blocks, with its line."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{a.name}") for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@pytest.mark.parametrize("path", _engine_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_the_engine_imports_nothing_above_it(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    wrong = [
        f"line {line}: {name}"
        for line, name in _imported(tree)
        if name.startswith(ABOVE_THE_ENGINE)
    ]
    assert not wrong, f"{path.relative_to(REPO)} imports above the engine: {wrong}"


def test_the_check_sees_an_import_above_the_engine() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "from mock_server import http\n"
        "if TYPE_CHECKING:\n    from mock_server.cli import serve\n"
        "def f():\n    import contract_tests\n"
    )
    names = [name for _, name in _imported(tree) if name.startswith(ABOVE_THE_ENGINE)]
    assert names == ["mock_server.http", "contract_tests"]
