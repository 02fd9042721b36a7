"""Benchmark: nearest training program for 10k test programs among 1M training programs
(``python -m benchmarks.proximity``), on both manifolds, with the exact k-d tree
search that `gensynth proximity` uses. Requirement: <= 60 s for both manifolds.

Points come from a real warehouse: ``--warehouse PATH`` (a max-ops-4 universe has
11.4M programs: test and train are disjoint random samples of it), or by default a
temporary max-ops-3 warehouse of the default grammar (204,105 programs; built first, not
timed). When the universe holds fewer than test + train programs, the training set is
filled up to its size with copies of real programs' coordinates moved by a small
Gaussian jitter (1% of the coordinates' spread), so the tree holds 1M distinct points
shaped like the manifold; the output says so.

The semantic search is timed twice: as the stage runs it (the training set deduplicated
by function, since programs of one function share coordinates) and on all 1M training
points without deduplication (the worst case). ``--check`` compares 500 queries against
exhaustive search; ``--worst-case`` also times iid Gaussian points with no structure
(where a k-d tree in 16 dimensions degrades towards exhaustive search); ``--pqgram N``
times the exact pq-gram search of N test programs against the real training programs.

Numbers are printed, never asserted (they depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _coords(con, col: str, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    k = con.execute(f"SELECT len({col}) FROM manifold WHERE {col} IS NOT NULL LIMIT 1").fetchone()[0]
    got = con.execute(f"SELECT program_id, function_id, {', '.join(f'{col}[{i + 1}] AS c{i}' for i in range(k))} "
                      f"FROM manifold WHERE {col} IS NOT NULL {where} ORDER BY program_id").fetchnumpy()
    ids = np.stack([got.pop("program_id"), got.pop("function_id")], 1).astype(np.int64)
    return ids, np.stack([got[c] for c in got], 1).astype(np.float64)


def _build_default(path: Path) -> None:
    from gensynth.pipeline import build_warehouse, run_manifold_stages
    from gensynth.manifolds.embed import EmbedConfig
    from gensynth.universe.grammar import load_grammar
    from gensynth.progress import Stages
    from gensynth.warehouse import connect

    g = load_grammar()
    build_warehouse(g, 3, path, quiet=True)
    con = connect(path)
    try:
        with Stages(quiet=True) as stages:
            run_manifold_stages(con, g, EmbedConfig(), stages)
    finally:
        con.close()


def _fill(points: np.ndarray, n: int, rng) -> tuple[np.ndarray, int]:
    """``n`` rows: the real points (shuffled), then jittered copies of random real points."""
    points = points[rng.permutation(len(points))]
    if len(points) >= n:
        return points[:n], 0
    extra = n - len(points)
    scale = 0.01 * points.std(0, keepdims=True)
    copies = points[rng.integers(0, len(points), extra)] + rng.normal(size=(extra, points.shape[1])) * scale
    return np.concatenate([points, copies]), extra


def _time(label: str, train: np.ndarray, queries: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    from gensynth.analysis.proximity import nearest_kdtree

    t = time.perf_counter()
    d, i = nearest_kdtree(train, queries)
    s = time.perf_counter() - t
    print(f"  {label:<50} train {len(train):>9,} x {train.shape[1]:>2} dims, queries {len(queries):>6,}: {s:7.2f} s"
          f"   (median NN distance {np.median(d):.3g})", flush=True)
    return s, d, i


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, default=None, help="warehouse with manifolds (default: build max-ops 3)")
    parser.add_argument("--train", type=int, default=1_000_000)
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="check 500 queries against exhaustive search")
    parser.add_argument("--worst-case", action="store_true", help="also time iid Gaussian points (no structure)")
    parser.add_argument("--pqgram", type=int, default=0, help="also time exact pq-gram search for this many test programs")
    args = parser.parse_args(argv)

    import duckdb

    rng = np.random.default_rng(args.seed)
    wh = args.warehouse
    work = None
    if wh is None:
        work = Path(tempfile.mkdtemp(prefix="gensynth-bench-prox-"))
        wh = work / "bench.duckdb"
        t = time.perf_counter()
        _build_default(wh)
        print(f"built a max-ops-3 warehouse of the default grammar in {time.perf_counter() - t:.0f} s (not timed below)")
    con = duckdb.connect(str(wh), read_only=True)
    n_programs = con.execute("SELECT count(*) FROM manifold").fetchone()[0]
    print(f"machine: {os.cpu_count()} cores; warehouse {wh}: {n_programs:,} programs")

    ids, syn = _coords(con, "syn")
    perm = rng.permutation(len(ids))
    test_rows, train_rows = perm[:args.test], perm[args.test:]
    train_syn, filled = _fill(syn[train_rows], args.train, rng)
    if filled:
        print(f"note: the universe has {len(train_rows):,} programs besides the test ones; {filled:,} training points "
              f"are jittered copies (1% of the spread) to reach {args.train:,}")
    total = 0.0
    print("syntactic manifold (every program has coordinates):")
    s, d_syn, _ = _time("exact k-d tree, random test programs", train_syn, syn[test_rows])
    total += s
    # Out-of-distribution queries (as in support_syntactic's test_ood): the test programs
    # farthest from the centre, the training set from the rest. Queries far from every
    # training point make a k-d tree visit more cells: the harder case.
    radius = np.linalg.norm(syn - syn.mean(0), axis=1)
    by_radius = np.argsort(-radius, kind="stable")
    ood_train, _ = _fill(syn[by_radius[args.test:]], args.train, rng)
    s_ood, _, _ = _time("exact k-d tree, outer-shell (OOD) test programs", ood_train, syn[by_radius[:args.test]])

    sem_ids, sem = _coords(con, "sem")
    pos = {pid: r for r, pid in enumerate(sem_ids[:, 0].tolist())}
    test_sem = np.array([pos[p] for p in ids[test_rows, 0].tolist() if p in pos], dtype=np.int64)
    train_sem_rows = np.array([pos[p] for p in ids[train_rows, 0].tolist() if p in pos], dtype=np.int64)
    print(f"semantic manifold ({len(sem_ids):,} programs with finite functions, "
          f"{len(np.unique(sem_ids[:, 1])):,} distinct functions):")
    # As the stage runs: one point per training function.
    _, first = np.unique(sem_ids[train_sem_rows, 1], return_index=True)
    s, _, _ = _time("exact k-d tree, train deduplicated by function", sem[train_sem_rows[first]], sem[test_sem])
    total += s
    train_sem, filled = _fill(sem[train_sem_rows], args.train, rng)
    s_worst, _, _ = _time(f"exact k-d tree, all {args.train:,} train points (worst)", train_sem, sem[test_sem])
    worst = max(total - s, s_ood) + s_worst
    print(f"total, both manifolds as `gensynth proximity` runs them: {total:.1f} s; slowest syntactic case plus the "
          f"semantic worst case: {worst:.1f} s (requirement: <= 60 s) -> {'OK' if worst <= 60 else 'TOO SLOW'}")

    if args.check:
        from gensynth.analysis.proximity import nearest_brute

        q = syn[test_rows[:500]]
        t = time.perf_counter()
        d_ref, _ = nearest_brute(train_syn, q, block=16)
        print(f"check: 500 syntactic queries by exhaustive search ({time.perf_counter() - t:.1f} s): "
              f"max |difference| {np.abs(d_ref - d_syn[:500]).max():.2e}")

    if args.worst_case:
        print("iid standard Gaussian points, 16 dims (no manifold structure):")
        _time("exact k-d tree", rng.normal(size=(args.train, 16)), rng.normal(size=(args.test, 16)))

    if args.pqgram:
        from gensynth.analysis.proximity import pqgram_nearest

        train_ids = np.sort(ids[train_rows, 0])
        test_ids = np.sort(ids[test_rows[:args.pqgram], 0])
        rows = con.execute("SELECT count(*) FROM pqgrams").fetchone()[0] * len(train_ids) / n_programs
        t = time.perf_counter()
        pqgram_nearest(None, train_ids, test_ids, con=con)
        s = time.perf_counter() - t
        print(f"pq-gram: exact search, {len(test_ids):,} test programs x {len(train_ids):,} real train programs "
              f"(~{rows * len(test_ids):.2e} multiply-adds): {s:.1f} s")
    con.close()
    if work is not None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
