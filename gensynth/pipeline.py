"""`gensynth build`: grammar → programs → functions (→ manifolds → splits) in a new warehouse.

Each stage reads what the previous one produced and writes its own tables; this module
only sequences them inside ``warehouse.building`` so the result replaces the old
warehouse atomically.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from gensynth.universe import programs as enumerate_stage
from gensynth.universe import functions as evaluate_stage
from gensynth.synthesis.tasks import make_beyond_tasks
from gensynth.manifolds.embed import EmbedConfig, embed_warehouse
from gensynth.universe.grammar import Grammar
from gensynth.progress import Stages
from gensynth.results.ingest import carry_over
from gensynth.version import code_version, data_version
from gensynth.warehouse import SCHEMA_VERSION, building, run_sql, write_meta

BEYOND_TASKS = 200  # tasks one operator larger than the universe (gensynth.synthesis.tasks)


@dataclass
class BuildSummary:
    """What a build produced, for the closing table and for tests."""

    programs: int
    functions: int
    nonfinite_functions: int
    distinct_evaluations: int
    timings: dict[str, float] = field(default_factory=dict)


def build_warehouse(grammar: Grammar, max_ops: int, path: Path, quiet: bool = False, after_store=None,
                    embed: "EmbedConfig | None" = None) -> BuildSummary:
    """Build a complete warehouse for ``grammar`` up to ``max_ops`` operators at ``path``.

    Writes meta, symbols, grid, programs, functions; then, unless ``embed`` is None, the
    manifolds (gensynth.manifolds.embed) and the built-in splits (gensynth.splits.registry). ``after_store(con,
    stages)`` runs further work inside the same atomic build (tests use it).
    """
    enumerate_stage.check_size(grammar, max_ops)
    if embed is not None:
        embed.validate()
    with building(path) as con, Stages(quiet=quiet) as stages:
        run_sql(con, "schema.sql")
        with stages.stage("enumerate"):
            dag = enumerate_stage.enumerate_programs(grammar, max_ops)
        with stages.stage("evaluate", total=max_ops) as advance:
            evaluation = evaluate_stage.evaluate_programs(grammar, dag, progress=advance)
        with stages.stage("store programs"):
            enumerate_stage.write_programs(con, grammar, dag, evaluation.function_id)
            del dag
        with stages.stage("store functions"):
            evaluate_stage.write_functions(con, grammar, evaluation.functions)
        functions = evaluation.functions
        summary = BuildSummary(
            programs=int(len(evaluation.function_id)),
            functions=len(functions),
            nonfinite_functions=int((~functions.finite).sum()),
            distinct_evaluations=evaluation.distinct_evaluations,
        )
        write_meta(con, {
            "schema_version": str(SCHEMA_VERSION),
            "grammar_name": grammar.name,
            "grammar": grammar.to_json(),
            "grammar_hash": grammar.hash,
            "grammar_source": grammar.source_text,
            "grid": grammar.grid_json(),
            "variables": list(grammar.variables),
            "max_ops": str(max_ops),
            "n_programs": str(summary.programs),
            "n_functions": str(summary.functions),
            "overflow_cells": str(evaluation.overflow_cells),
            "code_version": code_version(),
            "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "data_version": data_version(SCHEMA_VERSION, grammar.hash, max_ops),
        })
        del evaluation
        if embed is not None:
            run_manifold_stages(con, grammar, embed, stages)
            run_split_stage(con, stages)
            with stages.stage("tasks beyond"):
                n_beyond = make_beyond_tasks(con, grammar, BEYOND_TASKS, seed=embed.seed)
            if n_beyond == 0 and not quiet:
                from gensynth.progress import console

                console.print(f"[yellow]Notice:[/] no program with {max_ops + 1} operators computes a finite function outside "
                              f"this universe, so `tasks_beyond` is empty (nothing for `gensynth solve --view tasks_beyond`).")
            from gensynth.analysis.views import install_analysis_views

            with stages.stage("analysis views"):
                install_analysis_views(con)
        with stages.stage("carry over results"):
            # Results are irreplaceable: a rebuild keeps every run of the old warehouse. Runs
            # whose data_version differs from the new one are kept but refer to the old ids.
            carried = carry_over(path, con)
            write_meta(con, {"results_carried_runs": str(carried)})
        if after_store is not None:
            after_store(con, stages)
        summary.timings = dict(stages.timings)
        write_meta(con, {f"timing.{k.replace(' ', '_')}_s": f"{v:.3f}" for k, v in stages.timings.items()})
    return summary


def run_manifold_stages(con, grammar: Grammar, config: EmbedConfig, stages) -> None:
    """Embed (pq-grams, both manifolds) and record the new data version in meta."""
    embed_warehouse(con, grammar, config, stages)
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    write_meta(con, {"data_version": data_version(SCHEMA_VERSION, grammar.hash, meta["max_ops"], config)})


def run_split_stage(con, stages) -> None:
    """Register the built-in splits (gensynth.splits.registry manages its own transaction)."""
    from gensynth.splits.registry import register_builtin_splits

    register_builtin_splits(con, stages=stages)  # one stage per split in the summary
