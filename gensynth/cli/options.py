"""Options and validators shared by every command group (one definition each).

Only typer and the standard library load here. Validators raise ``GensynthError`` naming
the flag, so a bad value gets the CLI's one-paragraph ``Error: ...`` before any work.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from gensynth.errors import GensynthError

SEED_MAX = 2**32 - 1  # numpy, torch and DuckDB's hash all take seeds in [0, 2^32)

WAREHOUSE_HELP = "Warehouse file (default: $GENSYNTH_WAREHOUSE, else warehouse/gensynth.duckdb)."
# Default-value style (``warehouse: Optional[Path] = WarehouseOpt``) ...
WarehouseOpt = typer.Option(None, "--warehouse", "-w", help=WAREHOUSE_HELP)
# ... and Annotated style (``warehouse: Warehouse = None``): an Annotated option takes no default.
Warehouse = Annotated[Optional[Path], typer.Option("--warehouse", "-w", help=WAREHOUSE_HELP)]


def warehouse_path(path: Optional[Path]) -> Path:
    """The warehouse a command works on: the flag, else $GENSYNTH_WAREHOUSE, else the default."""
    from gensynth.warehouse import default_warehouse_path

    return Path(path) if path is not None else default_warehouse_path()


def _flag(param) -> str:
    opts = getattr(param, "opts", None) or [f"--{getattr(param, 'name', 'value').replace('_', '-')}"]
    return max(opts, key=len)


def finite_float(low: float | None = None, high: float | None = None, low_open: bool = False) -> Callable:
    """A typer callback refusing NaN, infinities and values outside [low, high] (``low_open``: (low, high]).

    Use: ``lr: float = typer.Option(1e-3, "--lr", callback=finite_float(0, low_open=True))``.
    """
    def check(ctx: typer.Context, param, value):
        if value is None:
            return value
        flag = _flag(param)
        if not math.isfinite(value):
            raise GensynthError(f"{flag} must be a finite number, got {value}. Give a number such as {flag} {param.default or 1}.")
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high):
            bounds = (f"{'>' if low_open else '>='} {low:g}" if low is not None else "") + \
                     (" and " if low is not None and high is not None else "") + (f"<= {high:g}" if high is not None else "")
            raise GensynthError(f"{flag} must be {bounds}, got {value:g}.")
        return value
    return check


def int_range(low: int | None = None, high: int | None = None) -> Callable:
    """A typer callback refusing integers outside [low, high] (before they overflow deep inside)."""
    def check(ctx: typer.Context, param, value):
        if value is None:
            return value
        if (low is not None and value < low) or (high is not None and value > high):
            flag = _flag(param)
            bounds = " and ".join(s for s in ((f">= {low:,}" if low is not None else ""), (f"<= {high:,}" if high is not None else "")) if s)
            raise GensynthError(f"{flag} must be {bounds}, got {value:,}.")
        return value
    return check


seed_range = int_range(0, SEED_MAX)  # every --seed: `typer.Option(0, "--seed", callback=seed_range)`


def output_dir(ctx: typer.Context, param, value: Optional[Path]) -> Optional[Path]:
    """A typer callback for an output directory: refuse a regular file, or a place that cannot be written."""
    if value is None:
        return value
    flag, path = _flag(param), Path(value)
    if path.exists() and not path.is_dir():
        raise GensynthError(f"{flag} '{path}' is a file, not a directory. Give a directory (it is created if missing), e.g. {flag} {path.with_suffix('')}_report.")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise GensynthError(f"{flag} '{path}': '{probe}' is a file, not a directory. Choose another {flag}.")
    if not os.access(probe, os.W_OK | os.X_OK) or _read_only_filesystem(probe):
        raise GensynthError(f"{flag} '{path}': '{probe}' is not writable. Choose a writable {flag} directory.")
    return value


def _read_only_filesystem(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def time_limit_opt() -> typer.models.OptionInfo:
    """``--time-limit SECONDS`` for commands that run user SQL (gensynth.warehouse.QueryLimits)."""
    from gensynth.limits import QUERY_SECONDS

    return typer.Option(QUERY_SECONDS, "--time-limit", callback=finite_float(0, low_open=True),
                        help="Stop the split's SQL after this many seconds (it is refused; nothing changes).", show_default=True)


def memory_limit_opt() -> typer.models.OptionInfo:
    """``--memory-limit SIZE`` for commands that run user SQL."""
    from gensynth.limits import QUERY_MEMORY

    return typer.Option(QUERY_MEMORY, "--memory-limit", help="DuckDB memory limit while the split's SQL runs (e.g. 2GB).", show_default=True)
