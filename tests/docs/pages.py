"""The docs pages whose examples the suite runs, in groups of about equal time, one test
file each, so that ``pytest -n 3 --dist loadfile`` (scripts/test.sh) runs them side by
side; ``run_page`` runs one page's examples as ``page_session`` says."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs.examples import page_examples
from tests.conftest import REPO
from tests.docs.page_session import PageSession

DOCS = REPO / "docs"
ALL_PAGES = sorted(path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md"))
ALL_PAGES.append("../README.md")  # the README's tour runs too

LONG = {
    "clients": ["any-language.md", "verify.md"],  # ipmock fuzz, verify with schemathesis
    "reference": ["real-images.md", "gpu.md"],  # tiny random weights on the CPU
}
"""The pages of a minute or more on 2 cores; every other page is in the group "tasks"."""

REDIS = {"sharing.md"}


def pages_of(group: str) -> list[str]:
    """The pages of ``group``: one of LONG's, or "tasks" (the rest)."""
    if group in LONG:
        return LONG[group]
    grouped = {page for pages in LONG.values() for page in pages}
    return [page for page in ALL_PAGES if page not in grouped]


def params(group: str) -> list[object]:
    """The group's pages as pytest parameters with their cost marks: each starts a server,
    most take over 5 s."""
    found = []
    for page in pages_of(group):
        marks = [pytest.mark.socket, pytest.mark.slow, pytest.mark.timeout(900)]
        if page in REDIS:
            marks.append(pytest.mark.redis)
        name = page.removeprefix("../")
        found.append(pytest.param(page, marks=marks, id=name))
    return found


def run_page(page: str, folder: Path) -> None:
    """Every example of ``page`` in order in ``folder``; ExampleFailed names the first
    that did not do what the page says."""
    session = PageSession(folder, (DOCS / page).read_text("utf-8"))
    examples = page_examples(DOCS / page, DOCS)
    try:
        for example in examples:
            session.run(example)
    finally:
        session.close()
    assert session.ran == sum(each.runs for each in examples)
