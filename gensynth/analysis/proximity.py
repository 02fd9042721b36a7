"""Stage: distance from each test program to its nearest training program (`gensynth proximity`).

Writes the ``nearest_train`` table (sql/analysis/nearest_train.sql), which the
``proximity`` and ``proximity_summary`` views join to runs: for every split a finished
run trained on (or every split asked for), each program of its ``test_*`` roles and each
program a run of that split was evaluated on in a test role gets

* its nearest ``train`` program on the syntactic manifold (Euclidean, ``manifold.syn``);
* its nearest ``train`` program on the semantic manifold (``manifold.sem``; the training
  set is deduplicated by function first, since programs of one function share sem);
* its nearest ``train`` program by normalised pq-gram distance (the ``pqgram_distance``
  macro): exact, for every test program while ``n_test × pq-gram rows of train`` stays
  under a budget, else for a hashed sample of the test programs that fits it.

Nearest neighbours are exact: a k-d tree (scipy's cKDTree, float64) over the training
coordinates. The manifolds have low intrinsic dimension, where a k-d tree answers a
query in logarithmic time (``python -m benchmarks.proximity``: 10k queries against
1M training programs, both manifolds). ``nearest_brute`` is the blocked exhaustive search
the tests check it against.

pq-gram distances are exact too: with each gram of multiplicity n expanded into n binary
features, the bag intersection sum_g min(n_a(g), n_b(g)) is a dot product, so a block of
test programs against every train program is one sparse × dense product.

A split's rows are recomputed when its SQL (``splits.sql_hash``) or the warehouse data
version changed; otherwise only programs without a row are added (``force`` recomputes).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import duckdb
import numpy as np

from gensynth.errors import GensynthError
from gensynth.warehouse import relation_exists, relation_names, sql_text

# Multiply-adds allowed for one split's pq-gram search: n_test x (pq-gram rows of the
# train programs). About 5-20 s on one core; larger splits get a hashed test sample.
PQGRAM_BUDGET = 4_000_000_000


@dataclass
class ProximityResult:
    """What was computed for one split view."""

    view: str
    train: int  # programs in the train role
    test: int  # test programs with a row after the update
    computed: int  # rows (re)computed now
    pqgram: int  # of those, with a pq-gram distance
    recomputed_all: bool
    seconds: float


# ------------------------------------------------------------------ nearest neighbours


def nearest_kdtree(train: np.ndarray, queries: np.ndarray, workers: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean nearest neighbour of each query among ``train`` rows: (distance, index).

    ``train`` (N, d) and ``queries`` (Q, d); float64 distances. Empty ``train`` gives
    inf / -1.
    """
    from scipy.spatial import cKDTree

    queries = np.asarray(queries, dtype=np.float64)
    if len(train) == 0 or len(queries) == 0:
        return np.full(len(queries), np.inf), np.full(len(queries), -1, dtype=np.int64)
    tree = cKDTree(np.asarray(train, dtype=np.float64), balanced_tree=False, compact_nodes=False)
    dist, idx = tree.query(queries, k=1, workers=workers)
    return dist, idx.astype(np.int64)


def nearest_brute(train: np.ndarray, queries: np.ndarray, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact nearest neighbour by exhaustive blocked search in float64 (reference for tests)."""
    train = np.asarray(train, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.float64)
    dist = np.full(len(queries), np.inf)
    idx = np.full(len(queries), -1, dtype=np.int64)
    if len(train) == 0:
        return dist, idx
    for s in range(0, len(queries), block):
        q = queries[s:s + block]  # (b, d)
        d2 = ((q[:, None, :] - train[None, :, :]) ** 2).sum(-1)  # (b, N): direct differences, no cancellation
        j = d2.argmin(1)
        dist[s:s + block] = np.sqrt(d2[np.arange(len(q)), j])
        idx[s:s + block] = j
    return dist, idx


def pqgram_nearest(profiles: dict[int, list[tuple[int, int]]] | None, train_ids: np.ndarray, test_ids: np.ndarray,
                   con: duckdb.DuckDBPyConnection | None = None, block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Exact nearest train program by normalised pq-gram distance for each test program.

    d(a, b) = (|A| + |B| - 2|A ∩ B|) / (|A| + |B| - |A ∩ B|) on bags (the pqgram_distance
    macro). Profiles come from ``con``'s ``pqgrams`` table, or from ``profiles``: rows read
    beforehand (``_Profiles``), or for tests a dict program id -> [(gram_id, n)]. Returns (distance, index into train_ids).
    """
    from scipy import sparse

    train_ids = np.asarray(train_ids, dtype=np.int64)
    test_ids = np.asarray(test_ids, dtype=np.int64)
    out_d = np.full(len(test_ids), np.nan)
    out_i = np.full(len(test_ids), -1, dtype=np.int64)
    if len(train_ids) == 0 or len(test_ids) == 0:
        return out_d, out_i
    tr_rows, tr_grams, tr_n = _profile_rows(con, profiles, train_ids)
    te_rows, te_grams, te_n = _profile_rows(con, profiles, test_ids)
    max_n = int(max(tr_n.max(initial=1), te_n.max(initial=1)))

    def expand(rows, grams, n):
        # gram g with multiplicity n -> binary features (g, 1) .. (g, n)
        reps = np.repeat(np.arange(len(rows)), n)
        j = np.arange(len(reps)) - np.repeat(np.cumsum(n) - n, n)  # 0 .. n-1 within each row
        return rows[reps], grams[reps] * max_n + j

    tr_r, tr_f = expand(tr_rows, tr_grams, tr_n)
    te_r, te_f = expand(te_rows, te_grams, te_n)
    # Only features some test program has can intersect: compress the columns to those.
    feats, te_col = np.unique(te_f, return_inverse=True)
    pos = np.searchsorted(feats, tr_f)
    keep = (pos < len(feats)) & (feats[np.minimum(pos, len(feats) - 1)] == tr_f)
    A = sparse.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (tr_r[keep], pos[keep])),
                          shape=(len(train_ids), len(feats)))  # (N, F) train, binary
    B = sparse.csr_matrix((np.ones(len(te_r), dtype=np.float32), (te_r, te_col)),
                          shape=(len(test_ids), len(feats)))  # (Q, F) test, binary
    size_tr = np.bincount(tr_rows, weights=tr_n, minlength=len(train_ids)).astype(np.float64)  # |A| per train program
    size_te = np.bincount(te_rows, weights=te_n, minlength=len(test_ids)).astype(np.float64)
    for s in range(0, len(test_ids), block):
        blk = B[s:s + block].toarray().T  # (F, b)
        inter = np.asarray(A @ blk, dtype=np.float64)  # (N, b): |A ∩ B| for every pair
        union = size_tr[:, None] + size_te[None, s:s + block]  # (N, b): |A ⊎ B|
        with np.errstate(invalid="ignore", divide="ignore"):
            d = (union - 2 * inter) / (union - inter)
        d = np.where(union - inter > 0, d, 0.0)  # two empty profiles: distance 0
        j = d.argmin(0)
        out_d[s:s + block] = d[j, np.arange(d.shape[1])]
        out_i[s:s + block] = j
    return out_d, out_i


def _profile_rows(con, profiles, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row index into ids, gram_id, n) of the pq-gram profiles of ``ids``."""
    if isinstance(profiles, _Profiles):
        return profiles.rows(ids)
    if profiles is not None:
        rows, grams, ns = [], [], []
        for r, pid in enumerate(ids.tolist()):
            for g, n in profiles.get(pid, []):
                rows.append(r)
                grams.append(g)
                ns.append(n)
        return np.array(rows, dtype=np.int64), np.array(grams, dtype=np.int64), np.array(ns, dtype=np.int64)
    con.register("_prox_ids", {"program_id": ids.astype(np.int32), "row": np.arange(len(ids), dtype=np.int64)})
    try:
        got = con.execute("SELECT i.row, g.gram_id, g.n FROM pqgrams AS g JOIN _prox_ids AS i USING (program_id)").fetchnumpy()
    finally:
        con.unregister("_prox_ids")
    return got["row"].astype(np.int64), got["gram_id"].astype(np.int64), got["n"].astype(np.int64)


# ----------------------------------------------------------------------- the stage


def split_views_with_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Split views (split_*) that some finished run trained on and that still exist."""
    views = set(relation_names(con, kind="view"))
    trained = [r[0] for r in con.execute("SELECT DISTINCT view FROM finished_runs ORDER BY view").fetchall()]
    return [v for v in trained if v in views and v.startswith("split_")]


def _resolve_views(con: duckdb.DuckDBPyConnection, views: list[str] | None) -> list[str]:
    have = set(relation_names(con, kind="view"))
    if "manifold" not in have:
        raise GensynthError("This warehouse has no manifolds (built with --skip-embed?): run `gensynth embed` first, "
                            "then `gensynth proximity`.")
    if views is None:
        return split_views_with_runs(con)
    views = [v if v.startswith("split_") else f"split_{v}" for v in views]
    missing = [v for v in views if v not in have]
    if missing:
        import difflib

        known = sorted(v for v in have if v.startswith("split_"))
        hints = [f"'{v}'" + (f" (did you mean '{m[0]}'?)" if (m := difflib.get_close_matches(v, known, 1)) else "")
                 for v in missing]
        raise GensynthError(f"No split view {', '.join(hints)} in this warehouse. Known splits: {', '.join(known) or 'none'}.")
    return views


def _data_version(con) -> str:
    return (con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone() or ["?"])[0]


def update_proximity(con: duckdb.DuckDBPyConnection, views: list[str] | None = None, force: bool = False,
                     pqgram_budget: float = PQGRAM_BUDGET, progress=None) -> list[ProximityResult]:
    """Fill ``nearest_train`` for ``views`` (default: every split a finished run of this universe trained on).

    ``con`` must be writable and have the analysis objects installed; it stays open
    throughout (tests, builds). ``update_proximity_at`` is the same without holding the
    warehouse while computing. Each view is written in its own transaction.
    ``progress(done, total)`` is called per view.
    """
    views = _resolve_views(con, views)
    data_version = _data_version(con)
    results = []
    for i, view in enumerate(views):
        start = time.perf_counter()
        plan = _plan_view(con, view, data_version, force, pqgram_budget)
        rows = _compute_rows(plan)
        results.append(_write_view(con, plan, rows, start))
        if progress is not None:
            progress(i + 1, len(views))
    return results


def update_proximity_at(warehouse, views: list[str] | None = None, force: bool = False,
                        pqgram_budget: float = PQGRAM_BUDGET, progress=None) -> list[ProximityResult]:
    """``update_proximity`` for a warehouse file, never holding it while computing.

    Per view: read everything the computation needs on a short read-only connection,
    close it, compute, then write in one short transaction; so runs that finish while
    distances are computed are ingested meanwhile (any open connection blocks a writer).
    """
    from gensynth.warehouse import connect_retrying

    con = connect_retrying(warehouse, read_only=True)
    try:
        views = _resolve_views(con, views)
        data_version = _data_version(con)
    finally:
        con.close()
    results = []
    for i, view in enumerate(views):
        start = time.perf_counter()
        con = connect_retrying(warehouse, read_only=True)
        try:
            plan = _plan_view(con, view, data_version, force, pqgram_budget)
        finally:
            con.close()
        rows = _compute_rows(plan)  # no connection open here
        con = connect_retrying(warehouse, read_only=False)
        try:
            results.append(_write_view(con, plan, rows, start))
        finally:
            con.close()
        if progress is not None:
            progress(i + 1, len(views))
    return results


def _split_hash(con, view: str) -> str | None:
    if not relation_exists(con, "splits", kind="table"):
        return None
    row = con.execute("SELECT sql_hash FROM splits WHERE name = ?", [view.removeprefix("split_")]).fetchone()
    return row[0] if row else None


@dataclass
class _Plan:
    """What one view's update reads from the warehouse: ids, coordinates, pq-gram rows."""

    view: str
    sql_hash: str | None
    data_version: str
    train_ids: np.ndarray
    todo: np.ndarray  # test programs to (re)compute
    recompute_all: bool
    syn: tuple = ()  # (train ids, train coords, test ids, test coords)
    sem: tuple = ()  # (train function program ids, their coords, test ids, test coords)
    pq_chosen: np.ndarray | None = None  # indices into todo within the pq-gram budget
    profiles: "_Profiles | None" = None


def _plan_view(con, view: str, data_version: str, force: bool, pqgram_budget: float) -> _Plan:
    q = _quote(view)
    sql_hash = _split_hash(con, view)
    test_ids = _ids(con, f"""
        SELECT program_id FROM {q} WHERE role LIKE 'test\\_%' ESCAPE '\\'
        UNION
        SELECT p.program_id FROM analysed_predictions AS p JOIN finished_runs AS r USING (run_id)
        WHERE r.view = ? AND p.role LIKE 'test\\_%' ESCAPE '\\' AND NOT p.trained_on""", [view])
    train_ids = _ids(con, f"SELECT program_id FROM {q} WHERE role = 'train'")
    stale = con.execute(
        "SELECT count(*) FROM nearest_train WHERE train_view = ? AND (split_sql_hash IS DISTINCT FROM ? OR data_version <> ?)",
        [view, sql_hash, data_version]).fetchone()[0]
    recompute_all = force or stale > 0
    if recompute_all:
        todo = test_ids
    else:
        done = _ids(con, "SELECT program_id FROM nearest_train WHERE train_view = ?", [view])
        todo = np.setdiff1d(test_ids, done)
    plan = _Plan(view, sql_hash, data_version, train_ids, todo, recompute_all)
    if len(todo):
        _read_inputs(con, plan, pqgram_budget)
    return plan


def _write_view(con, plan: _Plan, rows: dict | None, start: float) -> ProximityResult:
    con.execute("BEGIN TRANSACTION")
    try:
        if plan.recompute_all:
            con.execute("DELETE FROM nearest_train WHERE train_view = ?", [plan.view])
        if rows is not None:
            con.register("_prox_rows", rows)
            try:
                con.execute(sql_text("proximity/nearest_train_rows.sql"), {
                    "train_view": plan.view, "split_sql_hash": plan.sql_hash, "data_version": plan.data_version,
                    "computed_at": dt.datetime.now(dt.timezone.utc)})
            finally:
                con.unregister("_prox_rows")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    n_rows = con.execute("SELECT count(*) FROM nearest_train WHERE train_view = ?", [plan.view]).fetchone()[0]
    n_pq = 0 if rows is None else int(np.isfinite(rows["pqgram_nn_dist"]).sum())
    return ProximityResult(plan.view, len(plan.train_ids), n_rows, len(plan.todo), n_pq, plan.recompute_all,
                           time.perf_counter() - start)


class _Profiles:
    """pq-gram rows (program_id, gram_id, n) read once, looked up for any sorted set of ids."""

    def __init__(self, program_id: np.ndarray, gram_id: np.ndarray, n: np.ndarray):
        order = np.argsort(program_id, kind="stable")
        self.pid, self.gram, self.n = program_id[order], gram_id[order], n[order]

    def rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row index into ids, gram_id, n) for sorted unique ``ids``."""
        pos = np.searchsorted(ids, self.pid)
        hit = (pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == self.pid)
        return pos[hit].astype(np.int64), self.gram[hit], self.n[hit]


def _read_inputs(con, plan: _Plan, pqgram_budget: float) -> None:
    """Read the coordinates and pq-gram rows of ``plan`` (train ids, todo) into it."""
    train_ids, test_ids = plan.train_ids, plan.todo
    plan.syn = (*_coords(con, "syn", train_ids), *_coords(con, "syn", test_ids))
    # Semantic manifold: one point per train function (its smallest train program names it).
    con.register("_prox_train", {"program_id": train_ids.astype(np.int32)})
    try:
        fn = con.execute(f"""
            SELECT program_id, {_cols('sem', _dims(con, 'sem'))}
            FROM (SELECT min(m.program_id) AS program_id, any_value(m.sem) AS sem
                  FROM manifold AS m JOIN _prox_train USING (program_id)
                  WHERE m.sem IS NOT NULL GROUP BY m.function_id)
            ORDER BY 1""").fetchnumpy()
        train_rows = con.execute("SELECT count(*) FROM pqgrams JOIN _prox_train USING (program_id)").fetchone()[0]
    finally:
        con.unregister("_prox_train")
    fn_ids = fn.pop("program_id").astype(np.int64)
    fn_sem = np.stack([fn[c] for c in fn], 1) if fn else np.zeros((0, 0))
    plan.sem = (fn_ids, fn_sem, *_coords(con, "sem", test_ids))
    # pq-grams: exact, for the test programs the budget allows (a hashed, reproducible sample).
    n = len(test_ids)
    n_pq = n if train_rows == 0 else int(min(n, max(0, pqgram_budget // train_rows)))
    if n_pq > 0 and len(train_ids):
        order = np.argsort((test_ids.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2 ** 32), kind="stable")
        plan.pq_chosen = np.sort(order[:n_pq])
        ids = np.union1d(train_ids, test_ids[plan.pq_chosen])
        con.register("_prox_ids", {"program_id": ids.astype(np.int32)})
        try:
            got = con.execute("SELECT g.program_id, g.gram_id, g.n FROM pqgrams AS g JOIN _prox_ids USING (program_id)"
                              ).fetchnumpy()
        finally:
            con.unregister("_prox_ids")
        plan.profiles = _Profiles(got["program_id"].astype(np.int64), got["gram_id"].astype(np.int64),
                                  got["n"].astype(np.int64))


def _compute_rows(plan: _Plan) -> dict[str, np.ndarray] | None:
    """nearest_train columns for ``plan.todo`` against ``plan.train_ids`` (NaN = NULL); no warehouse access."""
    test_ids, train_ids = plan.todo, plan.train_ids
    if not len(test_ids):
        return None
    n = len(test_ids)
    out = {"program_id": test_ids.astype(np.int32)}
    tr_ids, tr_syn, te_ids, te_syn = plan.syn
    d, j = nearest_kdtree(tr_syn, te_syn)
    out["syn_nn_dist"] = _place(test_ids, te_ids, np.where(np.isfinite(d), d, np.nan))
    out["syn_nn_program_id"] = _place(test_ids, te_ids, np.where(j >= 0, tr_ids[np.maximum(j, 0)], -1), fill=-1)
    fn_ids, fn_sem, te_ids_sem, te_sem = plan.sem
    d, j = nearest_kdtree(fn_sem, te_sem)
    out["sem_nn_dist"] = _place(test_ids, te_ids_sem, np.where(np.isfinite(d), d, np.nan))
    out["sem_nn_program_id"] = _place(test_ids, te_ids_sem, np.where(j >= 0, fn_ids[np.maximum(j, 0)], -1), fill=-1)
    pq_d = np.full(n, np.nan)
    pq_i = np.full(n, -1, dtype=np.int64)
    if plan.pq_chosen is not None:
        chosen = plan.pq_chosen
        dd, jj = pqgram_nearest(plan.profiles, train_ids, test_ids[chosen])
        pq_d[chosen] = dd
        pq_i[chosen] = np.where(jj >= 0, train_ids[np.maximum(jj, 0)], -1)
    out["pqgram_nn_dist"] = pq_d
    out["pqgram_nn_program_id"] = pq_i
    return out  # NaN distances and -1 ids become NULL on insert


def _coords(con, col: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(program ids that have coordinates, their (n, k) coordinates) for ``ids``, in id order."""
    k = _dims(con, col)
    con.register("_prox_ids", {"program_id": ids.astype(np.int32)})
    try:
        got = con.execute(f"SELECT m.program_id, {_cols('m.' + col, k)} FROM manifold AS m "
                          f"JOIN _prox_ids USING (program_id) WHERE m.{col} IS NOT NULL ORDER BY 1").fetchnumpy()
    finally:
        con.unregister("_prox_ids")
    pid = got.pop("program_id").astype(np.int64)
    X = np.stack([got[c].astype(np.float64) for c in got], 1) if got else np.zeros((0, k))
    return pid, X


def _dims(con, col: str) -> int:
    table = "syn_coords" if col == "syn" else "sem_coords"
    row = con.execute(f"SELECT len({col}) FROM {table} LIMIT 1").fetchone()
    return int(row[0]) if row else 1


def _cols(expr: str, k: int) -> str:
    return ", ".join(f"{expr}[{i + 1}] AS c{i}" for i in range(k))


def _place(all_ids: np.ndarray, some_ids: np.ndarray, values: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """Spread values of ``some_ids`` (sorted, a subset of ``all_ids``) over ``all_ids`` (sorted); ``fill`` elsewhere."""
    out = np.full(len(all_ids), fill, dtype=np.asarray(values).dtype if len(values) else np.float64)
    out[np.searchsorted(all_ids, some_ids)] = values
    return out


def _ids(con, sql: str, params=None) -> np.ndarray:
    got = con.execute(sql, params or []).fetchnumpy()
    return np.unique(got["program_id"].astype(np.int64)) if len(got["program_id"]) else np.zeros(0, dtype=np.int64)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
