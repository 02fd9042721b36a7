"""Progress display, stage timing and the consoles every command prints through.

Console policy: on a terminal, rich fits output to the terminal's width. Written to a
pipe or a file (not a terminal) and with no ``COLUMNS`` set, output is *not* fitted to
80 columns: a table is as wide as its longest cells, so run ids and split names are
never cut (``…``) or folded over lines, and ``gensynth runs list | grep RUN`` finds
whole rows. ``COLUMNS=N`` still sets a width explicitly.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Iterator

from rich.console import Console, ConsoleDimensions
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

PIPE_WIDTH = 1000  # width when not writing to a terminal: wider than any table gensynth prints, so none is cut


class PipeConsole(Console):
    """A rich console that never squeezes output into 80 columns when it is not writing to a terminal."""

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if self._width is None and not self.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
            return ConsoleDimensions(PIPE_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


def make_console(stderr: bool = False) -> Console:
    """A console for a command's output (stdout) or its progress and summaries (``stderr=True``)."""
    return PipeConsole(stderr=stderr)


console = make_console(stderr=True)  # progress bars, summaries, notes
out_console = make_console()  # a command's result (listings): what a pipe should get


class Stages:
    """Times named stages, shows a progress bar for each, and renders a summary table."""

    def __init__(self, quiet: bool = False) -> None:
        self.timings: dict[str, float] = {}
        self.quiet = quiet
        self._progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
            console=console, disable=quiet, transient=False,
        )

    def __enter__(self) -> "Stages":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    @contextlib.contextmanager
    def stage(self, name: str, total: int = 1) -> Iterator:
        """Run a stage; yields ``advance(done, total)`` to report progress within it."""
        task = self._progress.add_task(name, total=total)

        def advance(done: int, total_: int | None = None) -> None:
            self._progress.update(task, completed=done, total=total_ or total)

        start = time.perf_counter()
        yield advance
        self.timings[name] = time.perf_counter() - start
        self._progress.update(task, completed=self._progress.tasks[task].total)


def summary_table(title: str, rows: list[tuple[str, object]]) -> Table:
    """A two-column rich table (name, value) for a command's closing summary."""
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows:
        table.add_row(name, f"{value:,}" if isinstance(value, int) else f"{value:.2f}" if isinstance(value, float) else str(value))
    return table
