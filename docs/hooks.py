"""mkdocs hooks (``mkdocs.yml``: ``hooks``): the reference pages are generated from the
code as the site is built (``docs/reference_pages.py``), so they cannot be retyped or
drift; and the build says how many examples the suite runs and how many are marked.

Generated here rather than by a script that writes files into ``docs/``: there is then
no generated file in the tree to forget to regenerate, and ``mkdocs serve`` shows a change
to a docstring or a flag at once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # mkdocs loads this file by path: make `docs` importable
    sys.path.insert(0, str(_REPO))

from docs import examples, reference_pages  # noqa: E402


def on_page_markdown(markdown: str, **_: Any) -> str:
    """A page's reference markers replaced by the generated reference."""
    return reference_pages.expand(markdown)


def on_post_build(config: Any, **_: Any) -> None:
    """Print the examples' count: those the suite runs and those marked, by reason."""
    print(examples.summary(examples.all_examples(Path(config["docs_dir"]))))
