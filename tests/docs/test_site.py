"""The docs site builds with ``mkdocs build --strict``, references nothing remote, and its
reference pages, generated at build time, hold everything the code has now: every
subcommand and option of the parser, every admin route of the app, every field of the
config file's schema, every request field and operation of the contract."""

from __future__ import annotations

import argparse
import html
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docs.reference_pages import MARKER, admin_routes
from tests.conftest import REPO

pytestmark = [pytest.mark.slow]  # a whole site build: about 8 s


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The site built strictly into a fresh folder, and what the build printed."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(out)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, done.stdout + done.stderr


def _text(site: Path, page: str) -> str:
    """A built page's text, tags removed and entities read, whitespace as single spaces."""
    raw = (site / page).read_text("utf-8")
    body = raw.split('<article class="md-content__inner md-typeset">', 1)[-1]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def test_the_build_counts_the_examples(site: tuple[Path, str]) -> None:
    found = re.search(r"^docs: (\d+) examples run(, \d+ marked [\w-]+)*$", site[1], re.M)
    assert found, site[1][-2000:]
    assert int(found.group(1)) >= 20


def test_the_built_pages_reference_nothing_remote(site: tuple[Path, str]) -> None:
    remote = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//""")
    pages = [*site[0].rglob("*.html"), *site[0].rglob("*.css")]
    assert len(pages) > 10
    for page in pages:
        text = page.read_text("utf-8", errors="replace")
        assert not remote.search(text), f"{page}: {remote.search(text)}"
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, page


def test_no_marker_is_left_and_every_reference_page_has_one(site: tuple[Path, str]) -> None:
    for source in sorted((REPO / "docs/reference").glob("*.md")):
        assert MARKER.search(source.read_text("utf-8")), f"{source.name} generates nothing"
    for page in site[0].rglob("*.html"):
        assert "<!-- reference:" not in page.read_text("utf-8"), f"{page}: a marker is left"


def _options(parser: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, str]]:
    for action in parser._actions:
        for flag in action.option_strings:
            yield name, flag
        if isinstance(action, argparse._SubParsersAction):
            for sub, command in action.choices.items():
                yield f"ipmock {sub}", "-h"
                yield from _options(command, f"ipmock {sub}")


def test_the_cli_page_has_every_subcommand_and_option(site: tuple[Path, str]) -> None:
    from mock_server.cli.options import build_parser

    text = _text(site[0], "reference/cli.html")
    text = text[text.index("usage: ipmock [-h]") :]  # the generated part
    found = list(_options(build_parser(), "ipmock"))
    assert len(found) > 40
    for command, flag in found:
        section = text.split(f"usage: {command} ", 1)
        assert len(section) == 2, f"no --help of {command}"
        assert flag in section[1].split("usage: ", 1)[0], f"{command}: {flag} is missing"


def test_the_admin_page_has_every_route_of_the_app(site: tuple[Path, str]) -> None:
    from starlette.routing import Route

    from mock_server import Settings, create_app

    text = _text(site[0], "reference/admin-api.html")
    paths = [getattr(r, "path", "") for r in create_app(Settings()).routes]
    admin = [p for p in paths if p.startswith("/__mock")]
    assert {"/__mock/", "/__mock/queue", "/__mock/clock", "/__mock/journal"} <= set(admin)
    for path, methods, _ in admin_routes():
        assert f"{' '.join(methods)} {path}" in text
    for route in create_app(Settings()).routes:
        if isinstance(route, Route) and route.path.startswith("/__mock"):
            summary = " ".join((route.endpoint.__doc__ or "").split("\n\n")[0].split())
            assert summary in text, f"{route.path}: its docstring is not on the page"


def _fields(schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for name, each in schema.get("properties", {}).items():
        yield prefix + name
        inner = each.get("items") if isinstance(each.get("items"), dict) else each
        if "properties" in inner:
            yield from _fields(inner, prefix + name + ("[]." if inner is not each else "."))


def test_the_config_page_has_every_field_of_the_schema(site: tuple[Path, str]) -> None:
    schema = json.loads((REPO / "mock_server/config.schema.json").read_text("utf-8"))
    text = _text(site[0], "reference/config.html")
    fields = [*_fields(schema)]
    for each in schema["$defs"].values():
        fields += _fields(each)
    assert "scenarios" in fields and "pending_polls" in fields and "chaos.faults" in fields
    for field in fields:
        assert f" {field} " in f" {text} ", f"{field} is missing"


def test_the_contract_page_has_every_request_field_and_operation(
    site: tuple[Path, str],
) -> None:
    text = _text(site[0], "reference/contract.html")
    request = json.loads((REPO / "schema/request.schema.json").read_text("utf-8"))
    assert len(request["properties"]) > 20
    for field in request["properties"]:
        assert f" {field} " in f" {text} ", f"request field {field} is missing"
    openapi = json.loads((REPO / "schema/openapi.json").read_text("utf-8"))
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "responses" in operation:
                assert f"{method.upper()} {path}" in text
                for status in operation["responses"]:
                    assert f"{status} (" in text, f"{method} {path}: {status}"
