"""Benchmarks of the embed stage: ``python -m benchmarks.embed <command>``.

``weighting``: which row weighting of the pq-gram count matrix keeps Euclidean distances
on the syntactic manifold closest to the pq-gram distance (TODS form): Spearman and
Pearson correlation over random program pairs, per weighting.

``ksyn``: the default ``k_syn``: for each k, the centred map (what gensynth fits) and the
uncentred one (what it fitted before) side by side on the same pairs and fitting sample:
Spearman correlation with the TODS distance, distinct positions over all programs (and
how many programs share one), the variance share explained, and storage.

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


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation, ties given their average rank (TODS distances tie often)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _uncentred_map(x, k: int, seed: int, fit_rows: int):
    """The syntactic map gensynth fitted before centring (top eigenvectors of the raw SᵀS), for comparison.

    The gram matrix is accumulated in float64 (gensynth used float32): float32 rounding
    breaks the grammar's label symmetries at ~1e-7, which makes positions that are equal
    in exact arithmetic differ by ~1e-7 and would be counted as distinct positions.
    """
    import scipy.linalg

    from gensynth.manifolds.embed import SyntacticMap

    n, v = x.shape
    rows = np.sort(np.random.default_rng(seed).choice(n, size=fit_rows, replace=False)) if n > fit_rows else slice(None)
    sample = x[rows].astype(np.float64)
    gram = (sample.T @ sample).toarray()
    values, vectors = scipy.linalg.eigh(gram, subset_by_index=[v - k, v - 1])
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    vectors *= np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(k)])
    return SyntacticMap(vectors, np.zeros(v), values / np.trace(gram))


def _universe(max_ops: int, pairs: int, seed: int):
    """Profiles of the default universe, random pairs and their TODS / VLDB pq-gram distances."""
    from gensynth.manifolds.pqgrams import compute_profiles, pair_distances
    from gensynth.universe.grammar import load_grammar
    from gensynth.universe.programs import enumerate_programs

    grammar = load_grammar()
    dag = enumerate_programs(grammar, max_ops)
    n = len(dag)
    profiles = compute_profiles(grammar, dag)
    del dag
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n, pairs), rng.integers(0, n, pairs)
    tods, _ = pair_distances(profiles, a, b)
    return profiles, n, a, b, tods


@app.command()
def weighting(max_ops: int = 3, pairs: int = 5000, seed: int = 0, k: int = 16) -> None:
    """Correlation of syn-space Euclidean distance with the pq-gram distance, per weighting."""
    from gensynth.manifolds.embed import WEIGHTINGS, fit_syntactic, weighted_matrix

    _print_machine()
    profiles, n, a, b, tods = _universe(max_ops, pairs, seed)
    print(f"\nmax-ops {max_ops}: {n:,} programs, {pairs:,} random pairs, k_syn={k} (centred PCA)")
    print(f"{'weighting':>10} {'spearman':>9} {'pearson':>8}")
    for w in WEIGHTINGS:
        x = weighted_matrix(profiles, n, w)
        syn_map = fit_syntactic(x, k, seed)
        dist = np.linalg.norm(syn_map.project(x[a]) - syn_map.project(x[b]), axis=1)
        print(f"{w:>10} {_spearman(dist, tods):>9.3f} {np.corrcoef(dist, tods)[0, 1]:>8.3f}")


def _row_keys(cells: np.ndarray, salt: np.ndarray) -> np.ndarray:
    """A 64-bit key per row of int64 cells: equal rows get equal keys (collisions ~ N²/2⁶⁴)."""
    with np.errstate(over="ignore"):
        bits = np.ascontiguousarray(cells, dtype=np.int64).view(np.uint64)
        h = (bits + np.uint64(0x9E3779B97F4A7C15)) * salt[: cells.shape[1]]
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        return h.sum(axis=1, dtype=np.uint64) ^ (h[:, 0] >> np.uint64(7))


def _profile_keys(x, chunk: int = 500_000) -> np.ndarray:
    """A 64-bit key per sparse row (its bag of (gram, weight) entries): rows with equal bags get equal keys."""
    keys = np.empty(x.shape[0], np.uint64)
    with np.errstate(over="ignore"):
        for lo in range(0, x.shape[0], chunk):
            part = x[lo : lo + chunk]
            cell = part.indices.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + part.data.view(np.uint32).astype(np.uint64)
            cell ^= cell >> np.uint64(31)
            cell *= np.uint64(0xD6E8FEB86659FD93)
            cell ^= cell >> np.uint64(29)
            keys[lo : lo + part.shape[0]] = np.add.reduceat(cell, part.indptr[:-1].astype(np.int64))
    return keys


POSITION_TOLERANCE = 1e-9  # float64 projections closer than this on every axis are one position
RESOLUTION = 1e-3  # cells of this side, relative to the manifold's RMS radius, for "near-identical" positions


def _positions(syn_map, x, ks: list[int], scale: dict[int, float], chunk: int = 500_000) -> dict[int, tuple[int, int, int]]:
    """Per k: (distinct positions over all programs, programs sharing their position with another,
    occupied cells of side RESOLUTION × ``scale[k]``, the RMS radius of the k-dimensional manifold).

    Projected in float64 with the float64 eigenvectors and compared at POSITION_TOLERANCE:
    profiles whose projections are equal in exact arithmetic then agree to ~1e-15, while
    distinct positions are far apart (max-ops 3, k=16: none closer than 1e-3). With the
    basis rounded to float32 (as stored), equal positions differ by ~1e-7 and counting
    distinct rows would report that rounding noise as positions (max-ops 3, uncentred,
    k=16: 199,299 "distinct" float32 rows, 33,461 positions at any tolerance in 1e-6..1e-5,
    by single-linkage clustering).
    """
    salt = (np.random.default_rng(1).integers(1, 2**63, max(ks), dtype=np.int64).astype(np.uint64) << np.uint64(1)) | np.uint64(1)
    basis = syn_map.basis
    offset = syn_map.centre @ basis
    keys = {k: np.empty(x.shape[0], np.uint64) for k in ks}
    cells = {k: np.empty(x.shape[0], np.uint64) for k in ks}
    for lo in range(0, x.shape[0], chunk):
        y = np.asarray(x[lo : lo + chunk].astype(np.float64) @ basis) - offset
        q = np.round(y / POSITION_TOLERANCE).astype(np.int64)
        for k in ks:
            keys[k][lo : lo + len(y)] = _row_keys(q[:, :k], salt)
            cells[k][lo : lo + len(y)] = _row_keys(np.floor(y[:, :k] / (RESOLUTION * scale[k])).astype(np.int64), salt)
    out = {}
    for k in ks:
        _, counts = np.unique(keys[k], return_counts=True)
        out[k] = (len(counts), int(counts[counts > 1].sum()), len(np.unique(cells[k])))
    return out


@app.command()
def ksyn(max_ops: int = 3, pairs: int = 5000, seed: int = 0, ks: str = "8,16,32,64") -> None:
    """Choose k_syn: per k, centred vs uncentred map, rank correlation with the TODS distance,
    distinct positions, variance explained and storage; one run, same pairs and sample."""
    from gensynth.manifolds.embed import SVD_FIT_ROWS, SyntacticMap, eigen_groups, fit_syntactic, weighted_matrix

    _print_machine()
    k_list = sorted(int(k) for k in ks.split(","))
    t0 = time.perf_counter()
    profiles, n, a, b, tods = _universe(max_ops, pairs, seed)
    x = weighted_matrix(profiles, n, "l2")
    distinct_profiles = len(np.unique(_profile_keys(x)))
    grams = len(profiles.vocab_codes)
    del profiles
    print(f"\nmax-ops {max_ops}: {n:,} programs, {grams:,} grams, {distinct_profiles:,} distinct pq-gram profiles, "
          f"{pairs:,} random pairs (Spearman with ties averaged), weighting l2, fit sample {min(n, SVD_FIT_ROWS):,}")
    probe = fit_syntactic(x, min(max(k_list) + 48, min(x.shape)), seed)  # eigenvalue groups past the largest k
    groups = eigen_groups(probe.explained)
    print("groups of equal eigenvalues (1-based syn indices, size; rtol 1e-7): "
          + (", ".join(f"{a + 1}-{b} ({b - a})" for a, b in groups if b < len(probe.explained) and b - a > 1) or "none"))
    ends = {b for _, b in groups}
    k_list = sorted(set(k_list) | {next(b for _, b in groups if b >= k) for k in k_list if k not in ends})
    print(f"k values that cut a group are shown with the group's end as well: {k_list}")
    kmax = max(k_list)
    centred = SyntacticMap(probe.basis[:, :kmax], probe.centre, probe.explained[:kmax])  # the top kmax of the same fit
    maps = {"centred": centred, "uncentred": _uncentred_map(x, kmax, seed, SVD_FIT_ROWS)}
    cos = abs(float(maps["centred"].centre @ maps["uncentred"].basis[:, 0]) / np.linalg.norm(maps["centred"].centre))
    print(f"|cos| of the uncentred top vector with the mean row: {cos:.3f}; "
          f"with centring: {abs(float(maps['centred'].centre @ maps['centred'].basis[:, 0])) / np.linalg.norm(maps['centred'].centre):.3f}")
    print(f"\n{'map':>9} {'k':>3} {'whole groups':>12} {'spearman':>9} {'pearson':>8} {'distinct positions':>19} "
          f"{'programs sharing':>17} {'cells 1e-3 RMS':>15} {'explained':>10} {'var syn[1]/syn[2]':>18} {'syn_coords MB':>14}")
    for name, syn_map in maps.items():
        ya, yb = syn_map.project(x[a]), syn_map.project(x[b])
        spread = syn_map.project(x[np.random.default_rng(seed + 1).integers(0, n, 200_000)]).var(axis=0)
        positions = _positions(syn_map, x, k_list, {k: float(np.sqrt(spread[:k].sum())) for k in k_list})
        for k in k_list:
            dist = np.linalg.norm(ya[:, :k] - yb[:, :k], axis=1)
            mb = n * (4 * k + 4 + 8) / 1e6  # FLOAT[k] + program_id + radius, uncompressed
            print(f"{name:>9} {k:>3} {('yes' if k in ends else 'no'):>12} {_spearman(dist, tods):>9.3f} {np.corrcoef(dist, tods)[0, 1]:>8.3f} "
                  f"{positions[k][0]:>19,} {positions[k][1]:>17,} {positions[k][2]:>15,} {syn_map.explained[:k].sum():>10.3f} "
                  f"{spread[0] / spread[1]:>18.3f} {mb:>14,.0f}")
    print(f"\n{time.perf_counter() - t0:.0f} s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


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
