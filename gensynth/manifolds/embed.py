"""Stage 3: the two manifolds (`gensynth embed`).

Reads ``programs`` and ``functions``; writes ``pqgram_vocab``, ``pqgrams`` (through
``gensynth.manifolds.pqgrams``), ``syn_coords``, ``syn_basis``, ``sem_coords``, the ``manifold`` view, the
pq-gram distance macros, and ``meta`` keys ``embed.*`` / ``pqgram.*``.

Syntactic manifold: the program × pq-gram count matrix X, rows weighted (default
``l2``: each row divided by its Euclidean norm, which measured closest to the pq-gram
distance, see README), centred and projected on its top ``k_syn`` principal directions
(PCA). The directions are the top eigenvectors of the small centred gram matrix
SᵀS − n·μμᵀ (grams × grams) of a seeded uniform sample S of at most ``SVD_FIT_ROWS``
programs (all of them for universes up to that size), μ its mean row; X is never
densified. The grammar's symmetries make eigenvalues exactly multiple (at max-ops 3,
syn[1..3] are one eigenvalue), and inside such a group LAPACK's eigenvectors are an
arbitrary basis of the eigenspace, which would make the cells (``syn[1..3]``) and any
cut through a group a rounding accident. So the basis is canonical (``canonical_basis``):
within every group of eigenvalues equal to ``DEGENERATE_RTOL``, the pivoted QR of the
group's projector V Vᵀ (basis-invariant) picks the directions, largest gram component
first, ties to the lowest gram id, each signed so that its pivot gram's entry is
positive; for a single eigenvalue, that is "the largest |entry| is positive". The
basis then depends only on the eigenspaces. Every program is then projected,
(x − μ)·basis. The centre, the basis and the column weights are stored in
``syn_basis``, so ``project_programs`` places programs outside the universe by the same
map. ``embed.syn_explained`` holds shares of variance.

Semantic manifold: per finite function, outputs → sign·log1p|v| (tames values from 1e-3
to 1e6) → z-score per grid point → PCA to ``k_sem`` components. Functions that are
undefined or infinite at some grid point are excluded (no coordinates; counted in meta).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from gensynth.manifolds import pqgrams as pqgram_stage
from gensynth.universe.programs import ProgramDag
from gensynth.errors import GensynthError
from gensynth.universe import budget
from gensynth.universe.budget import check_memory
from gensynth.universe.grammar import Grammar
from gensynth.warehouse import run_sql, write_meta

SVD_FIT_ROWS = 1_000_000
PROJECT_ROWS = 1_000_000  # rows projected at a time (bounds the temporaries)
# Dimensions of each manifold unless --k-syn / --k-sem say otherwise; clipped (with a
# notice) when a tiny universe or grid has lower rank. Explicit values are never clipped.
# k_syn was chosen by measurement (`python -m benchmarks.embed ksyn`, README).
DEFAULT_K_SYN = 32
DEFAULT_K_SEM = 16
# Eigenvalues equal to this relative tolerance are one degenerate group (float64 gram: ~1e-13 noise).
DEGENERATE_RTOL = 1e-7
GROUP_PROBE = 32  # extra directions computed to find where the last group ends
# Pivot norms equal to this relative tolerance are ties, broken by the lowest gram id
# (symmetric grams tie exactly; rounding moves a norm by ~1e-13).
PIVOT_RTOL = 1e-6
WEIGHTINGS = ("counts", "l2", "tfidf")


@dataclass(frozen=True)
class EmbedConfig:
    """Parameters of the embed stage (recorded in meta)."""

    p: int = 2  # pq-gram stem length (anchor + p-1 ancestors)
    q: int = 3  # pq-gram base length (consecutive children)
    k_syn: int | None = None  # syntactic dimensions; None: DEFAULT_K_SYN grown to the end of its eigenvalue group, clipped to the rank
    k_sem: int | None = None  # semantic dimensions; None: DEFAULT_K_SEM, clipped to the rank available
    seed: int = 0  # seeds the SVD fitting sample
    weighting: str = "l2"  # row weighting of the pq-gram count matrix: counts, l2 or tfidf

    def validate(self) -> None:
        """Raise GensynthError naming every bad flag."""
        problems = []
        if self.p < 1:
            problems.append(f"--p must be >= 1 (got {self.p})")
        if self.q < 1:
            problems.append(f"--q must be >= 1 (got {self.q})")
        if self.k_syn is not None and self.k_syn < 1:
            problems.append(f"--k-syn must be >= 1 (got {self.k_syn})")
        if self.k_sem is not None and self.k_sem < 1:
            problems.append(f"--k-sem must be >= 1 (got {self.k_sem})")
        if self.weighting not in WEIGHTINGS:
            problems.append(f"--weighting must be one of {', '.join(WEIGHTINGS)} (got {self.weighting!r})")
        if problems:
            raise GensynthError("Invalid embed parameters: " + "; ".join(problems) + ".")


@dataclass
class EmbedSummary:
    """What the embed stage produced."""

    grams: int
    pqgram_rows: int
    syn_explained: list[float]
    sem_explained: list[float]
    sem_excluded: int
    timings: dict[str, float] = field(default_factory=dict)


def read_dag(con) -> ProgramDag:
    """Rebuild the program DAG from ``programs`` (root_symbol, left_id, right_id, n_ops, depth)."""
    cols = con.execute(
        "SELECT root_symbol, coalesce(left_id, -1) AS l, coalesce(right_id, -1) AS r, n_ops, depth "
        "FROM programs ORDER BY program_id"
    ).fetchnumpy()
    n_ops = np.asarray(cols["n_ops"], np.int8)
    if len(n_ops) == 0:
        raise GensynthError("The warehouse has no programs to embed. Rebuild it with `gensynth build`.")
    counts = np.bincount(n_ops)
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return ProgramDag(
        symbol=np.asarray(cols["root_symbol"], np.int16),
        left=np.asarray(cols["l"], np.int32),
        right=np.asarray(cols["r"], np.int32),
        n_ops=n_ops,
        depth=np.asarray(cols["depth"], np.int8),
        level_start=start,
    )


def gram_weights(gram_id: np.ndarray, n_programs: int, n_grams: int, weighting: str) -> np.ndarray:
    """Per-gram column weight (V,) float64: sklearn's smooth idf for tfidf, else 1.

    idf = log((1 + N) / (1 + df)) + 1; a gram no program of the universe has (df = 0)
    gets log(1 + N) + 1, which is what ``project_programs`` gives unseen grams.
    """
    if weighting != "tfidf":
        return np.ones(n_grams)
    df = np.bincount(gram_id, minlength=n_grams)
    return np.log((1 + n_programs) / (1 + df)) + 1


def weighted_matrix(profiles: pqgram_stage.Profiles, n_programs: int, weighting: str):
    """The program × gram matrix (scipy CSR, float32) with the chosen row weighting."""
    import scipy.sparse as sp

    counts = np.bincount(profiles.program_id, minlength=n_programs)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    data = profiles.n.astype(np.float32)
    n_grams = len(profiles.vocab_codes)
    if weighting == "tfidf":
        data *= gram_weights(profiles.gram_id, n_programs, n_grams, weighting).astype(np.float32)[profiles.gram_id]
    if weighting in ("l2", "tfidf"):
        norms = np.sqrt(np.add.reduceat(data * data, indptr[:-1])) if len(data) else np.ones(n_programs)
        data /= np.repeat(norms.astype(np.float32), counts)
    return sp.csr_matrix((data, profiles.gram_id, indptr), shape=(n_programs, n_grams))


@dataclass
class SyntacticMap:
    """The fitted syntactic map: weighted pq-gram row → centred → projected on ``basis``.

    Stored in ``syn_basis`` (one row per gram: weight, centre, basis row) so that programs
    outside the universe (beyond tasks, user programs) are placed by the same map.
    """

    basis: np.ndarray  # (V, k) float64: top-k eigenvectors of the centred gram matrix, largest first
    centre: np.ndarray  # (V,) float64: mean weighted row of the fitting sample
    explained: np.ndarray  # (k,) float64: each direction's share of the sample's total variance

    def project(self, x) -> np.ndarray:
        """Coordinates (m, k) float32 of weighted rows ``x`` (scipy sparse or dense, (m, V)).

        (x − centre) @ basis, computed as x @ basis − centre @ basis so x stays sparse
        (in float32, the stored precision: the universe's coordinates are the largest array).
        """
        offset = (self.centre @ self.basis).astype(np.float32)
        return np.asarray(x @ self.basis.astype(np.float32), dtype=np.float32) - offset


def fit_syntactic(x, k: int, seed: int, fit_rows: int = SVD_FIT_ROWS, whole_groups: bool = False) -> SyntacticMap:
    """PCA of the weighted pq-gram rows ``x``: the top-k principal directions and their variance shares.

    The fitting sample S (a seeded uniform sample of at most ``fit_rows`` rows; all rows
    when there are fewer) is centred on its mean μ before the decomposition, without
    densifying it: the centred gram matrix is SᵀS − n·μμᵀ (grams × grams, small), whose
    exact top eigenvectors are the principal directions. Explained shares are eigenvalue
    / trace, i.e. shares of the sample's total variance. With ``whole_groups``, k grows to
    the end of the group of equal eigenvalues it would cut (see ``eigen_groups``).
    """
    n, v = x.shape
    rank = min(n, v)
    if k > rank:
        raise GensynthError(f"--k-syn {k} exceeds the rank available ({rank} = min(programs {n}, distinct pq-grams {v})). Use --k-syn {rank} or less.")
    rows = np.sort(np.random.default_rng(seed).choice(n, size=fit_rows, replace=False)) if n > fit_rows else slice(None)
    sample = x[rows].astype(np.float64)  # float64 before the products: centring subtracts large sums
    centre = np.asarray(sample.mean(axis=0)).ravel()
    gram = (sample.T @ sample).toarray() - sample.shape[0] * np.outer(centre, centre)  # (V, V): small, exact
    del sample
    total = float(np.trace(gram))
    probe = min(rank, k + GROUP_PROBE)  # a few more directions, to see whether k cuts a group
    while True:
        values, vectors = _top_eigen(gram, probe)
        end = next(b for a, b in eigen_groups(values) if b >= k)
        if end < probe or probe == rank:
            break
        probe = min(rank, 2 * probe)
    if end != k and whole_groups:
        k = end
    elif end != k:
        from gensynth.progress import console

        start = next(a for a, b in eigen_groups(values) if b >= k)
        console.print(f"[yellow]Notice:[/] --k-syn {k} keeps {k - start} of {end - start} equal principal directions "
                      f"(syn[{start + 1}..{end}]): which ones is a convention of the canonical basis, not a property of the data. "
                      f"--k-syn {end} or {start} keeps whole groups.")
    explained = np.maximum(values[:k], 0.0) / total if total > 0 else np.zeros(k)
    return SyntacticMap(canonical_basis(values[:end], vectors[:, :end])[:, :k], centre, explained)


def _top_eigen(gram: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenvalues (descending) of a symmetric matrix and their eigenvectors (LAPACK's basis)."""
    import scipy.linalg

    v = len(gram)
    values, vectors = scipy.linalg.eigh(gram, subset_by_index=[v - k, v - 1])
    order = np.argsort(values)[::-1]  # largest first
    return values[order], vectors[:, order]


def canonical_basis(values: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """The canonical orthonormal basis (V, k) of each eigenspace: a function of the eigenspaces only.

    ``values`` (descending) and ``vectors`` are an eigendecomposition whose last group of
    equal eigenvalues (``eigen_groups``) is complete. Inside a group, LAPACK returns an
    arbitrary orthonormal basis; this replaces it, group by group, with the pivoted QR of
    the group's projector P = V Vᵀ (which does not depend on the basis V): direction i is
    the normalised part of the unit vector e_j (gram j) that lies in the eigenspace and is
    orthogonal to directions 1..i−1, where gram j is the one with the largest such part
    (the lowest gram id among parts equal to ``PIVOT_RTOL``). Its entry at gram j is
    positive, which fixes the sign; for a single eigenvalue this is the usual rule
    (the largest |entry| is positive). Computed in the group's own coordinates
    (rows of V), so P (grams × grams) is never formed.
    """
    out = np.empty_like(vectors)
    for start, stop in eigen_groups(values):
        group = vectors[:, start:stop]
        rest = group.copy()  # row j: the part of e_j in the eigenspace not yet spanned, in group coordinates
        turn = np.empty((stop - start, stop - start))
        for i in range(stop - start):
            norms = np.linalg.norm(rest, axis=1)
            j = int(np.flatnonzero(norms >= norms.max() * (1 - PIVOT_RTOL))[0])
            turn[:, i] = rest[j] / norms[j]
            rest -= np.outer(rest @ turn[:, i], turn[:, i])
        out[:, start:stop] = group @ turn
    return out


def eigen_groups(values: np.ndarray, rtol: float = DEGENERATE_RTOL) -> list[tuple[int, int]]:
    """[start, stop) index ranges of equal eigenvalues (within ``rtol``) of a descending sequence.

    The grammar's label symmetries (operators of one arity, leaves, are interchangeable
    in pq-gram statistics) make many eigenvalues exactly multiple: directions inside a
    group are an arbitrary orthonormal basis of its eigenspace (``canonical_basis`` replaces
    it with one that depends only on the eigenspace), and a ``k_syn`` that cuts a group
    keeps a part of it chosen by that convention, not by the data.
    """
    groups, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or abs(values[i] - values[start]) > rtol * abs(values[start]):
            groups.append((start, i))
            start = i
    return groups


def read_syntactic_map(con) -> tuple[SyntacticMap, np.ndarray]:
    """The warehouse's stored syntactic map (``syn_basis``) and each gram's column weight."""
    cols = con.execute("SELECT weight, centre, basis FROM syn_basis ORDER BY gram_id").fetchnumpy()
    if len(cols["weight"]) == 0:
        raise GensynthError("The warehouse has no syntactic map (`syn_basis` is empty); run `gensynth embed`.")
    basis = np.stack(list(cols["basis"])).astype(np.float64)
    return SyntacticMap(basis, np.asarray(cols["centre"], np.float64), np.full(basis.shape[1], np.nan)), np.asarray(cols["weight"])


def project_programs(con, grammar: Grammar, trees: list[tuple]) -> np.ndarray:
    """Syntactic coordinates (m, k_syn) of program trees of any size, by the warehouse's stored map.

    Places programs outside the universe (beyond tasks, user programs) exactly where the
    embed stage would have: the same pq-grams (meta p, q), weights, row normalisation,
    centre and basis. A gram the universe never had has no basis row (it lies outside the
    fitted span) but still counts in the row's norm. One Python pass per tree: meant for
    thousands of programs, not the universe.
    """
    meta = dict(con.execute("SELECT key, value FROM meta WHERE key IN ('pqgram.p', 'pqgram.q', 'embed.syn_weighting', 'n_programs')").fetchall())
    p, q, weighting = int(meta["pqgram.p"]), int(meta["pqgram.q"]), meta["embed.syn_weighting"]
    syn_map, weight = read_syntactic_map(con)
    vocab = {(tuple(st), tuple(b)): i for i, st, b in con.execute("SELECT gram_id, stem, base FROM pqgram_vocab").fetchall()}
    unseen = float(np.log1p(int(meta["n_programs"])) + 1) if weighting == "tfidf" else 1.0
    x = np.zeros((len(trees), len(weight)))
    outside = np.zeros(len(trees))  # squared weighted counts of grams outside the vocabulary
    for i, tree in enumerate(trees):
        for gram, n in pqgram_stage.profile_tree(tree, grammar, p, q).items():
            j = vocab.get(gram)
            if j is None:
                outside[i] += (n * unseen) ** 2
            else:
                x[i, j] += n * weight[j]
    if weighting in ("l2", "tfidf"):
        x /= np.sqrt((x * x).sum(axis=1) + outside)[:, None]
    return syn_map.project(x.astype(np.float32))


def fit_semantic(outputs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA scores (F × k) of finite functions' outputs after sign·log1p and z-scoring, and explained ratios."""
    f, g = outputs.shape
    rank = min(f, g)
    if k > rank:
        raise GensynthError(f"--k-sem {k} exceeds the rank available ({rank} = min(finite functions {f}, grid points {g})). Use --k-sem {rank} or less.")
    t = np.sign(outputs) * np.log1p(np.abs(outputs))  # heavy tails: 1e6 → 13.8
    std = t.std(axis=0)
    z = (t - t.mean(axis=0)) / np.where(std > 0, std, 1.0)  # a constant grid point carries no information
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    signs = np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(axis=1)])  # deterministic signs
    scores = (u[:, :k] * s[:k]) * signs
    return scores.astype(np.float32), (s[:k] ** 2) / (s**2).sum()


def embed_warehouse(con, grammar: Grammar, config: EmbedConfig, stages) -> EmbedSummary:
    """Run pq-grams, the syntactic SVD and the semantic PCA on an open warehouse connection."""
    config.validate()
    max_ops = int(con.execute("SELECT value FROM meta WHERE key = 'max_ops'").fetchone()[0])
    check_memory(grammar, max_ops, p=config.p, q=config.q, k_syn=config.k_syn or budget.K_SYN, k_sem=config.k_sem or DEFAULT_K_SEM)
    with stages.stage("pq-grams"):
        dag = read_dag(con)
        profiles = pqgram_stage.compute_profiles(grammar, dag, config.p, config.q)
        n_programs = len(dag)
        del dag
    with stages.stage("store pq-grams"):
        pqgram_stage.write_pqgrams(con, grammar, profiles)
        run_sql(con, "embed/pqgram_macros.sql")
    with stages.stage("syntactic SVD"):
        x = weighted_matrix(profiles, n_programs, config.weighting)
        grams, rows = len(profiles.vocab_codes), len(profiles.program_id)
        weights = gram_weights(profiles.gram_id, n_programs, grams, config.weighting)
        del profiles
        k_syn = config.k_syn or _default_k("k-syn", min(x.shape), DEFAULT_K_SYN)
        syn_map = fit_syntactic(x, k_syn, config.seed, whole_groups=config.k_syn is None)
        k_syn = syn_map.basis.shape[1]
        syn = np.empty((n_programs, k_syn), np.float32, order="F")  # column-major: columns go to DuckDB as-is
        for lo in range(0, n_programs, PROJECT_ROWS):
            syn[lo : lo + PROJECT_ROWS] = syn_map.project(x[lo : lo + PROJECT_ROWS])  # centred
        del x
    with stages.stage("semantic PCA"):
        fcols = con.execute("SELECT function_id, outputs FROM functions WHERE finite ORDER BY function_id").fetchnumpy()
        n_functions = con.execute("SELECT count(*) FROM functions").fetchone()[0]
        function_ids = np.asarray(fcols["function_id"], np.int32)
        outputs = np.array(list(fcols["outputs"]), dtype=np.float64).reshape(len(function_ids), -1)
        k_sem = config.k_sem or _default_k("k-sem", min(outputs.shape), DEFAULT_K_SEM)
        sem, sem_explained = fit_semantic(outputs, k_sem)
    with stages.stage("store coordinates"):
        run_sql(con, "embed/coords_tables.sql", sizes={"k_syn": k_syn, "k_sem": k_sem})
        _insert_coords(con, "syn_coords", "program_id", np.arange(n_programs, dtype=np.int32), syn)
        _insert_syn_basis(con, weights, syn_map)
        _insert_coords(con, "sem_coords", "function_id", function_ids, sem)
        run_sql(con, "views/manifold.sql")
    summary = EmbedSummary(grams, rows, syn_map.explained.tolist(), sem_explained.tolist(), int(n_functions - len(function_ids)))
    write_meta(con, {
        "pqgram.p": str(config.p), "pqgram.q": str(config.q),
        "embed.k_syn": str(k_syn), "embed.k_sem": str(k_sem),
        "embed.seed": str(config.seed), "embed.syn_weighting": config.weighting,
        "embed.syn_fit_rows": str(min(n_programs, SVD_FIT_ROWS)),
        "embed.syn_explained": json.dumps([round(v, 6) for v in summary.syn_explained]),
        "embed.sem_explained": json.dumps([round(v, 6) for v in summary.sem_explained]),
        "embed.sem_excluded_functions": str(summary.sem_excluded),
        "embed.pqgram_vocab": str(grams), "embed.pqgram_rows": str(rows),
    })
    return summary


def _default_k(flag: str, rank: int, default: int) -> int:
    """``default``, or the rank available when it is smaller (with a notice)."""
    if rank >= default:
        return default
    from gensynth.progress import console

    console.print(f"[yellow]Notice:[/] only rank {rank} is available for --{flag}; using {max(rank, 1)} dimensions instead of {default}.")
    return max(rank, 1)


def _insert_syn_basis(con, weights: np.ndarray, syn_map: SyntacticMap) -> None:
    """Write ``syn_basis``: per gram its column weight, the fitted centre and its row of the basis."""
    columns = {"gram_id": np.arange(len(weights), dtype=np.int32), "weight": weights.astype(np.float64),
               "centre": syn_map.centre.astype(np.float64)}
    columns |= {f"c{j}": np.ascontiguousarray(syn_map.basis[:, j]) for j in range(syn_map.basis.shape[1])}
    con.register("basis_cols", columns)
    try:
        run_sql(con, "embed/insert_syn_basis.sql")
    finally:
        con.unregister("basis_cols")


def _insert_coords(con, table: str, id_col: str, ids: np.ndarray, coords: np.ndarray) -> None:
    """Insert (id, coords FLOAT[k], radius) rows; radius = distance to the mean of coords.

    Column-major ``coords`` are passed to DuckDB without copies; the radius is computed a
    column at a time (no float64 copy of the matrix).
    """
    mean = coords.mean(axis=0, dtype=np.float64)
    radius = np.zeros(len(coords))
    for j in range(coords.shape[1]):
        radius += (coords[:, j] - mean[j]) ** 2
    columns = {"id": ids, "radius": np.sqrt(radius)}
    columns |= {f"c{j}": np.ascontiguousarray(coords[:, j]) for j in range(coords.shape[1])}
    con.register("coord_cols", columns)
    try:
        run_sql(con, f"embed/insert_{table}.sql")
    finally:
        con.unregister("coord_cols")
