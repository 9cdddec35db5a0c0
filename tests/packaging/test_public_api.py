"""The public face: what ``mock_server`` and ``contract_tests`` export, and the one
exception tree (httpx's ``test_exported_members.py``, and its drawn hierarchy)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import contract_tests
import mock_server
from mock_server import contract, exceptions
from mock_server.exceptions import IpmockError
from mock_server.scenarios import REFUSALS
from tests.conftest import REPO

ROOT = REPO
PACKAGES = (mock_server, contract_tests)
OPTIONAL = {"numpy", "PIL", "torch", "diffusers", "transformers", "safetensors"}
"""Third-party packages of the gpu extra: a module that needs one is skipped without it."""


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_exported_name_is_importable(package: types.ModuleType) -> None:
    assert len(package.__all__) == len(set(package.__all__)), "a name exported twice"
    for name in package.__all__:
        assert getattr(package, name, None) is not None, f"{package.__name__}.{name}"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_public_names_are_exported(package: types.ModuleType) -> None:
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(package.__all__)


def _doc_imports() -> Iterator[tuple[str, str, str]]:
    """(file, module, name) of every ``from mock_server... import`` and ``from
    contract_tests... import`` in README.md and docs/, comments and parentheses allowed."""
    statement = re.compile(
        r"^\s*from\s+((?:mock_server|contract_tests)[\w.]*)\s+import\s+(\([^)]*\)|[^\n]*)",
        re.MULTILINE,
    )
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for module, names in statement.findall(path.read_text(encoding="utf-8")):
            for line in names.strip("()").splitlines():
                for name in line.split("#")[0].split(","):
                    if name.strip():
                        yield path.name, module, name.split(" as ")[0].strip()


def test_the_docs_examples_import_only_what_is_exported() -> None:
    seen = list(_doc_imports())
    assert ("pytest-plugin.md", "mock_server", "create_app") in seen  # the scan finds them
    for source, module, name in seen:
        imported = importlib.import_module(module)
        assert hasattr(imported, name), f"{source}: from {module} import {name}"
        if module in ("mock_server", "contract_tests"):
            assert name in imported.__all__, f"{source} imports {name} from {module}"


def test_the_generator_seam_and_fault_types_are_public_and_internals_are_not() -> None:
    assert {"Generator", "RenderedImage", "GENERATE", "Fault", "FaultMix"} <= set(
        mock_server.__all__
    )
    assert not {"Job", "JobStore", "MemoryStore", "ScenarioBook"} & set(mock_server.__all__)
    assert {"running_server", "RunningMock", "Text2ImageClient"} <= set(contract_tests.__all__)


def _modules() -> Iterator[types.ModuleType]:
    for package in ("mock_server", "contract_tests", "reference_impl"):
        root = importlib.import_module(package)
        yield root
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if info.name.endswith("__main__"):
                continue
            try:
                yield importlib.import_module(info.name)
            except ModuleNotFoundError as exc:
                if exc.name is None or exc.name.split(".")[0] not in OPTIONAL:
                    raise


def _exception_classes() -> dict[str, type[BaseException]]:
    """Every public exception class ipmock's packages define, by name."""
    found: dict[str, type[BaseException]] = {}
    for module in _modules():
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[name] = value
    return found


def test_every_exception_derives_from_ipmock_error() -> None:
    classes = _exception_classes()
    assert {"ApiError", "InvalidRequest", "UsageError", "ServerDidNotStart"} <= set(classes)
    from contract_tests.example_client import ClientError

    outside = {name for name, cls in classes.items() if not issubclass(cls, IpmockError)}
    # The example client's own errors are a client's, outside the tree on purpose.
    assert outside == {name for name, cls in classes.items() if issubclass(cls, ClientError)}
    assert "RequestRefused" in outside and "ApiError" not in outside


def test_the_drawn_tree_is_the_real_one() -> None:
    """Each line under ``IpmockError`` in the docstring names a class and the built-in
    bases it keeps; together they are every subclass there is."""
    assert exceptions.__doc__ is not None
    drawn = dict(re.findall(r"[├└]── (\w+)(?: \((\w+)\))?", exceptions.__doc__))
    classes = _exception_classes()
    real = {name for name, cls in classes.items() if issubclass(cls, IpmockError)} - {"IpmockError"}
    assert set(drawn) == real
    for name, builtin in drawn.items():
        cls = classes[name]
        assert cls.__bases__[0] is IpmockError, name
        assert [b.__name__ for b in cls.__bases__[1:]] == ([builtin] if builtin else []), name


def test_exceptions_keep_the_builtin_kinds_callers_catch() -> None:
    from mock_server.config import ConfigError
    from mock_server.scenarios import UnknownScenario

    assert issubclass(ConfigError, ValueError)
    assert issubclass(UnknownScenario, LookupError)
    assert issubclass(contract_tests.ServerDidNotStart, RuntimeError)
    assert issubclass(contract_tests.ClientContractViolation, AssertionError)


def _literals(path: Path) -> Iterator[tuple[int, str]]:
    """The string and bytes literals of a module (bytes as Latin-1), f-strings' parts
    included, docstrings and other bare strings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bare = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in bare:
            if isinstance(node.value, bytes):
                yield node.lineno, node.value.decode("latin-1")
            elif isinstance(node.value, str):
                yield node.lineno, node.value


def test_paths_png_signature_and_refusal_texts_are_written_once() -> None:
    """mock_server.contract reads the paths from openapi.json and holds the PNG signature;
    scenarios.REFUSALS holds the refusal texts. No other module of the packages or bench
    writes them again (examples/ keep their own: they stand alone)."""
    png = contract.PNG_SIGNATURE.decode("latin-1")
    texts = {refusal.error for refusal in REFUSALS.values()}
    copies = []
    for folder in ("mock_server", "contract_tests", "reference_impl", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            home = path.relative_to(ROOT).as_posix()
            for line, text in _literals(path):
                is_path = text == contract.SUBMIT_PATH or text.startswith(
                    (contract.STATUS_PREFIX, contract.IMAGE_PREFIX)
                )
                if (
                    is_path
                    or (png in text and home != "mock_server/contract.py")
                    or (text in texts and home != "mock_server/scenarios.py")
                ):
                    copies.append(f"{home}:{line}: {text[:60]!r}")
    assert copies == []
