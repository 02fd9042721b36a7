"""Progress display and stage timing shared by the long-running commands."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=True)


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
