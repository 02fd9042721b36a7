"""`gensynth split ...`: add, list, show, check, drop and export splits (gensynth/splits/).

Only typer is imported here; duckdb, sqlglot and rich load inside the commands so that
`gensynth --help` stays instant. Every command that runs a split's SQL does so under
``--time-limit`` and ``--memory-limit`` (gensynth.warehouse.limited); Ctrl-C stops it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gensynth.errors import GensynthError

split_app = typer.Typer(
    help="Train/test splits as SQL over the manifold view: add, list, show, check, drop, export.",
    no_args_is_help=True,
)

from gensynth.cli.options import WarehouseOpt, memory_limit_opt, time_limit_opt  # noqa: E402
from gensynth.cli.options import warehouse_path as _path  # noqa: E402

TimeLimit = time_limit_opt()
MemoryLimit = memory_limit_opt()


def _limits(seconds: float, memory: str):
    from gensynth.warehouse import QueryLimits

    return QueryLimits(seconds=seconds, memory=memory).validate()


def _out():
    from gensynth.progress import make_console  # not cut to 80 columns in a pipe

    return make_console()


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@split_app.command("add")
def add(
    file: Path = typer.Argument(..., help="A .sql file holding one SELECT that returns program_id and role."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Split name (default: the file name without .sql); the view is split_<name>."),
    replace: bool = typer.Option(False, "--replace", help="Replace a split of the same name (a stale one too)."),
    time_limit: float = TimeLimit,
    memory_limit: str = MemoryLimit,
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Validate a split's SQL, run it, check its rows and register it as the view split_<name>."""
    from rich.table import Table

    from gensynth.splits import add_split

    report = add_split(_path(warehouse), file, name=name, replace=replace, limits=_limits(time_limit, memory_limit))
    table = Table(title=f"split {report.name} ({report.kind}) registered as view split_{report.name}")
    for col in ("role", "programs", "asked", "functions", "functions shared with train"):
        table.add_column(col, justify="left" if col == "role" else "right")
    for role, n in report.roles.items():
        asked = report.requested.get(f"n_{role}", report.requested.get("n_test") if role.startswith("test_") else None)
        table.add_row(role, _fmt(n), _fmt(asked), _fmt(report.functions.get(role)), _fmt(report.train_overlap.get(role)))
    out = _out()
    out.print(table)
    for line in report.notices:
        out.print(f"[yellow]notice:[/yellow] {line}")
    out.print(f"validated, materialised and checked in {report.seconds:.2f} s")


@split_app.command("list")
def list_(warehouse: Optional[Path] = WarehouseOpt) -> None:
    """List the registered splits."""
    from rich.table import Table

    from gensynth.splits import list_splits
    from gensynth.warehouse import open_warehouse

    con = open_warehouse(_path(warehouse))
    try:
        rows = list_splits(con)
    finally:
        con.close()
    out = _out()
    if not rows:
        out.print("No splits registered. `gensynth build` registers the built-in ones; add your own with `gensynth split add FILE`.")
        return
    table = Table(title="splits")
    for col in ("name", "kind", "status", "roles", "programs", "registered (UTC)", "what it tests"):
        table.add_column(col, justify="right" if col == "programs" else "left")
    for r in rows:
        summary = r["description"].removeprefix(f"{r['name']}:").strip().split(". ")[0].split("\n")[0].split(" (")[0]
        tests = sum(role.startswith("test_") for role in r["roles"])
        roles = ", ".join([role for role in r["roles"] if not role.startswith("test_")] + ([f"{tests} test"] if tests else []))
        status = "ok" if r["status"] == "ok" else "[red]stale[/red]"
        programs = _fmt(sum(r["roles"].values()))
        if r["status"] == "stale":  # its stored counts are of the universe it last passed on: not shown
            roles, programs = "-", "-"
        table.add_row(r["name"], r["kind"], status, roles, programs, str(r["created_at"])[:16], summary)
    out.print(table)
    for r in rows:
        if r["status"] == "stale":
            out.print(f"[red]stale[/red] {r['name']} (no view split_{r['name']}): {r['stale_reason']}\n"
                      f"  Fix its SQL and `gensynth split add FILE --name {r['name']} --replace`, or "
                      f"`gensynth split check {r['name']}` to re-validate it as it is.")


@split_app.command("show")
def show(name: str = typer.Argument(..., help="Split name (see `gensynth split list`)."),
         time_limit: float = TimeLimit, memory_limit: str = MemoryLimit,
         warehouse: Optional[Path] = WarehouseOpt) -> None:
    """Counts, functions, train overlap, radius and n_ops distributions and flatness per role."""
    from rich.table import Table

    from gensynth.splits import CELL_DIMS, CELLS_PER_AXIS, GRIDS, sandbox, split_stats
    from gensynth.warehouse import limited, open_warehouse

    con = open_warehouse(_path(warehouse))
    try:
        sandbox(con)
        with limited(con, _limits(time_limit, memory_limit), f"Split '{name}'"):
            st = split_stats(con, name)
    finally:
        con.close()
    out = _out()
    out.print(f"[bold]split {st.name}[/bold] ({st.kind}) view split_{st.name}, from {st.source}, sql sha256 {st.sql_hash[:12]}, registered {st.created_at[:19]} UTC")
    out.print(st.description)

    roles = Table(title="roles")
    for col in ("role", "programs", "asked", "pool", "functions", "functions shared with train", "non-finite"):
        roles.add_column(col, justify="left" if col == "role" else "right")
    for r in st.roles:
        roles.add_row(r.role, _fmt(r.programs), _fmt(r.requested), _fmt(r.pool), _fmt(r.functions), _fmt(r.train_overlap), _fmt(r.nonfinite))
    out.print(roles)

    radius = Table(title="radius per role (10th / 50th / 90th percentile)")
    for col in ("role", "syn_radius", "sem_radius"):
        radius.add_column(col, justify="left" if col == "role" else "right")
    for r in st.roles:
        radius.add_row(r.role, *(" / ".join(f"{v:.2f}" for v in q) if q else "-" for q in (r.syn_radius, r.sem_radius)))
    out.print(radius)

    ops = sorted({k for r in st.roles for k in r.n_ops})
    n_ops = Table(title="n_ops per role (% of the role's programs)")
    n_ops.add_column("role")
    for k in ops:
        n_ops.add_column(f"{k} ops", justify="right")
    for r in st.roles:
        total = sum(r.n_ops.values()) or 1
        n_ops.add_row(r.role, *(f"{100 * r.n_ops.get(k, 0) / total:.1f}" for k in ops))
    out.print(n_ops)

    cells = CELLS_PER_AXIS ** CELL_DIMS
    flat = Table(title=f"flatness: normalised entropy of occupancy, 1 = every occupied cell equally "
                       f"(grids of {CELLS_PER_AXIS}^{CELL_DIMS} = {cells} cells; functions: one cell per function)")
    flat.add_column("role")
    for grid in GRIDS:
        flat.add_column(grid, justify="right")
        flat.add_column("cells hit", justify="right")
    for r in st.roles:
        flat.add_row(r.role, *(v for g in GRIDS for v in (_fmt(r.flatness[g]), f"{r.cells[g]:,} / {st.occupied[g]:,}")))
    flat.add_row("[dim]universe (natural)[/dim]",
                 *(v for g in GRIDS for v in (_fmt(st.universe_flatness[g]), f"{st.occupied[g]:,} / {st.occupied[g]:,}")))
    out.print(flat)

    if any(st.columns.values()):
        cols = Table(title="columns")
        cols.add_column("column")
        cols.add_column("meaning")
        for c, doc in st.columns.items():
            cols.add_row(c, doc or "-")
        out.print(cols)
    for line in filter(None, st.notes.splitlines()):
        out.print(f"[yellow]notice:[/yellow] {line}")


@split_app.command("check")
def check(name: Optional[str] = typer.Argument(None, help="Split name; or pass --all."),
          all_: bool = typer.Option(False, "--all", help="Check every registered split."),
          time_limit: float = TimeLimit, memory_limit: str = MemoryLimit,
          warehouse: Optional[Path] = WarehouseOpt) -> None:
    """Re-validate split(s) against the warehouse as it is now and re-run their row checks.

    A stale split that passes again is registered again (its view is recreated)."""
    from rich.table import Table

    from gensynth.splits import check_split, registered_names, revive_split, sandbox
    from gensynth.warehouse import open_warehouse

    if (name is None) == (not all_):
        raise GensynthError("Pass a split name or --all (not both), e.g. `gensynth split check density_natural` or `gensynth split check --all`.")
    limits, path = _limits(time_limit, memory_limit), _path(warehouse)
    con = open_warehouse(path)
    results, failed = [], []
    try:
        sandbox(con)
        names = registered_names(con) if all_ else [name]
        for n in names:
            try:
                results.append((n, check_split(con, n, limits)))
            except GensynthError as exc:
                if not all_:
                    raise
                failed.append((n, str(exc)))
    finally:
        con.close()
    revive = [(n, r) for n, r in results if r.revivable]
    if revive:  # a short writer: the checks ran above, on a read-only connection
        con = open_warehouse(path, read_only=False)
        try:
            sandbox(con)
            for n, report in revive:
                revive_split(con, n, report)
        finally:
            con.close()
    table = Table(title="split check")
    for col in ("split", "result", "programs", "seconds"):
        table.add_column(col)
    for n, report in results:
        result = "ok, registered again (was stale)" if report.revivable else "ok" + (" (see notice)" if report.notices else "")
        table.add_row(n, result, _fmt(sum(report.roles.values())), f"{report.seconds:.2f}")
    for n, _ in failed:
        table.add_row(n, "[red]fails[/red]", "-", "-")
    out = _out()
    out.print(table)
    for n, report in results:
        for line in report.notices:
            out.print(f"[yellow]notice:[/yellow] {n}: {line}")
    for n, message in failed:
        out.print(f"[red]{n}[/red]: {message}")
    if failed:
        raise GensynthError(f"{len(failed)} of {len(names)} splits failed their checks: {', '.join(n for n, _ in failed)}.")


@split_app.command("drop")
def drop(name: str = typer.Argument(..., help="Split name."),
         force: bool = typer.Option(False, "--force", help="Drop it although other splits read it or runs used it."),
         warehouse: Optional[Path] = WarehouseOpt) -> None:
    """Drop a split's view and its registry row (refused while other splits or runs depend on it)."""
    from gensynth.splits import drop_split
    from gensynth.warehouse import open_warehouse

    con = open_warehouse(_path(warehouse), read_only=False)
    try:
        staled = drop_split(con, name, force=force)
    finally:
        con.close()
    out = _out()
    out.print(f"dropped split {name} (view split_{name})")
    for other in staled:
        out.print(f"[yellow]notice:[/yellow] split {other} read split_{name}; it is kept as stale (see `gensynth split list`).")


@split_app.command("export")
def export(name: str = typer.Argument(..., help="Split name."),
           parquet: Path = typer.Option(..., "--parquet", help="Parquet file to write (program_id, role, function_id, n_ops, depth, prefix, infix)."),
           time_limit: float = TimeLimit, memory_limit: str = MemoryLimit,
           warehouse: Optional[Path] = WarehouseOpt) -> None:
    """Write a split with its programs' text to a Parquet file."""
    from gensynth.splits import export_split
    from gensynth.warehouse import limited, open_warehouse

    con = open_warehouse(_path(warehouse))
    try:
        with limited(con, _limits(time_limit, memory_limit), f"Split '{name}'"):
            rows = export_split(con, name, parquet)
    finally:
        con.close()
    _out().print(f"wrote {rows:,} rows of split {name} to {parquet}")
