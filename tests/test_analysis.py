"""Tests for the analysis views (sql/analysis/, gensynth/analysis.py) and nearest-neighbour
proximity (gensynth/proximity.py).

One real warehouse per module: the tiny grammar (tests/grammars/tiny.toml) up to 2
operators (274 programs, manifolds and built-in splits, built by the real pipeline in a
few seconds), with hand-made runs and predictions inserted as ordinary rows so every
number the views report can be checked by hand:

* run ood-a (support_syntactic, seed 0): test_id 8 of 10 solved, test_ood 2 of 10;
  two test_id programs sampled 5 times (2 and 0 correct);
* run ood-b (support_syntactic, seed 1): 5 of 10 on both roles; one program sampled 10
  times, 3 correct;
* a 'running' and a 'failed' run that solve everything (must count nowhere);
* density runs (4 programs per test role): the matrix below;
* five scaling runs on support_semantic at 1e10 .. 1e14 FLOPs whose test_id pass@1 is
  exactly 0.1 + 0.15 (log10 FLOPs - 10);
* three search runs (config.method) with budgets.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from gensynth.analysis.views import analysis_objects, column_docs, install_analysis_views
from gensynth.analysis.proximity import nearest_brute, nearest_kdtree, pqgram_nearest, update_proximity

ROOT = Path(__file__).resolve().parents[1]
DUCKDB_CLI = Path(sys.executable).with_name("duckdb")
VIEWS = ("finished_runs", "analysed_predictions", "pass_at_k", "ood_drop", "density_matrix", "scaling", "method_comparison",
         "proximity", "proximity_summary")
# Density runs: (train strategy, seed) -> programs solved out of 4 per test role
# (natural, syntactic, semantic, diverse).
DENSITY = {
    ("natural", 0): (4, 2, 2, 2),
    ("natural", 1): (2, 2, 2, 2),
    ("syntactic", 0): (1, 3, 1, 1),
    ("semantic", 0): (0, 0, 4, 0),
    ("diverse", 0): (2, 2, 2, 2),
}
STRATEGIES = ("natural", "syntactic", "semantic", "diverse")
SCALING = {10: 2, 11: 5, 12: 8, 13: 11, 14: 14}  # log10 FLOPs -> test_id solved of 20
SCALING_OOD = {10: 1, 11: 1, 12: 2, 13: 2, 14: 3}  # log10 FLOPs -> test_ood solved of 20
SIZES = ("nano", "micro", "tiny", "small", "medium")


# ---------------------------------------------------------------------- the fixture


def build_fixture_warehouse(path: Path) -> Path:
    """Build the tiny-grammar warehouse and insert the hand-made runs (see the module docstring)."""
    from gensynth.pipeline import build_warehouse
    from gensynth.manifolds.embed import EmbedConfig
    from gensynth.universe.grammar import load_grammar

    build_warehouse(load_grammar(ROOT / "tests" / "grammars" / "tiny.toml"), 2, path, quiet=True,
                    embed=EmbedConfig(k_syn=4, k_sem=4))
    con = duckdb.connect(str(path))
    try:
        install_analysis_views(con)
        insert_runs(con)
    finally:
        con.close()
    return path


def role_programs(con, view: str, role: str, n: int) -> list[int]:
    """The n smallest program ids of a role (a fixed, known choice)."""
    got = [r[0] for r in con.execute(f"SELECT program_id FROM {view} WHERE role = ? ORDER BY program_id LIMIT ?",
                                     [role, n]).fetchall()]
    assert len(got) == n, (view, role, n, len(got))
    return got


def add_run(con, run_id: str, view: str, status: str = "finished", size: str = "nano", seed: int = 0,
            max_steps: int = 100, flops: float | None = 1e12, method: str | None = None, budget: int | None = None) -> None:
    version = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
    sql_hash = con.execute("SELECT sql_hash FROM splits WHERE name = ?", [view.removeprefix("split_")]).fetchone()[0]
    if method is None:
        config = {"run_id": run_id, "data": {"view": view, "seed": seed, "batch_size": 32},
                  "model": {"size": size}, "training": {"max_steps": max_steps}, "eval": {}}
    else:
        config = {"method": method, "view": view, "budget_candidates": budget, "seed": seed}
    con.execute("""INSERT INTO runs (run_id, view, split_sql_hash, role_sizes, config, size, n_params, training_flops,
                                     steps, wall_time_s, code_version, data_version, status, started_at, finished_at,
                                     ingested_at)
                   VALUES (?, ?, ?, '{}', ?, ?, 1000, ?, ?, 1.5, 'test', ?, ?, now(), now(), now())""",
                [run_id, view, sql_hash, json.dumps(config), size if method is None else method, flops,
                 max_steps if method is None else None, version, status])


def add_predictions(con, run_id: str, view: str, role: str, programs: list[int], n_passed: int,
                    decoding: str = "greedy", samples: int = 1) -> None:
    """One answer per program (the first n_passed solved), or ``samples`` sampled rows per program."""
    rows = []
    for i, pid in enumerate(programs):
        for s in range(samples):
            passed = i < n_passed if decoding != "sampled" else s < n_passed
            rows.append(f"('{run_id}', '{view}', '{role}', {pid}, '{decoding}', {s}, 'x', true, {passed}, false, {passed}, -1.0)")
    con.execute("INSERT INTO predictions (run_id, view, role, program_id, decoding, sample_index, predicted, parsed, "
                "passed, exact_match, offgrid_passed, logprob) VALUES " + ", ".join(rows))


def add_curves(con, run_id: str, decay: float, steps: int = 100) -> None:
    """Logged training curves (metrics) of a run: losses falling as exp(-decay * step / steps)."""
    con.execute("""INSERT INTO metrics SELECT ?, s, name, CASE name WHEN 'val/seq_acc' THEN 1 - exp(-? * s / ?)
                                                                   ELSE 2.5 * exp(-? * s / ?) + 0.5 END
                   FROM range(10, ? + 1, 10) AS t(s), (VALUES ('train/loss'), ('val/loss'), ('val/seq_acc')) AS n(name)""",
                [run_id, decay, steps, decay, steps, steps])


def insert_runs(con) -> None:
    sy = "split_support_syntactic"
    test_id, test_ood = role_programs(con, sy, "test_id", 10), role_programs(con, sy, "test_ood", 10)
    add_run(con, "ood-a", sy, seed=0)
    add_predictions(con, "ood-a", sy, "test_id", test_id, 8)
    add_predictions(con, "ood-a", sy, "test_ood", test_ood, 2)
    add_predictions(con, "ood-a", sy, "test_id", test_id[:1], 2, decoding="sampled", samples=5)
    add_predictions(con, "ood-a", sy, "test_id", test_id[1:2], 0, decoding="sampled", samples=5)
    add_run(con, "ood-b", sy, seed=1)
    add_predictions(con, "ood-b", sy, "test_id", test_id, 5)
    add_predictions(con, "ood-b", sy, "test_ood", test_ood, 5)
    add_predictions(con, "ood-b", sy, "test_id", test_id[:1], 3, decoding="sampled", samples=10)
    for status in ("running", "failed"):  # solve everything, count nowhere
        add_run(con, f"not-{status}", sy, status=status, seed=2)
        add_predictions(con, f"not-{status}", sy, "test_id", test_id, 10)
        add_predictions(con, f"not-{status}", sy, "test_ood", test_ood, 10)
    for (train, seed), solved in DENSITY.items():
        view = f"split_density_{train}"
        run_id = f"density-{train}-{seed}"
        add_run(con, run_id, view, seed=seed)
        for test, k in zip(STRATEGIES, solved):
            add_predictions(con, run_id, view, f"test_{test}", role_programs(con, view, f"test_{test}", 4), k)
    # a search run on a density split: its own method group, never mixed with the transformer cells
    add_run(con, "density-search", "split_density_natural", method="enumerative", budget=100, flops=None)
    for test in STRATEGIES:
        add_predictions(con, "density-search", "split_density_natural", f"test_{test}",
                        role_programs(con, "split_density_natural", f"test_{test}", 4), 4, decoding="search")
    se = "split_support_semantic"
    for size, (e, k) in zip(SIZES, SCALING.items()):
        run_id = f"scale-{e}"
        add_run(con, run_id, se, size=size, flops=10.0 ** e)
        add_predictions(con, run_id, se, "test_id", role_programs(con, se, "test_id", 20), k)
        add_predictions(con, run_id, se, "test_ood", role_programs(con, se, "test_ood", 20), SCALING_OOD[e])
        add_curves(con, run_id, decay=0.1 * (e - 9))
    for run_id, method, budget, k in (("search-e100", "enumerative", 100, 3), ("search-e1000", "enumerative", 1000, 7),
                                      ("search-h100", "hybrid", 100, 6)):
        add_run(con, run_id, sy, method=method, budget=budget, flops=None)
        add_predictions(con, run_id, sy, "test_ood", test_ood, k, decoding="search")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """The fixture warehouse with proximity computed. Read-only: copy it to change it."""
    path = build_fixture_warehouse(tmp_path_factory.mktemp("analysis") / "gensynth.duckdb")
    con = duckdb.connect(str(path))
    try:
        update_proximity(con)
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def con(warehouse):
    c = duckdb.connect(str(warehouse), read_only=True)
    yield c
    c.close()


@pytest.fixture
def copy(warehouse, tmp_path) -> Path:
    path = tmp_path / "copy.duckdb"
    shutil.copy(warehouse, path)
    return path


def one(con, sql: str, params=None):
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1, (sql, rows)
    return dict(zip(cols, rows[0]))


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


# ------------------------------------------------------------------------ the files


def test_every_analysis_file_creates_its_namesake_and_documents_every_column():
    objects = analysis_objects()
    assert {o.name for o in objects} == set(VIEWS) | {"nearest_train"}
    for o in objects:
        text = o.text.lstrip()
        assert text.startswith("--"), f"{o.name}: no header comment"
        docs = column_docs(o)
        assert docs, o.name
        undocumented = [c for c, d in docs.items() if not d]
        assert not undocumented, f"{o.name}: undocumented columns {undocumented}"
    order = [o.name for o in objects]
    for o in objects:  # each after what it reads
        assert all(order.index(d) < order.index(o.name) for d in o.depends_on), o.name


def test_install_is_idempotent_and_creates_the_results_tables(tmp_path, warehouse):
    # A warehouse that never received a run has no results tables: installing creates them.
    path = tmp_path / "fresh.duckdb"
    con = duckdb.connect(str(path))
    from gensynth.warehouse import run_sql

    run_sql(con, "schema.sql")  # the derived tables of a build (meta, programs, ...), empty: the views read programs
    install_analysis_views(con)
    install_analysis_views(con)
    for v in VIEWS:
        assert con.execute(f"SELECT count(*) FROM {v}").fetchone()[0] == 0
    con.close()
    # Re-installing on the fixture changes no answer.
    c = duckdb.connect(str(warehouse), read_only=True)
    before = c.execute("SELECT * FROM pass_at_k ORDER BY ALL").fetchall()
    c.close()
    copy = tmp_path / "again.duckdb"
    shutil.copy(warehouse, copy)
    c = duckdb.connect(str(copy))
    install_analysis_views(c)
    assert c.execute("SELECT * FROM pass_at_k ORDER BY ALL").fetchall() == before
    c.close()


# ------------------------------------------------------------------------ the views


def test_only_finished_runs_count(con):
    runs = {r[0] for r in con.execute("SELECT DISTINCT run_id FROM pass_at_k").fetchall()}
    assert "not-running" not in runs and "not-failed" not in runs and "ood-a" in runs
    for v in ("ood_drop", "scaling", "method_comparison", "proximity", "proximity_summary"):
        assert con.execute(f"SELECT count(*) FROM {v} WHERE run_id LIKE 'not-%'").fetchone()[0] == 0, v


def test_pass_at_1_with_wilson_interval_and_unbiased_pass_at_k(con):
    r = one(con, "SELECT * FROM pass_at_k WHERE run_id = 'ood-a' AND role = 'test_id'")
    assert (r["n"], r["n_passed"]) == (10, 8)
    assert r["pass_at_1"] == pytest.approx(0.8)
    lo, hi = wilson(8, 10)
    assert (r["pass_at_1_lo"], r["pass_at_1_hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert (round(r["pass_at_1_lo"], 4), round(r["pass_at_1_hi"], 4)) == (0.4902, 0.9433)  # the textbook 8/10 interval

    # Two programs sampled 5 times, 2 and 0 correct: pass@1 = mean(2/5, 0); pass@5 = mean(1, 0).
    assert (r["n_sampled"], r["samples"]) == (2, 5)
    assert r["sample_pass_at_1"] == pytest.approx(0.2)
    assert r["pass_at_5"] == pytest.approx(0.5)
    assert r["pass_at_10"] is None  # fewer than 10 samples
    assert r["pass_at_samples"] == pytest.approx(0.5)
    # 10 samples, 3 correct: pass@5 = 1 - C(7,5)/C(10,5) = 1 - 21/252; pass@10 = 1.
    b = one(con, "SELECT * FROM pass_at_k WHERE run_id = 'ood-b' AND role = 'test_id'")
    assert b["pass_at_1"] == pytest.approx(0.5)
    assert b["sample_pass_at_1"] == pytest.approx(0.3)
    assert b["pass_at_5"] == pytest.approx(1 - 21 / 252, abs=1e-12)
    assert b["pass_at_10"] == pytest.approx(1.0)
    # The SQL estimator agrees with the reference implementation (models/pass_at_k.py).
    from models.pass_at_k import pass_at_k

    assert b["pass_at_5"] == pytest.approx(pass_at_k(10, 3, 5), abs=1e-12)
    # A search run's answers (decoding 'search') give its pass@1.
    s = one(con, "SELECT * FROM pass_at_k WHERE run_id = 'search-e1000'")
    assert (s["n"], s["pass_at_1"], s["n_sampled"]) == (10, pytest.approx(0.7), 0)


def test_the_wilson_interval_stays_inside_0_and_1(warehouse, tmp_path):
    """Review B9: at 0 of 7 passed the lower end was -1.7e-18 (rounding), shown in the report."""
    copy = tmp_path / "w.duckdb"
    shutil.copy(warehouse, copy)
    c = duckdb.connect(str(copy))
    sy = "split_support_syntactic"
    add_run(c, "zero-of-7", sy, seed=7)
    add_predictions(c, "zero-of-7", sy, "test_id", role_programs(c, sy, "test_id", 7), 0)
    add_predictions(c, "zero-of-7", sy, "test_ood", role_programs(c, sy, "test_ood", 7), 7)
    got = dict(c.execute("SELECT role, (pass_at_1_lo, pass_at_1_hi) FROM pass_at_k WHERE run_id = 'zero-of-7'").fetchall())
    c.close()
    assert got["test_id"][0] == 0.0 and got["test_ood"][1] == 1.0


def test_ood_drop(con):
    rows = con.execute("SELECT run_id, id_role, ood_role, n_id, n_ood, id_pass_at_1, ood_pass_at_1, abs_drop, rel_drop "
                       "FROM ood_drop WHERE method = 'transformer' AND split = 'support_syntactic' ORDER BY run_id").fetchall()
    assert [r[:5] for r in rows] == [("ood-a", "test_id", "test_ood", 10, 10), ("ood-b", "test_id", "test_ood", 10, 10)]
    assert rows[0][5:] == pytest.approx((0.8, 0.2, 0.6, 0.75))
    assert rows[1][5:] == pytest.approx((0.5, 0.5, 0.0, 0.0))
    # Density splits have no test_id role, so no rows.
    assert con.execute("SELECT count(*) FROM ood_drop WHERE view LIKE 'split_density%'").fetchone()[0] == 0


def test_density_matrix_means_over_seeds_and_row_spread(con):
    rows = con.execute("SELECT train_strategy, test_strategy, n_runs, n_seeds, pass_at_1, pass_at_1_sd, row_spread, "
                       "row_mean, row_cells FROM density_matrix WHERE method = 'transformer'").fetchall()
    cells = {(r[0], r[1]): r for r in rows}
    assert len(cells) == 16 and all(r[8] == 4 for r in rows)
    for train in STRATEGIES:
        seeds = [s for (t, s) in DENSITY if t == train]
        for j, test in enumerate(STRATEGIES):
            expect = np.mean([DENSITY[(train, s)][j] / 4 for s in seeds])
            assert cells[(train, test)][4] == pytest.approx(expect), (train, test)
            assert cells[(train, test)][2:4] == (len(seeds), len(seeds))
    # natural: seeds give (1.0, 0.5, 0.5, 0.5) and (0.5, ...) -> means (0.75, 0.5, 0.5, 0.5), spread 0.25
    assert cells[("natural", "natural")][5] == pytest.approx(np.std([1.0, 0.5], ddof=1))
    spreads = {t: cells[(t, "natural")][6] for t in STRATEGIES}
    assert spreads == pytest.approx({"natural": 0.25, "syntactic": 0.5, "semantic": 1.0, "diverse": 0.0})
    assert cells[("syntactic", "natural")][7] == pytest.approx(0.375)
    # The search run sits in its own group.
    search = con.execute("SELECT train_strategy, pass_at_1 FROM density_matrix WHERE method = 'enumerative'").fetchall()
    assert sorted(search) == [("natural", 1.0)] * 4


def test_scaling_fit_recovers_the_known_slope(con):
    fit = con.execute("SELECT DISTINCT slope, intercept, r2, n_fit, flops_span FROM scaling "
                      "WHERE view = 'split_support_semantic' AND role = 'test_id'").fetchall()
    assert len(fit) == 1
    slope, intercept, r2, n_fit, span = fit[0]
    assert (slope, intercept, r2) == (pytest.approx(0.15), pytest.approx(-1.4), pytest.approx(1.0))
    assert (n_fit, span) == (5, pytest.approx(1e4))
    # test_ood: y = (1,1,2,2,3)/20 on x = 10..14: slope 0.25/10, intercept 0.09 - 12 slope, R² 0.25²/(10 · 0.007)
    slope, intercept, r2 = con.execute("SELECT DISTINCT slope, intercept, r2 FROM scaling "
                                       "WHERE view = 'split_support_semantic' AND role = 'test_ood'").fetchone()
    assert (slope, intercept, r2) == (pytest.approx(0.025), pytest.approx(-0.21), pytest.approx(0.0625 / 0.07))
    points = con.execute("SELECT log10_flops, pass_at_1, size FROM scaling WHERE view = 'split_support_semantic' "
                         "AND role = 'test_id' ORDER BY 1").fetchall()
    assert points == [(pytest.approx(e), pytest.approx(k / 20), s) for (e, k), s in zip(SCALING.items(), SIZES)]
    # Search runs (no training FLOPs) are not on the compute axis.
    assert con.execute("SELECT count(*) FROM scaling WHERE method <> 'transformer'").fetchone()[0] == 0


def test_method_comparison_reports_search_budgets(con):
    rows = con.execute("SELECT method, budget, pass_at_1 FROM method_comparison WHERE view = 'split_support_syntactic' "
                       "AND method <> 'transformer' ORDER BY method, budget").fetchall()
    assert rows == [("enumerative", 100.0, pytest.approx(0.3)), ("enumerative", 1000.0, pytest.approx(0.7)),
                    ("hybrid", 100.0, pytest.approx(0.6))]


# --------------------------------------------------------------------- proximity


def _coords(con, col: str, ids) -> np.ndarray:
    k = con.execute(f"SELECT len({col}) FROM manifold WHERE {col} IS NOT NULL LIMIT 1").fetchone()[0]
    got = dict((r[0], r[1:]) for r in con.execute(
        f"SELECT program_id, {', '.join(f'{col}[{i + 1}]' for i in range(k))} FROM manifold").fetchall())
    return np.array([got[i] for i in ids], dtype=np.float64)


def test_kdtree_matches_brute_force_on_random_points():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(3000, 6)) * np.array([3, 2, 1, 1, 0.5, 0.1])
    queries = rng.normal(size=(400, 6))
    queries[:50] = train[:50]  # exact hits: distance 0
    d1, i1 = nearest_kdtree(train, queries)
    d2, i2 = nearest_brute(train, queries, block=97)
    assert np.allclose(d1, d2, atol=1e-12)
    assert np.allclose(np.linalg.norm(queries - train[i1], axis=1), d2, atol=1e-12)
    assert np.all(d1[:50] == 0)
    d, i = nearest_kdtree(np.zeros((0, 6)), queries)
    assert np.all(np.isinf(d)) and np.all(i == -1)


def test_nearest_train_matches_brute_force_on_both_manifolds(con):
    for view in ("split_support_syntactic", "split_density_natural"):
        train = [r[0] for r in con.execute(f"SELECT program_id FROM {view} WHERE role = 'train' ORDER BY 1").fetchall()]
        rows = con.execute("SELECT program_id, syn_nn_dist, syn_nn_program_id, sem_nn_dist, sem_nn_program_id "
                           "FROM nearest_train WHERE train_view = ? ORDER BY 1", [view]).fetchall()
        tests = {r[0] for r in con.execute(f"SELECT program_id FROM {view} WHERE role LIKE 'test_%'").fetchall()}
        assert {r[0] for r in rows} == tests  # every test program of the split, once
        ids = [r[0] for r in rows]
        syn_train, syn_test = _coords(con, "syn", train), _coords(con, "syn", ids)
        d, _ = nearest_brute(syn_train, syn_test)
        assert np.allclose([r[1] for r in rows], d, atol=1e-9)
        # the recorded neighbour is a train program at that distance
        nn = _coords(con, "syn", [r[2] for r in rows])
        assert set(r[2] for r in rows) <= set(train)
        assert np.allclose(np.linalg.norm(nn - syn_test, axis=1), d, atol=1e-9)
        # semantic: brute force over the train programs whose function is finite
        sem_ok = {r[0] for r in con.execute("SELECT program_id FROM manifold WHERE sem IS NOT NULL").fetchall()}
        sem_train = [p for p in train if p in sem_ok]
        have = [r for r in rows if r[0] in sem_ok]
        d, _ = nearest_brute(_coords(con, "sem", sem_train), _coords(con, "sem", [r[0] for r in have]))
        assert np.allclose([r[3] for r in have], d, atol=1e-6)
        assert all(r[3] is None for r in rows if r[0] not in sem_ok)
        assert {r[4] for r in have} <= set(sem_train)


def test_pqgram_distances_match_the_sql_definition(con):
    view = "split_support_syntactic"
    got = dict(con.execute("SELECT program_id, pqgram_nn_dist FROM nearest_train WHERE train_view = ?", [view]).fetchall())
    assert all(v is not None for v in got.values())  # a small split: every test program within budget
    # Brute force in SQL over every (test, train) pair, with the pqgram_distance macro's formula.
    expect = dict(con.execute(f"""
        WITH tr AS (SELECT program_id FROM {view} WHERE role = 'train'),
             te AS (SELECT program_id FROM {view} WHERE role LIKE 'test_%'),
             size AS (SELECT program_id, sum(n) AS s FROM pqgrams GROUP BY 1),
             inter AS (SELECT a.program_id AS a, b.program_id AS b, sum(least(a.n, b.n)) AS i
                       FROM pqgrams a JOIN pqgrams b USING (gram_id)
                       WHERE a.program_id IN (SELECT * FROM te) AND b.program_id IN (SELECT * FROM tr) GROUP BY 1, 2),
             pairs AS (SELECT te.program_id AS a, tr.program_id AS b FROM te, tr)
        SELECT p.a, min((sa.s + sb.s - 2 * coalesce(i.i, 0)) / (sa.s + sb.s - coalesce(i.i, 0)))
        FROM pairs p JOIN size sa ON sa.program_id = p.a JOIN size sb ON sb.program_id = p.b
        LEFT JOIN inter i ON i.a = p.a AND i.b = p.b GROUP BY 1""").fetchall())
    assert got.keys() == expect.keys()
    assert np.allclose([got[k] for k in sorted(got)], [expect[k] for k in sorted(got)], atol=1e-12)
    # The macro itself agrees for one recorded neighbour.
    pid, nn, d = con.execute("SELECT program_id, pqgram_nn_program_id, pqgram_nn_dist FROM nearest_train "
                             "WHERE train_view = ? ORDER BY program_id LIMIT 1", [view]).fetchone()
    assert con.execute(f"SELECT pqgram_distance({pid}, {nn})").fetchone()[0] == pytest.approx(d)


def test_pqgram_nearest_on_hand_made_profiles():
    # Bags: a = {1, 1, 2}, b = {1, 3}, c = {4}; test t = {1, 2}.
    profiles = {10: [(1, 2), (2, 1)], 11: [(1, 1), (3, 1)], 12: [(4, 1)], 20: [(1, 1), (2, 1)]}
    d, i = pqgram_nearest(profiles, np.array([10, 11, 12]), np.array([20]))
    # t vs a: |⊎| = 5, |∩| = 2 -> (5 - 4) / (5 - 2) = 1/3;  vs b: (4 - 2)/(4 - 1) = 2/3;  vs c: 1
    assert d[0] == pytest.approx(1 / 3) and i[0] == 0


def test_pqgram_budget_samples_test_programs_and_update_is_incremental(copy):
    con = duckdb.connect(str(copy))
    try:
        con.execute("DELETE FROM nearest_train")
        [r] = update_proximity(con, views=["support_syntactic"], pqgram_budget=1)
        assert r.computed == r.test and r.pqgram == 0  # budget too small for even one test program
        assert con.execute("SELECT count(*) FROM nearest_train WHERE pqgram_nn_dist IS NOT NULL").fetchone()[0] == 0
        [r] = update_proximity(con, views=["support_syntactic"])
        assert r.computed == 0 and not r.recomputed_all  # nothing missing, nothing stale
        con.execute("UPDATE splits SET sql_hash = 'changed' WHERE name = 'support_syntactic'")
        [r] = update_proximity(con, views=["support_syntactic"])
        assert r.recomputed_all and r.computed == r.test and r.pqgram == r.test
        with pytest.raises(Exception, match="did you mean 'split_support_syntactic'"):
            update_proximity(con, views=["support_syntactix"])
    finally:
        con.close()


def test_proximity_summary_rank_test_by_hand(copy):
    con = duckdb.connect(str(copy))
    try:
        test_ood = role_programs(con, "split_support_syntactic", "test_ood", 10)
        # ood-a solved the first 2. Solved at distances 0.1, 0.3; unsolved at 0.2, 0.3, 0.5 .. 1.0.
        dists = [0.1, 0.3, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
        for pid, d in zip(test_ood, dists):
            con.execute("UPDATE nearest_train SET syn_nn_dist = ? WHERE train_view = 'split_support_syntactic' "
                        "AND program_id = ?", [d, pid])
        r = one(con, "SELECT * FROM proximity_summary WHERE run_id = 'ood-a' AND role = 'test_ood' AND distance = 'syntactic'")
    finally:
        con.close()
    assert (r["n_solved"], r["n_unsolved"]) == (2, 8)
    assert (r["median_solved"], r["median_unsolved"]) == (pytest.approx(0.2), pytest.approx(0.65))
    # Pairs with the unsolved farther: 0.1 -> all 8; 0.3 -> 6 farther + 1 tie (1/2): U = 14.5
    assert r["u_statistic"] == pytest.approx(14.5)
    assert r["auc"] == pytest.approx(14.5 / 16)
    # z with the tie correction (one tie of 2): sigma² = 2·8/12 · (11 - 6/90)
    z = (14.5 - 8) / math.sqrt(16 / 12 * (11 - 6 / 90))
    assert r["z"] == pytest.approx(z)
    assert r["p_value"] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), abs=2e-7)
    # And it agrees with an independent count over all pairs.
    solved, unsolved = dists[:2], dists[2:]
    u = sum((b > a) + 0.5 * (b == a) for a in solved for b in unsolved)
    assert u == pytest.approx(r["u_statistic"])


def test_proximity_summary_pools_test_roles_and_covers_all_distances(con):
    rows = con.execute("SELECT role, distance, n_solved, n_unsolved FROM proximity_summary WHERE run_id = 'ood-a' "
                       "ORDER BY ALL").fetchall()
    by = {(r[0], r[1]): r[2:] for r in rows}
    assert by[("test_id", "syntactic")] == (8, 2) and by[("test_ood", "syntactic")] == (2, 8)
    assert by[("all_test", "syntactic")] == (10, 10)
    assert {d for _, d in by} == {"syntactic", "semantic", "pqgram"}
    # Search runs are joined to their split's training set too.
    assert con.execute("SELECT count(*) FROM proximity WHERE run_id = 'search-e100' AND syn_nn_dist IS NOT NULL"
                       ).fetchone()[0] == 10


def test_a_run_on_an_older_split_version_gets_no_distances(copy):
    con = duckdb.connect(str(copy))
    try:
        con.execute("UPDATE runs SET split_sql_hash = 'old' WHERE run_id = 'ood-a'")
        n = con.execute("SELECT count(*), count(syn_nn_dist) FROM proximity WHERE run_id = 'ood-a'").fetchone()
    finally:
        con.close()
    assert n == (20, 0)


# ------------------------------------------------------------------ the DuckDB shell


def test_every_view_runs_in_the_duckdb_cli(warehouse):
    assert DUCKDB_CLI.exists(), "install the dev extra: pip install duckdb-cli==1.5.6"
    sql = "; ".join(f"SELECT '{v}' AS view, count(*) AS n FROM {v}" for v in VIEWS)
    out = subprocess.run([str(DUCKDB_CLI), "-readonly", "-csv", "-noheader", str(warehouse), "-c", sql],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    counts = dict(line.split(",") for line in out.stdout.split())
    assert set(counts) == set(VIEWS) and all(int(n) > 0 for n in counts.values()), counts
    # The shell computes the same numbers as the Python client.
    out = subprocess.run([str(DUCKDB_CLI), "-readonly", "-csv", "-noheader", str(warehouse), "-c",
                          "SELECT run_id, round(rel_drop, 6), round(abs_drop, 6) FROM ood_drop WHERE method = 'transformer' "
                          "AND split = 'support_syntactic' ORDER BY 1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ood-a,0.75,0.6", "ood-b,0.0,0.0"]


# ------------------------------------------------------- pass@1 that one constant can fake


def test_one_constant_cannot_fake_pass_at_1(copy, tmp_path):
    """Every answer is the constant 1: pass@1 counts the programs of that one function, the new columns see through it."""
    con = duckdb.connect(str(copy))
    try:
        one_fn = con.execute("SELECT function_id FROM programs WHERE prefix = '1'").fetchone()[0]
        ones = [r[0] for r in con.execute("SELECT program_id FROM programs WHERE function_id = ? ORDER BY program_id "
                                          "LIMIT 6", [one_fn]).fetchall()]
        others = [r[0] for r in con.execute("SELECT min(program_id) FROM programs WHERE function_id <> ? GROUP BY function_id "
                                            "ORDER BY 1 LIMIT 4", [one_fn]).fetchall()]
        assert len(ones) == 6 and len(others) == 4
        add_run(con, "const-1", "split_support_syntactic")
        rows = [f"('const-1', 'split_support_syntactic', 'test_ood', {pid}, 'greedy', 0, '1', true, {pid in ones}, false, "
                f"{pid in ones}, -1.0)" for pid in ones + others]
        con.execute("INSERT INTO predictions (run_id, view, role, program_id, decoding, sample_index, predicted, parsed, "
                    "passed, exact_match, offgrid_passed, logprob) VALUES " + ", ".join(rows))
        r = one(con, "SELECT * FROM pass_at_k WHERE run_id = 'const-1'")
    finally:
        con.close()
    assert (r["n"], r["pass_at_1"]) == (10, pytest.approx(0.6))  # 6 of 10 programs "solved" by one constant
    assert r["n_functions"] == 5 and r["function_pass_at_1"] == pytest.approx(1 / 5)  # 1 of 5 functions
    assert r["top_prediction_share"] == pytest.approx(1.0) and r["top_prediction"] == "1"
    # A parsed answer outside the universe is its own function; an unparsed one predicts none.
    con = duckdb.connect(str(copy))
    try:
        con.execute("UPDATE predictions SET predicted = '+ + + x x x x', passed = false WHERE run_id = 'const-1' "
                    "AND program_id IN (SELECT unnest(?))", [others[:2]])
        con.execute("UPDATE predictions SET predicted = '+ x', parsed = false, passed = false WHERE run_id = 'const-1' "
                    "AND program_id IN (SELECT unnest(?))", [others[2:]])
        r = one(con, "SELECT top_prediction_share, top_prediction FROM pass_at_k WHERE run_id = 'const-1'")
        # The train/eval summary warns (it reads the same view).
        from types import SimpleNamespace

        from gensynth.cli.train import _analysis_rows

        con.close()
        s = SimpleNamespace(run_id="const-1", view="split_support_syntactic", run_dir=tmp_path)
        shown, warnings = _analysis_rows([], s, copy)
    finally:
        con.close()
    assert r == {"top_prediction_share": pytest.approx(0.6), "top_prediction": "1"}
    assert ("top prediction share test_ood", "0.60  WARNING") in shown
    assert len(warnings) == 1 and "60% of the answers are one function (e.g. `1`)" in warnings[0]


def test_the_top_share_warning_calls_a_wrong_repeated_answer_a_collapse_not_dominance():
    """Review B8: at pass@1 0 the old warning said pass@1 was 'dominated by that one answer'."""
    from gensynth.cli.train import top_share_warning

    none = top_share_warning({"role": "test_id", "top_prediction": "x", "pass_at_1": 0.0}, 0.8, "0.000")
    assert "dominated" not in none and "none passes" in none and "80%" in none
    some = top_share_warning({"role": "test_id", "top_prediction": "x", "pass_at_1": 0.4}, 0.8, "0.100")
    assert "may be dominated" in some and "0.400" in some and "0.100" in some
