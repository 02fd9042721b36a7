"""The orchestrator `gensynth build` runs: universe → manifolds → splits → tasks → views.

Each stage reads what the previous ones wrote and writes its own tables; this module only
sequences them (``BUILD_STAGES``) inside ``warehouse.building``, so the result replaces
the old warehouse atomically, and then carries over what a rebuild must never lose: the
results tables, the user splits and the user tasks of the warehouse it replaces.

| stage | module | writes |
| --- | --- | --- |
| universe | universe.programs, universe.functions | meta, symbols, grid, programs, functions |
| manifolds | manifolds.embed | pqgram_vocab, pqgrams, syn_coords, sem_coords, manifold |
| splits | splits | manifold_cells, sample_* macros, splits, split_<name> (built-ins) |
| tasks | synthesis.tasks | tasks_beyond |
| views | analysis.views | the analysis views |
| carry over | results.ingest, splits, synthesis.task_files | runs, metrics, evaluations, predictions; user splits (or stale rows); tasks |
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb

from gensynth.manifolds.embed import EmbedConfig, embed_warehouse
from gensynth.progress import Stages
from gensynth.results.ingest import carry_over
from gensynth.synthesis.tasks import make_beyond_tasks
from gensynth.universe import functions as evaluate_stage
from gensynth.universe import programs as enumerate_stage
from gensynth.universe.grammar import Grammar
from gensynth.version import code_version, data_version
from gensynth.warehouse import SCHEMA_VERSION, building, read_meta, run_sql, write_meta

BEYOND_TASKS = 200  # tasks one operator larger than the universe (gensynth.synthesis.tasks)


@dataclass
class BuildSummary:
    """What a build produced, for the closing table and for tests."""

    programs: int = 0
    functions: int = 0
    nonfinite_functions: int = 0
    distinct_evaluations: int = 0
    carried_runs: int = 0
    splits_carried: int = 0  # user splits found in the warehouse this build replaced
    splits_registered: list[str] = field(default_factory=list)  # of those, re-validated and registered
    splits_stale: dict[str, str] = field(default_factory=dict)  # of those, kept as stale: name -> why
    splits_empty_tests: dict[str, list[str]] = field(default_factory=dict)  # re-registered, but these test roles are empty now
    tasks_carried: int = 0  # rows of `tasks` (user targets) kept from the warehouse this build replaced
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Build:
    """What the stages of one build share."""

    grammar: Grammar
    max_ops: int
    path: Path  # the warehouse being replaced (read by the carry-over stages)
    embed: EmbedConfig | None  # None: stop after the universe (--skip-embed)
    con: duckdb.DuckDBPyConnection  # the new warehouse, swapped in when every stage is done
    stages: Stages
    summary: BuildSummary


def build_warehouse(grammar: Grammar, max_ops: int, path: Path, quiet: bool = False,
                    embed: "EmbedConfig | None" = None, force: bool = False) -> BuildSummary:
    """Build a complete warehouse for ``grammar`` up to ``max_ops`` operators at ``path``.

    Runs ``BUILD_STAGES`` in order on a new file, swapped in atomically at the end. Without
    ``embed`` only the universe is built (no manifolds, splits, tasks or views). ``force``
    replaces a DuckDB file that is not a gensynth warehouse.
    """
    enumerate_stage.check_size(grammar, max_ops)
    if embed is not None:
        embed.validate()
    with building(path, force=force) as con, Stages(quiet=quiet) as stages:
        build = Build(grammar, max_ops, Path(path), embed, con, stages, BuildSummary())
        for stage in BUILD_STAGES:
            stage(build)
        build.summary.timings = dict(stages.timings)
        write_meta(con, {f"timing.{k.replace(' ', '_')}_s": f"{v:.3f}" for k, v in stages.timings.items()})
    return build.summary


def universe_stage(b: Build) -> None:
    """Enumerate every program, evaluate each exactly on the grid, store programs and functions."""
    con, stages, grammar, max_ops = b.con, b.stages, b.grammar, b.max_ops
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
    b.summary.programs = int(len(evaluation.function_id))
    b.summary.functions = len(functions)
    b.summary.nonfinite_functions = int((~functions.finite).sum())
    b.summary.distinct_evaluations = evaluation.distinct_evaluations
    write_meta(con, {
        "schema_version": str(SCHEMA_VERSION),
        "grammar_name": grammar.name,
        "grammar": grammar.to_json(),
        "grammar_hash": grammar.hash,
        "grammar_source": grammar.source_text,
        "grid": grammar.grid_json(),
        "variables": list(grammar.variables),
        "max_ops": str(max_ops),
        "n_programs": str(b.summary.programs),
        "n_functions": str(b.summary.functions),
        "overflow_cells": str(evaluation.overflow_cells),
        "code_version": code_version(),
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "data_version": data_version(SCHEMA_VERSION, grammar.hash, max_ops),
    })


def manifold_stage(b: Build) -> None:
    """Both manifolds (pq-grams, syntactic SVD, semantic PCA) and the ``manifold`` view."""
    if b.embed is not None:
        run_manifold_stages(b.con, b.grammar, b.embed, b.stages)


def split_stage(b: Build) -> None:
    """The sampling frame, the sampling macros and the built-in splits."""
    if b.embed is not None:
        run_split_stage(b.con, b.stages)


def tasks_stage(b: Build) -> None:
    """``tasks_beyond``: tasks one operator larger than the universe."""
    if b.embed is not None:
        with b.stages.stage("tasks beyond"):
            n_beyond = make_beyond_tasks(b.con, b.grammar, BEYOND_TASKS, seed=b.embed.seed)
        if n_beyond == 0 and not b.stages.quiet:
            from gensynth.progress import console

            console.print(f"[yellow]Notice:[/] no program with {b.max_ops + 1} operators computes a finite function outside "
                          f"this universe, so `tasks_beyond` is empty (nothing for `gensynth solve --view tasks_beyond`).")


def views_stage(b: Build) -> None:
    """The analysis views (sql/analysis/)."""
    if b.embed is not None:
        from gensynth.analysis.views import install_analysis_views

        with b.stages.stage("analysis views"):
            install_analysis_views(b.con)


def carry_over_results_stage(b: Build) -> None:
    """Results are irreplaceable: a rebuild keeps every run of the old warehouse."""
    with b.stages.stage("carry over results"):
        # Runs whose data_version differs from the new one are kept but refer to the old ids.
        carried = carry_over(b.path, b.con)
        write_meta(b.con, {"results_carried_runs": str(carried)})
    b.summary.carried_runs = int(carried)


def carry_over_splits_stage(b: Build) -> None:
    """User splits are irreplaceable: re-validated on the new universe, registered, or kept stale."""
    from gensynth.splits import carry_over_splits

    with b.stages.stage("carry over splits"):
        report = carry_over_splits(b.path, b.con)
    b.summary.splits_carried = report.carried
    b.summary.splits_registered = report.registered
    b.summary.splits_stale = report.stale
    b.summary.splits_empty_tests = report.empty_tests
    write_meta(b.con, {"splits_carried": str(report.carried), "splits_reregistered": str(len(report.registered)),
                       "splits_stale": str(len(report.stale))})


def carry_over_tasks_stage(b: Build) -> None:
    """Tasks users brought (``gensynth solve --tasks FILE``) are irreplaceable: kept with their data version."""
    from gensynth.synthesis.task_files import carry_over_tasks

    with b.stages.stage("carry over tasks"):
        b.summary.tasks_carried = int(carry_over_tasks(b.path, b.con))
    write_meta(b.con, {"tasks_carried": str(b.summary.tasks_carried)})


BuildStage = Callable[[Build], None]
BUILD_STAGES: tuple[BuildStage, ...] = (universe_stage, manifold_stage, split_stage, tasks_stage, views_stage,
                                        carry_over_results_stage, carry_over_splits_stage, carry_over_tasks_stage)


def run_manifold_stages(con, grammar: Grammar, config: EmbedConfig, stages) -> None:
    """Embed (pq-grams, both manifolds) and record the new data version in meta."""
    embed_warehouse(con, grammar, config, stages)
    meta = read_meta(con)
    write_meta(con, {"data_version": data_version(SCHEMA_VERSION, grammar.hash, meta["max_ops"], config)})


def reembed(con, grammar: Grammar, config: EmbedConfig, stages):
    """``gensynth embed``: new manifolds (one transaction; a new data version), the built-in
    splits registered on them, and the user splits re-validated as a rebuild does
    (re-registered, or kept stale with the reason). Returns the ``CarryReport`` of the user splits."""
    from gensynth.splits import revalidate_user_splits, sandbox

    con.execute("BEGIN TRANSACTION")
    try:
        run_manifold_stages(con, grammar, config, stages)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    run_split_stage(con, stages)  # split views are SQL over `manifold`: re-registering refreshes their records
    sandbox(con)  # user SQL runs next: no file or network access for the rest of this connection
    with stages.stage("re-validate user splits"):
        report = revalidate_user_splits(con)
    write_meta(con, {"splits_revalidated": str(report.carried), "splits_reregistered": str(len(report.registered)),
                     "splits_stale": str(len(report.stale))})
    return report


def run_split_stage(con, stages) -> None:
    """Register the built-in splits (gensynth.splits.registry manages its own transaction)."""
    from gensynth.splits import register_builtin_splits

    register_builtin_splits(con, stages=stages)  # one stage per split in the summary
