"""The README's table of scenario fields names exactly the fields of the config's JSON
Schema (mock_server/config.schema.json, which it links), so neither drifts alone."""

from __future__ import annotations

import json
import re

from tests.conftest import REPO


def _readme_fields() -> list[str]:
    text = (REPO / "README.md").read_text("utf-8")
    start = text.index("| field | default | does |")
    table = text[start : text.index("\n\n", start)]
    return re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)


def test_the_readme_documents_every_scenario_field_of_the_schema() -> None:
    schema = json.loads((REPO / "mock_server/config.schema.json").read_text("utf-8"))
    assert _readme_fields() == list(schema["$defs"]["scenario"]["properties"])


def test_the_readme_links_the_schema() -> None:
    assert "](mock_server/config.schema.json)" in (REPO / "README.md").read_text("utf-8")
