"""The examples of the real-images pages (tiny random weights on the CPU), in a file of
their own so that they run beside the other pages' (tests/docs/pages.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.pages import params, run_page


@pytest.mark.parametrize("page", params("reference"))
def test_the_examples_of_a_page_run(page: str, tmp_path: Path) -> None:
    run_page(page, tmp_path)
