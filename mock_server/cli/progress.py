"""Progress on long work, and the summary table that ends a run: a rich bar and table on a
terminal, plain lines and aligned text otherwise (a pipe, a CI log).

Two calls, both writing to ``sys.stdout`` as it is when they are called (or ``stream``):

* ``steps(total, label)``: a context manager whose ``advance(amount, note)`` counts work
  done. ``total=None`` is work of unknown size (a phase): it shows its elapsed time only.
  Without a terminal it prints ``label: 3/6 (50%), 1.2 s: note`` for each step when there
  are at most ten, else each time another tenth is done, and a last line if it ends short.
* ``summary(title, rows)``: one row per check or phase (name, result, seconds, details).

Every text shown is data: rich markup in a name or a note (``[red]``) is printed as is.
rich is imported on first use, so importing this module costs nothing.
"""

from __future__ import annotations

import sys
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["Row", "Steps", "steps", "summary"]

_PLAIN_EVERY_STEP = 10
"""Up to this many steps, a plain line for each; above it, one per tenth of the total."""

_shared: Progress | None = None
"""The rich display now on screen: work begun inside another's ``steps`` joins it."""


class Steps:
    """Work under way: ``advance`` it as parts finish; ``elapsed`` seconds since it began."""

    def __init__(self, total: float | None, label: str, unit: str) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.done: float = 0.0
        self.note = ""
        self._started = time.monotonic()
        self._shown: Callable[[], None] = lambda: None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def advance(self, amount: float = 1, note: str = "") -> None:
        """Count ``amount`` more done (of ``total``); ``note`` says what just finished."""
        self.done += amount
        self.note = note
        self._shown()

    def figures(self) -> str:
        """``3/6 (50%)``, ``4.2/14.0 GB (30%)``; empty for work of unknown size."""
        if self.total is None:
            return ""
        unit = f" {self.unit}" if self.unit else ""
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        amount = "{:.0f}" if isinstance(self.total, int) else "{:.1f}"
        return f"{amount.format(self.done)}/{amount.format(self.total)}{unit}{share}"


@contextmanager
def steps(
    total: float | None,
    label: str,
    *,
    unit: str = "",
    stream: TextIO | None = None,
    terminal: bool | None = None,
) -> Iterator[Steps]:
    """Show the progress of ``total`` units of work (``unit`` names them, e.g. ``GB``; an
    empty one counts steps) while the block runs; ``total=None``: unknown, elapsed time
    only. On a terminal (``terminal``: None asks ``stream``; False for work inside a
    server that logs meanwhile) a rich bar, with whatever is printed to stdout meanwhile
    shown above it; else plain lines. Work begun inside another ``steps`` block shows as
    one more bar under it.

    A fuzz run, for one::

        with progress.steps(len(seeds), "ipmock fuzz") as fuzz:
            for seed in seeds:
                ...
                fuzz.advance(note=f"seed {seed}: {outcome}")
    """
    work = Steps(total, label, unit)
    console = _console(stream, terminal)
    if console is None:
        with _plain(work, stream or sys.stdout):
            yield work
    else:
        with _rich(work, console):
            yield work


@contextmanager
def _plain(work: Steps, out: TextIO) -> Iterator[None]:
    printed = {"done": 0.0}

    def line(text: str) -> None:
        out.write(_printable(text) + "\n")
        out.flush()

    def show() -> None:
        total = work.total
        if total is None:
            return

        def tenth(done: float) -> int:
            return int(10 * done / total) if total else 0

        if total <= _PLAIN_EVERY_STEP or tenth(work.done) > tenth(printed["done"]):
            printed["done"] = work.done
            note = f": {work.note}" if work.note else ""
            line(f"{work.label}: {work.figures()}, {work.elapsed:.1f} s{note}")

    work._shown = show
    if work.total is None:
        line(f"{work.label} ...")
    try:
        yield
    except BaseException as exc:
        where = f" at {work.figures()}" if work.total is not None else ""
        line(f"{work.label}: stopped{where} after {work.elapsed:.1f} s ({type(exc).__name__})")
        raise
    if work.total is None:
        line(f"{work.label}: done in {work.elapsed:.1f} s")
    elif work.done != printed["done"] or work.done < work.total:
        line(f"{work.label}: ended at {work.figures()} after {work.elapsed:.1f} s")


@contextmanager
def _rich(work: Steps, console: Console) -> Iterator[None]:
    global _shared
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    owner = _shared is None
    bars = _shared or Progress(
        SpinnerColumn(finished_text="[green]done"),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.fields[figures]}", markup=False),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}", markup=False),
        console=console,
    )
    task: TaskID = bars.add_task(
        _printable(work.label), total=work.total, figures=work.figures(), note=""
    )

    def show() -> None:
        bars.update(task, completed=work.done, figures=work.figures(), note=_printable(work.note))

    work._shown = show
    if owner:
        _shared = bars
        bars.start()
    try:
        yield
        if work.total is None:
            bars.update(task, total=1, completed=1, figures="", note="done")
    finally:
        bars.stop_task(task)
        if owner:
            bars.stop()
            _shared = None


def _console(stream: TextIO | None, terminal: bool | None) -> Console | None:
    """A rich console for ``stream`` when it is a terminal (or ``terminal`` says so); None
    when lines must be plain. A pipe stays plain even where FORCE_COLOR is set (CI
    services set it for colour, and a redrawn bar would fill their logs)."""
    from rich.console import Console

    out = stream or sys.stdout
    live = _isatty(out) if terminal is None else terminal
    console = Console(file=out, force_terminal=terminal, force_interactive=live, highlight=False)
    return console if live and console.is_terminal and not console.is_dumb_terminal else None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or a closed file
        return False


def _printable(text: str) -> str:
    """``text`` with control characters (escape sequences from a server, say) written as
    ``\\x1b`` and the like, so that a plain log shows them instead of obeying them."""
    return "".join(
        ch.encode("unicode_escape").decode() if unicodedata.category(ch) == "Cc" else ch
        for ch in text
    )


@dataclass(frozen=True)
class Row:
    """One line of a summary: a check or phase, its result (``ok``, ``FAIL``, ``skip`` or
    words of the caller's), its time in seconds (None: not timed), details (lines)."""

    name: str
    result: str
    seconds: float | None = None
    details: str = ""


_STYLES = {"ok": "green", "passed": "green", "FAIL": "bold red", "FAILED": "bold red"}


def summary(
    title: str,
    rows: Sequence[Row],
    *,
    stream: TextIO | None = None,
    terminal: bool | None = None,
) -> None:
    """Print ``rows`` under ``title``: a rich table on a terminal, else aligned columns
    (name, result, time, then details, a detail's later lines below its first)."""
    console = _console(stream, terminal)
    if console is None:
        out = stream or sys.stdout
        out.write(_plain_table(title, rows) + "\n")
        out.flush()
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(_printable(title)), title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("time", justify="right")
    table.add_column("details")
    for row in rows:
        table.add_row(
            Text(_printable(row.name)),
            Text(_printable(row.result), style=_STYLES.get(row.result, "yellow")),
            Text(_seconds(row.seconds)),
            Text("\n".join(_printable(line) for line in row.details.splitlines())),
        )
    console.print(table)


def _seconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def _plain_table(title: str, rows: Sequence[Row]) -> str:
    header = ("check", "result", "time")
    cells = [(_printable(r.name), _printable(r.result), _seconds(r.seconds)) for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(3)]
    rule = tuple("-" * w for w in widths)

    def line(name: str, result: str, seconds: str, *, details: str) -> str:
        text = f"  {name:<{widths[0]}}  {result:<{widths[1]}}  {seconds:>{widths[2]}}  {details}"
        return text.rstrip()

    lines = [_printable(title), line(*header, details="details"), line(*rule, details="-------")]
    indent = " " * (2 + sum(widths) + 6)
    for (name, result, seconds), row in zip(cells, rows, strict=True):
        first, *more = row.details.splitlines() or [""]
        lines.append(line(name, result, seconds, details=_printable(first)))
        lines += [(indent + _printable(detail)).rstrip() for detail in more]
    return "\n".join(lines)
