"""The examples of the client-checking pages (ipmock fuzz, verify), in a file of their own
so that they run beside the other pages' (tests/docs/pages.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.pages import params, run_page


@pytest.mark.parametrize("page", params("clients"))
def test_the_examples_of_a_page_run(page: str, tmp_path: Path) -> None:
    run_page(page, tmp_path)
