"""Benchmarks of the embed stage: ``python -m benchmarks.embed <command>``.

``weighting``: which row weighting of the pq-gram count matrix keeps Euclidean distances
on the syntactic manifold closest to the pq-gram distance (TODS form): Spearman and
Pearson correlation over random program pairs, per weighting.

``full``: pq-grams, syntactic SVD and semantic PCA on the full default universe
(max-ops 4), tables stored, with wall time per stage and peak RSS; plus the speed of the
vectorised pq-gram extraction against a straightforward per-tree recursive profiler
(parse the stored prefix text, recurse, map grams to ids) on a random sample.
Numbers are printed, never asserted.
"""

from __future__ import annotations

import random
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import typer

from benchmarks.build import machine

app = typer.Typer(help="Benchmarks of the embed stage.", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

PQGRAM_SPEEDUP_FLOOR = 30.0
EMBED_WALL_FLOOR_S = 90.0
EMBED_RSS_FLOOR_GB = 8.0


def _print_machine() -> None:
    for key, value in machine():
        print(f"{key:>14}: {value}")


def _rank(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return ranks


@app.command()
def weighting(max_ops: int = 3, pairs: int = 5000, seed: int = 0, k: int = 16) -> None:
    """Correlation of syn-space Euclidean distance with the pq-gram distance, per weighting."""
    from gensynth.manifolds.embed import WEIGHTINGS, fit_syntactic, weighted_matrix
    from gensynth.universe.programs import enumerate_programs
    from gensynth.universe.grammar import load_grammar
    from gensynth.manifolds.pqgrams import compute_profiles

    _print_machine()
    grammar = load_grammar()
    dag = enumerate_programs(grammar, max_ops)
    profiles = compute_profiles(grammar, dag)
    counts = weighted_matrix(profiles, len(dag), "counts")
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(dag), pairs), rng.integers(0, len(dag), pairs)
    ra, rb = counts[a].toarray(), counts[b].toarray()
    inter = np.minimum(ra, rb).sum(axis=1)
    union = ra.sum(axis=1) + rb.sum(axis=1)
    tods = (union - 2 * inter) / (union - inter)
    print(f"\nmax-ops {max_ops}: {len(dag):,} programs, {pairs:,} random pairs, k_syn={k}")
    print(f"{'weighting':>10} {'spearman':>9} {'pearson':>8}")
    for w in WEIGHTINGS:
        x = weighted_matrix(profiles, len(dag), w)
        basis, _ = fit_syntactic(x, k, seed)
        ya, yb = np.asarray(x[a] @ basis), np.asarray(x[b] @ basis)
        dist = np.linalg.norm(ya - yb, axis=1)
        spearman = np.corrcoef(_rank(dist), _rank(tods))[0, 1]
        pearson = np.corrcoef(dist, tods)[0, 1]
        print(f"{w:>10} {spearman:>9.3f} {pearson:>8.3f}")


@app.command()
def full(max_ops: int = 4, sample: int = 100_000, seed: int = 0) -> None:
    """Full-universe embed: wall time per stage, peak RSS, and the pq-gram speed ratio."""
    import duckdb

    from gensynth.pipeline import build_warehouse
    from gensynth.manifolds.embed import EmbedConfig, embed_warehouse, read_dag
    from gensynth.universe.grammar import load_grammar
    from gensynth.manifolds.pqgrams import compute_profiles, profile_tree
    from gensynth.progress import Stages
    from gensynth.universe.syntax import parse_prefix

    _print_machine()
    grammar = load_grammar()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        build_warehouse(grammar, max_ops, path, quiet=True, embed=None)
        print(f"\nbuild without embed (max-ops {max_ops}): {time.perf_counter() - t0:.1f} s")
        con = duckdb.connect(str(path))
        con.execute("SET enable_progress_bar = false")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        start = time.perf_counter()
        with Stages(quiet=True) as stages:
            embed_warehouse(con, grammar, EmbedConfig(), stages)
            con.execute("CHECKPOINT")
        wall = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        n_programs = con.execute("SELECT count(*) FROM programs").fetchone()[0]
        print(f"\nembed on {n_programs:,} programs (tables stored):")
        for name, seconds in stages.timings.items():
            print(f"  {name:<18} {seconds:7.2f} s")
        print(f"  {'total':<18} {wall:7.2f} s   (floor <= {EMBED_WALL_FLOOR_S:.0f} s)")
        print(f"  peak RSS of this process {peak:.2f} GB (the build before it peaked at {rss_before:.2f} GB; floor <= {EMBED_RSS_FLOOR_GB:.0f} GB)")

        # Vectorised extraction alone, timed again for a clean programs/s figure.
        dag = read_dag(con)
        t = time.perf_counter()
        profiles = compute_profiles(grammar, dag)
        vec_s = time.perf_counter() - t
        vocab = {code: i for i, code in enumerate(profiles.vocab_codes.tolist())}
        ids = sorted(random.Random(seed).sample(range(n_programs), min(sample, n_programs)))
        texts = [r[0] for r in con.execute("SELECT prefix FROM programs WHERE program_id IN (SELECT unnest($ids))", {"ids": ids}).fetchall()]
        con.close()
    names = {tok: i for i, tok in enumerate(grammar.symbols)}
    names[None] = len(grammar.symbols)
    base = len(grammar.symbols) + 1
    t = time.perf_counter()
    for text in texts:  # the straightforward profiler: parse, recurse, map each gram to its id
        bag = profile_tree(parse_prefix(text, grammar), grammar)
        for (stem, window), n in bag.items():
            vocab[sum(names[label] * base**i for i, label in enumerate(stem + window))]
    naive_s = time.perf_counter() - t
    vec_rate, naive_rate = n_programs / vec_s, len(texts) / naive_s
    print(f"\npq-gram extraction: vectorised {vec_rate:,.0f} programs/s ({vec_s:.1f} s for {n_programs:,});")
    print(f"  per-tree recursive profiler {naive_rate:,.0f} programs/s on a {len(texts):,}-program sample;")
    print(f"  ratio {vec_rate / naive_rate:.1f}x (floor >= {PQGRAM_SPEEDUP_FLOOR:.0f}x)")


if __name__ == "__main__":
    app()
