"""Every command and program in the docs pages runs, against a real ``ipmock serve`` on
127.0.0.1, as its page shows it (``page_session`` says how; the long pages run from
their own files, ``pages.LONG``); the few marked not to be run carry a known reason, and
every block is of a kind the runner knows."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs.examples import REASONS, RUN, all_examples, page_examples, summary
from tests.conftest import REPO
from tests.docs.pages import ALL_PAGES, DOCS, LONG, pages_of, params, run_page

DATA = frozenset({"toml", "json", "text", ""})
"""Blocks that are not run: files the commands use, and output shown as it looks."""


@pytest.mark.parametrize("page", params("tasks"))
def test_the_examples_of_a_page_run(page: str, tmp_path: Path) -> None:
    run_page(page, tmp_path)


def test_every_page_is_in_one_group() -> None:
    grouped = [*pages_of("tasks"), *(page for pages in LONG.values() for page in pages)]
    assert sorted(grouped) == sorted(ALL_PAGES), "a page in LONG that is not in docs/?"


def test_every_block_is_run_marked_or_data() -> None:
    examples = [*all_examples(DOCS), *page_examples(REPO / "README.md", DOCS)]
    assert sum(each.runs for each in examples) >= 20, summary(examples)
    for each in examples:
        assert each.lang in RUN | DATA, f"{each}: a {each.lang!r} block is neither run nor data"
        if each.lang in ("toml", "json") and each.code.lstrip().startswith("#"):
            assert each.file_name, f"{each}: its first line should name its file (# NAME.toml)"


def test_an_unknown_mark_is_refused(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- not-run: because -->\n```sh\nfalse\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"page.md:2: not-run: 'because' is not one of gpu"):
        page_examples(page, tmp_path)
    assert set(REASONS) >= {"gpu", "real-api"}


def test_the_summary_counts_runs_and_marks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```sh\ntrue\n```\n\n<!-- not-run: gpu -->\n```sh\nnvidia-smi\n```\n\n"
        "```toml\n# a.toml\nx = 1\n```\n\n<!-- not-run: gpu -->\n```python\nimport torch\n```\n"
        "\n```text\nout\n```\n",
        encoding="utf-8",
    )
    assert summary(all_examples(tmp_path)) == "docs: 1 examples run, 2 marked gpu"
