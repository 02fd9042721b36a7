"""`gensynth split ...`: add, list, show, check, drop and export splits (gensynth/splits.py).

Only typer is imported here; duckdb, sqlglot and rich load inside the commands so that
`gensynth --help` stays instant.
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

WarehouseOpt = typer.Option(
    None, "--warehouse", "-w", help="Warehouse file (default: $GENSYNTH_WAREHOUSE, else warehouse/gensynth.duckdb)."
)


def _path(warehouse: Optional[Path]) -> Path:
    from gensynth.warehouse import default_warehouse_path

    return Path(warehouse) if warehouse is not None else default_warehouse_path()


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
    replace: bool = typer.Option(False, "--replace", help="Replace a split of the same name."),
    warehouse: Optional[Path] = WarehouseOpt,
) -> None:
    """Validate a split's SQL, run it, check its rows and register it as the view split_<name>."""
    from rich.table import Table

    from gensynth.splits.registry import add_split

    report = add_split(_path(warehouse), file, name=name, replace=replace)
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

    from gensynth.splits.registry import list_splits
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
    for col in ("name", "kind", "roles", "programs", "registered (UTC)", "what it tests"):
        table.add_column(col, justify="right" if col == "programs" else "left")
    for r in rows:
        summary = r["description"].removeprefix(f"{r['name']}:").strip().split(". ")[0].split("\n")[0].split(" (")[0]
        tests = sum(role.startswith("test_") for role in r["roles"])
        roles = ", ".join([role for role in r["roles"] if not role.startswith("test_")] + ([f"{tests} test"] if tests else []))
        table.add_row(r["name"], r["kind"], roles, _fmt(sum(r["roles"].values())), str(r["created_at"])[:16], summary)
    out.print(table)


@split_app.command("show")
def show(name: str = typer.Argument(..., help="Split name (see `gensynth split list`)."),
         warehouse: Optional[Path] = WarehouseOpt) -> None:
    """Counts, functions, train overlap, radius and n_ops distributions and flatness per role."""
    from rich.table import Table

    from gensynth.splits.registry import CELL_DIMS, CELLS_PER_AXIS, GRIDS, sandbox, split_stats
    from gensynth.warehouse import open_warehouse

    con = open_warehouse(_path(warehouse))
    try:
        sandbox(con)
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
          warehouse: Optional[Path] = WarehouseOpt) -> None:
    """Re-validate split(s) against the warehouse as it is now and re-run their row checks."""
    from rich.table import Table

    from gensynth.splits.registry import check_split, registered_names, sandbox
    from gensynth.warehouse import open_warehouse

    if (name is None) == (not all_):
        raise GensynthError("Pass a split name or --all (not both), e.g. `gensynth split check density_natural` or `gensynth split check --all`.")
    con = open_warehouse(_path(warehouse))
    failed, notices = [], []
    table = Table(title="split check")
    for col in ("split", "result", "programs", "seconds"):
        table.add_column(col)
    try:
        sandbox(con)
        names = registered_names(con) if all_ else [name]
        for n in names:
            try:
                report = check_split(con, n)
            except GensynthError as exc:
                if not all_:
                    raise
                failed.append((n, str(exc)))
                table.add_row(n, "[red]refused[/red]", "-", "-")
                continue
            table.add_row(n, "ok" + (" (see notice)" if report.notices else ""), _fmt(sum(report.roles.values())), f"{report.seconds:.2f}")
            notices += [(n, line) for line in report.notices]
    finally:
        con.close()
    out = _out()
    out.print(table)
    for n, line in notices:
        out.print(f"[yellow]notice:[/yellow] {n}: {line}")
    for n, message in failed:
        out.print(f"[red]{n}[/red]: {message}")
    if failed:
        raise GensynthError(f"{len(failed)} of {len(names)} splits failed their checks: {', '.join(n for n, _ in failed)}.")


@split_app.command("drop")
def drop(name: str = typer.Argument(..., help="Split name."), warehouse: Optional[Path] = WarehouseOpt) -> None:
    """Drop a split's view and its registry row."""
    from gensynth.splits.registry import drop_split
    from gensynth.warehouse import open_warehouse

    con = open_warehouse(_path(warehouse), read_only=False)
    try:
        drop_split(con, name)
    finally:
        con.close()
    _out().print(f"dropped split {name} (view split_{name})")


@split_app.command("export")
def export(name: str = typer.Argument(..., help="Split name."),
           parquet: Path = typer.Option(..., "--parquet", help="Parquet file to write (program_id, role, function_id, n_ops, depth, prefix, infix)."),
           warehouse: Optional[Path] = WarehouseOpt) -> None:
    """Write a split with its programs' text to a Parquet file."""
    from gensynth.splits.registry import export_split
    from gensynth.warehouse import open_warehouse

    con = open_warehouse(_path(warehouse))
    try:
        rows = export_split(con, name, parquet)
    finally:
        con.close()
    _out().print(f"wrote {rows:,} rows of split {name} to {parquet}")
