"""The splits stage: train/test splits as SQL over the manifold.

Modules, in the order a split meets them: ``sampling`` (the sampling frame and strategy
macros), ``sqltext`` (reading a split's header, params and roles), ``validate`` (static
sqlglot checks of a split's SQL), ``contract`` (checks on
its rows after it runs), ``registry`` (the ``splits`` table and ``split_<name>`` views:
add, check, drop, list, built-ins), ``stats`` (`gensynth split show`), ``export``
(Parquet). The names below are the stage's public API.
"""

from gensynth.splits.contract import SplitReport, materialise_and_check
from gensynth.splits.export import export_split
from gensynth.splits.registry import (CarryReport, SplitInfo, require_split, add_split, builtin_names, builtin_sql, carry_over_splits, check_split,
                                      create_view, dependents, drop_split, dry_run, list_splits, mark_stale, reads,
                                      register_builtin_splits, register_split, registered_names, registry_row,
                                      revalidate_splits, revalidate_user_splits, revive_split, sandbox, usable_row)
from gensynth.splits.sampling import CELL_DIMS, CELLS_PER_AXIS, GRIDS, STRATEGIES, install_sampling, require_sampling
from gensynth.splits.stats import RoleStats, SplitStats, flatness, normalised_entropy, split_stats
from gensynth.splits.sqltext import column_docs, kind_of, params_of
from gensynth.splits.validate import KINDS, SplitSQL, check_name, parse_split
from gensynth.warehouse import SQL_DIR

__all__ = [
    "CELL_DIMS", "CELLS_PER_AXIS", "GRIDS", "KINDS", "SQL_DIR", "STRATEGIES", "CarryReport", "SplitInfo", "require_split", "RoleStats", "SplitReport",
    "SplitSQL", "SplitStats", "add_split", "builtin_names", "builtin_sql", "carry_over_splits", "check_name",
    "check_split", "column_docs", "create_view", "dependents", "drop_split", "dry_run", "mark_stale", "reads",
    "revive_split", "export_split", "flatness", "install_sampling", "kind_of", "list_splits",
    "materialise_and_check", "normalised_entropy", "params_of", "parse_split", "register_builtin_splits",
    "register_split", "registered_names", "registry_row", "revalidate_splits", "revalidate_user_splits", "require_sampling", "sandbox", "split_stats", "usable_row",
]
