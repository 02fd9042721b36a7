"""The sampling frame and strategies splits draw with (sql/sampling/).

Writes ``manifold_cells`` (sql/sampling/cells.sql: the finite programs of ``manifold``
with function, n_ops, depth, radii and their cell on each manifold; narrow, so that
splits over the full universe run in seconds), the sampling table macros
``sample_natural | sample_syntactic | sample_semantic | sample_diverse(pool, n, seed)``
and the density splits' shared pools ``density_pools`` / ``density_test_roles``.

Sampling strategies draw from a pool of ``manifold_cells`` rows, so only programs whose
function is finite (``manifold.sem IS NOT NULL``): a program undefined somewhere on the
grid has no semantic coordinates and no complete input/output example. They are
deterministic for a seed because they order by ``hash(..., seed)``, never ``random()``:

- ``natural``: uniform over programs.
- ``syntactic`` / ``semantic``: uniform over the cells of the syntactic / semantic
  manifold: 8 equal-width bins on each of the first 3 coordinates between their 1st and
  99th percentile (512 cells; see sql/sampling/cells.sql), drawn round-robin, a uniform
  program within each cell.
- ``diverse``: uniform over functions, then uniform over the drawn function's programs.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from gensynth.errors import GensynthError
from gensynth.warehouse import relation_exists, run_sql

STRATEGIES = ("natural", "syntactic", "semantic", "diverse")
# sql/sampling/ files in the order they are installed (cells first: the macros read it;
# the density pools last: they call the strategies).
SAMPLING_FILES = ("cells",) + STRATEGIES + ("density_pools",)
CELLS_PER_AXIS, CELL_DIMS = 8, 3  # must match sql/sampling/cells.sql
# The grids flatness is measured on: name -> manifold_cells column.
GRIDS = {"syntactic": "syn_cell", "semantic": "sem_cell", "functions": "function_id"}


def install_sampling(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``splits`` table (if missing), ``manifold_cells`` and the sampling macros."""
    if not relation_exists(con, "manifold"):
        raise GensynthError(
            "This warehouse has no `manifold` view, which splits are drawn from. Build the manifolds first "
            "(`gensynth build` runs every stage)."
        )
    run_sql(con, "splits_registry.sql")
    for name in SAMPLING_FILES:
        run_sql(con, f"sampling/{name}.sql")


def require_sampling(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a warehouse without the sampling frame (built without manifolds)."""
    if not relation_exists(con, "manifold_cells"):
        raise GensynthError(
            f"Warehouse '{path}' has no sampling tables (manifold_cells and the sample_* macros), which `gensynth build` "
            f"writes with the manifolds. Rebuild it with `gensynth build --warehouse {path}`."
        )
