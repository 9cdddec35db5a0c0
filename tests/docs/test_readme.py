"""The README says what ipmock is, holds the two commands exactly as the install and CI
run them, and links every page of the docs site (each link to a file that exists)."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO

README = (REPO / "README.md").read_text("utf-8")


def _nav_pages(entries: list[object]) -> list[str]:
    pages: list[str] = []
    for entry in entries:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            pages += _nav_pages(value) if isinstance(value, list) else [str(value)]
    return pages


def test_the_readme_holds_the_two_commands() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    assert "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/ipmock serve\n" in blocks
    assert "bash scripts/test.sh\n" in blocks


def test_the_readme_links_every_page_of_the_site_and_nothing_missing() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text("utf-8"))
    linked = set(re.findall(r"\]\(docs/([\w/.-]+\.md)\)", README))
    pages = set(_nav_pages(config["nav"])) - {"index.md"}
    assert pages <= linked, f"the README does not link {sorted(pages - linked)}"
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if not target.startswith("http"):
            assert (REPO / target).exists(), f"the README links {target}, which is missing"
