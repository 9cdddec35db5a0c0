"""A misspelt IPMOCK_ variable is named, with the one it likely meant, not silently ignored;
no variable the README or the docs name is warned about."""

from __future__ import annotations

import io
import os
import re

import pytest

from mock_server.cli.options import parse, warn_unknown_variables
from tests.conftest import REPO


def test_a_misspelt_variable_gets_one_line_naming_the_right_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("IPMOCK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("IPMOCK_PROT", "9000")
    monkeypatch.setenv("IPMOCK_STORE", "memory")  # a real one: no warning
    monkeypatch.setenv("IPMOCK_SCHEMATHESIS_EXAMPLES", "5")  # the test suite's: none
    _, args = parse(["serve"])
    assert args.port is None or args.port == 8000
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "ipmock: warning: IPMOCK_PROT is not an ipmock variable, ignored "
        "(did you mean IPMOCK_PORT?)"
    ]


def test_no_variable_the_docs_name_is_warned_about() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    text = "".join(page.read_text("utf-8") for page in pages)
    named = set(re.findall(r"IPMOCK_[A-Z_]*[A-Z]", text))
    named -= {"IPMOCK_PROT"}  # the docs' example of a misspelling
    assert "IPMOCK_PORT" in named and "IPMOCK_STORE" in named, "the docs name IPMOCK_ variables"
    assert warn_unknown_variables(dict.fromkeys(named, "1"), io.StringIO()) == []
