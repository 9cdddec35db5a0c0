"""The docs' table of scenario fields (docs/scenarios.md) names exactly the fields of the
config's JSON Schema (mock_server/config.schema.json, which it names and whose generated
reference it links), so neither drifts alone."""

from __future__ import annotations

import json
import re

from tests.conftest import REPO

PAGE = REPO / "docs/scenarios.md"


def _documented_fields() -> list[str]:
    text = PAGE.read_text("utf-8")
    start = text.index("| field | default | does |")
    table = text[start : text.index("\n\n", start)]
    return re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)


def test_the_docs_document_every_scenario_field_of_the_schema() -> None:
    schema = json.loads((REPO / "mock_server/config.schema.json").read_text("utf-8"))
    assert _documented_fields() == list(schema["$defs"]["scenario"]["properties"])


def test_the_docs_name_the_schema_and_link_its_reference() -> None:
    text = PAGE.read_text("utf-8")
    assert "`mock_server/config.schema.json`" in text
    assert "](reference/config.md)" in text
