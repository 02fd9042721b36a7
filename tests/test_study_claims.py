"""The 4-op study's claims (reports/study-4op/claims.sql + claims.py) on a small made-up
export with known answers: the seed-and-program interval, the least-squares slope and
its interval against numpy, and the verdict rules' branches."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import duckdb
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("claims", ROOT / "reports" / "study-4op" / "claims.py")
claims = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(claims)

SEEDS = (0, 1, 2)
DENSITY = {"natural": 0.10, "syntactic": 0.12, "semantic": 0.20, "diverse": 0.15}  # row level
SCALING = {"nano": 1e12, "micro": 5e12, "tiny": 1.5e13, "small": 4e13, "medium": 1.2e14}


def write(con, rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = list(rows[0])
    values = ", ".join("(" + ", ".join(repr(r[c]) if not isinstance(r[c], str) else f"'{r[c]}'" for c in cols) + ")"
                       for r in rows)
    con.execute(f"COPY (SELECT * FROM (VALUES {values}) AS v({', '.join(cols)})) TO '{path}' (FORMAT parquet)")


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    a = root / "results" / "analysis"
    runs, scores, drops, prox = [], [], [], []
    for seed in SEEDS:
        for strategy, level in DENSITY.items():
            rid, view = f"d-{strategy}-{seed}", f"split_density_{strategy}"
            runs.append(dict(run_id=rid, view=view, method="transformer", size="micro", max_steps=1200, seed=seed,
                             training_flops=1e14, finished_at=f"2026-12-01 10:0{seed}:00"))
            for test, bump in (("natural", 0.0), ("syntactic", 0.01), ("semantic", 0.02 if strategy != "semantic" else 0.10),
                               ("diverse", 0.015)):
                scores.append(dict(run_id=rid, view=view, role=f"test_{test}", n=2000, pass_at_1=level + bump + 0.01 * seed,
                                   function_pass_at_1=level, top_prediction_share=0.05, n_functions=500))
        for split, i, o in (("support_syntactic", 0.08, 0.02), ("support_semantic", 0.20, 0.30)):
            rid, view = f"s-{split}-{seed}", f"split_{split}"
            runs.append(dict(run_id=rid, view=view, method="transformer", size="micro", max_steps=1200, seed=seed,
                             training_flops=1e14, finished_at="2026-12-01 11:00:00"))
            ii, oo = i + 0.01 * seed, o + 0.01 * seed
            drops.append(dict(run_id=rid, view=view, split=split, ood_role="test_ood", method="transformer",
                              id_pass_at_1=ii, ood_pass_at_1=oo, abs_drop=ii - oo, rel_drop=1 - oo / ii, n_id=2000, n_ood=2000))
            for role, p in (("test_id", ii), ("test_ood", oo)):
                scores.append(dict(run_id=rid, view=view, role=role, n=2000, pass_at_1=p, function_pass_at_1=p,
                                   top_prediction_share=0.05, n_functions=500))
                prox.append(dict(run_id=rid, view=view, role=role, distance="syntactic", auc=0.6 + 0.01 * seed,
                                 n_solved=100, n_unsolved=1900))
        for size, flops in SCALING.items():
            for steps in (30, 100, 300):
                rid = f"x-{size}-{steps}-{seed}"
                f = flops * steps
                runs.append(dict(run_id=rid, view="split_support_syntactic", method="transformer", size=size, max_steps=steps,
                                 seed=seed, training_flops=f, finished_at="2026-12-01 12:00:00"))
                scores.append(dict(run_id=rid, view="split_support_syntactic", role="test_id", n=2000,
                                   pass_at_1=0.02 * math.log10(f) - 0.2 + 0.003 * seed, function_pass_at_1=0.0,
                                   top_prediction_share=0.05, n_functions=500))
    # A demo run in the same warehouse is no part of the study.
    runs.append(dict(run_id="demo", view="split_support_syntactic", method="transformer", size="micro", max_steps=1000,  # as scaling_long
                     seed=0, training_flops=1e15, finished_at="2026-12-01 13:00:00"))
    scores.append(dict(run_id="demo", view="split_support_syntactic", role="test_id", n=500, pass_at_1=0.9,
                       function_pass_at_1=0.9, top_prediction_share=0.05, n_functions=100))
    runs.append(dict(run_id="e1", view="split_support_syntactic", method="enumerative", size="enumerative", max_steps=0,
                     seed=0, training_flops=0.0, finished_at="2026-12-01 14:00:00"))
    con = duckdb.connect()
    configs = [dict(run_id=x["run_id"], config='{"eval": {"limit": ' + ("500" if x["run_id"] == "demo" else "2000") + "}}")
               for x in runs]
    write(con, configs, root / "results" / "runs.parquet")
    write(con, runs, a / "finished_runs.parquet")
    write(con, scores, a / "pass_at_k.parquet")
    write(con, drops, a / "ood_drop.parquet")
    write(con, prox, a / "proximity_summary.parquet")
    write(con, [dict(method="enumerative", view="split_support_syntactic", role="test_id", run_id="e1", n=200,
                     pass_at_1=0.99, pass_at_1_lo=0.97, pass_at_1_hi=1.0, wall_time_s=10.0)], a / "method_comparison.parquet")
    con.close()
    (root / "beyond_runs.csv").write_text("")
    return root


def test_cells_combine_the_seeds_and_the_programs(study):
    r = claims.run_claims(study)
    cell = next(c for c in r["density_cells"] if (c["train_strategy"], c["test_strategy"]) == ("diverse", "natural"))
    ps = np.array([0.15 + 0.01 * s for s in SEEDS])
    p, sd = ps.mean(), ps.std(ddof=1)
    half = math.sqrt((4.303 * sd / math.sqrt(3)) ** 2 + 1.959964 ** 2 * p * (1 - p) / 2000)
    assert cell["n_seeds"] == 3 and cell["pass_at_1"] == pytest.approx(p)
    assert (cell["lo"], cell["hi"]) == (pytest.approx(p - half), pytest.approx(p + half))


def test_the_slope_and_its_interval_are_least_squares(study):
    from scipy.stats import t

    r = claims.run_claims(study)
    [fit] = [f for f in r["scaling_fit"] if f["role"] == "test_id" and f["metric"] == "pass@1"]
    assert fit["n_points"] == 45 + 3 and fit["flops_span"] == pytest.approx(1.2e14 * 300 / (1e12 * 30))  # + the block; no demo
    x = np.array([math.log10(f * s) for f in SCALING.values() for s in (30, 100, 300) for _ in SEEDS] + [14.0] * 3)
    y = np.array([0.02 * math.log10(f * s) - 0.2 + 0.003 * seed for f in SCALING.values() for s in (30, 100, 300)
                  for seed in SEEDS] + [0.08 + 0.01 * seed for seed in SEEDS])  # the support block's runs
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    se = math.sqrt(resid @ resid / (len(x) - 2) / ((x - x.mean()) @ (x - x.mean())))
    assert fit["slope"] == pytest.approx(slope) and fit["se"] == pytest.approx(se)
    con = duckdb.connect()  # the t table and its expansion past 30 degrees of freedom
    con.execute((ROOT / "reports" / "study-4op" / "claims.sql").read_text().split("-- The study's model runs")[0])
    for df in (1, 2, 5, 30, 31, 46, 200):
        assert con.execute(f"SELECT t975({df})").fetchone()[0] == pytest.approx(t.ppf(0.975, df), abs=2e-3), df
    assert fit["slope_lo"] == pytest.approx(slope - t.ppf(0.975, len(x) - 2) * se, abs=1e-6)


def test_the_verdicts(study):
    r = claims.run_claims(study)
    verdicts = {row[0]: row[3] for row in claims.judge(r)}
    assert verdicts["A large drop on syntactically novel programs"] == "reproduced"  # 60-75% drop
    assert verdicts["Almost no drop on semantically novel programs"].startswith("reversed")  # o > i by half, beyond the programs' error
    assert verdicts["Log-linear gains with compute (support_syntactic, test_id, pass@1)"] == "reproduced"
    assert verdicts["Solved test programs lie near training data (syntactic distance)"] == "reproduced"
    # The semantic row is the brittle one and semantic→semantic the best cell, clear of the rest.
    assert verdicts["The semantic-trained model peaks in-domain but is brittle"] == "reproduced"
    text = claims.render(r)
    assert "## Density matrix" in text and "## Scaling" in text and "enumerative" in text
