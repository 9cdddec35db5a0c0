"""The fenced code blocks of the docs pages, as examples: which are programs or commands
the test suite runs (``tests/docs/test_examples.py``), which are marked not to be run and
why, and which are files the commands use (a TOML block whose first line is ``# NAME``).

A block is marked by an HTML comment on the line before it, ``<!-- not-run: REASON -->``,
with REASON one of ``REASONS``: the few examples that need what the suite cannot have.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

RUN = frozenset({"sh", "bash", "console", "python"})
"""The languages of the blocks that are run: commands, and Python programs or tests."""

REASONS = {
    "gpu": "needs a CUDA GPU, or weights the suite does not have",
    "real-api": "calls the real ImagePipeline API and spends credits",
    "network": "downloads from a package index",
    "root": "installs system packages (the suite has them already)",
    "suite": "runs the test suite itself, or a test of its own named beside it runs it",
}

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_MARK = re.compile(r"<!--\s*not-run:\s*([\w-]+)\s*-->\s*$")
_FILE = re.compile(r"^#\s*([\w.-]+\.(?:toml|json))\s*$")


@dataclass(frozen=True)
class Example:
    """One fenced block: where it is, its language and text, and its mark if any."""

    page: str
    line: int
    lang: str
    code: str
    not_run: str | None = None

    @property
    def file_name(self) -> str | None:
        """The file a TOML or JSON block is written to (its first line, ``# NAME``)."""
        first = self.code.split("\n", 1)[0]
        found = _FILE.match(first) if self.lang in ("toml", "json") else None
        return found.group(1) if found else None

    @property
    def runs(self) -> bool:
        return self.lang in RUN and self.not_run is None

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def page_examples(path: Path, docs: Path) -> list[Example]:
    """The fenced blocks of one page, in order (ValueError for an unknown mark)."""
    text = path.read_text("utf-8")
    found = []
    for block in _FENCE.finditer(text):
        before = text[: block.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(before)
        reason = mark.group(1) if mark else None
        line = text.count("\n", 0, block.start()) + 1
        page = path.relative_to(docs).as_posix() if path.is_relative_to(docs) else path.name
        if reason is not None and reason not in REASONS:
            raise ValueError(
                f"{page}:{line}: not-run: {reason!r} is not one of {', '.join(REASONS)}"
            )
        indent = block.group("indent")
        code = "".join(
            each[len(indent) :] if each.startswith(indent) else each
            for each in block.group("code").splitlines(keepends=True)
        )
        found.append(Example(page, line, block.group("lang"), code, reason))
    return found


def all_examples(docs: Path) -> list[Example]:
    """The blocks of every page under ``docs``, page by page."""
    return [each for path in sorted(docs.rglob("*.md")) for each in page_examples(path, docs)]


def summary(examples: list[Example]) -> str:
    """The line the build prints: ``docs: 41 examples run, 3 marked gpu, ...``."""
    marked = Counter(each.not_run for each in examples if each.lang in RUN and each.not_run)
    run = sum(each.runs for each in examples)
    said = [f"{run} examples run"] + [f"{n} marked {why}" for why, n in sorted(marked.items())]
    return "docs: " + ", ".join(said)
