"""`gensynth solve`: synthesizers write runs/predictions like training does, never count
an inconsistent program as passed, and refuse bad input cleanly."""

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from gensynth.pipeline import build_warehouse
from gensynth.manifolds.embed import EmbedConfig
from gensynth.universe.grammar import load_grammar

GENSYNTH = [sys.executable, "-m", "gensynth"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A max-ops 2 warehouse and one (barely) trained nano run on it."""
    path = tmp_path_factory.mktemp("solve") / "w.duckdb"
    build_warehouse(load_grammar(), 2, path, quiet=True, embed=EmbedConfig())
    subprocess.run(GENSYNTH + ["train", "--view", "split_support_syntactic", "--size", "nano", "--max-steps", "3",
                               "--eval-roles", "test_ood", "--eval-limit", "20", "-q", "-w", str(path)],
                   check=True, capture_output=True)
    with duckdb.connect(str(path), read_only=True) as con:
        run_id = con.execute("SELECT run_id FROM runs WHERE status = 'finished'").fetchone()[0]
    return path, run_id


def solve(path, *args):
    return subprocess.run(GENSYNTH + ["solve", "-w", str(path), *args], capture_output=True, text=True)


def rows(path, sql):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_enumerative_results_land_in_the_warehouse(trained):
    path, _ = trained
    result = solve(path, "--method", "enumerative", "--view", "split_support_syntactic", "--role", "test_ood", "--limit", "15")
    assert result.returncode == 0, result.stderr
    run = rows(path, "SELECT run_id, status, config->>'method', view FROM runs WHERE config->>'method' = 'enumerative'")
    assert len(run) == 1 and run[0][1] == "finished" and run[0][3] == "split_support_syntactic"
    preds = rows(path, f"SELECT count(*), count(*) FILTER (WHERE passed), min(candidates), count(search_seconds) "
                       f"FROM predictions WHERE run_id = '{run[0][0]}'")[0]
    assert preds[0] == 15 and preds[1] == 15 and preds[2] >= 1 and preds[3] == 15
    # joins to the manifold like any prediction
    assert rows(path, f"SELECT count(*) FROM predictions JOIN manifold USING (program_id) WHERE run_id = '{run[0][0]}'")[0][0] == 15


def test_sample_and_verify_never_passes_an_inconsistent_program(trained):
    path, run_id = trained
    result = solve(path, "--method", "sample_verify", "--run", run_id, "--view", "split_support_syntactic",
                   "--role", "test_ood", "--limit", "15", "--samples", "6")
    assert result.returncode == 0, result.stderr
    sv = rows(path, "SELECT run_id FROM runs WHERE config->>'method' = 'sample_verify'")[0][0]
    from gensynth.universe.functions import row_hashes
    from gensynth.universe.syntax import evaluate_trees, parse_prefix

    g = load_grammar()
    for predicted, passed, value_hash, candidates in rows(path, f"""
            SELECT pr.predicted, pr.passed, f.value_hash, pr.candidates FROM predictions pr
            JOIN programs USING (program_id) JOIN functions f USING (function_id) WHERE pr.run_id = '{sv}'"""):
        assert 1 <= candidates <= 6
        if passed:  # a pass is re-checked here, independently, by exact evaluation
            tree = parse_prefix(predicted, g)
            assert int(row_hashes(evaluate_trees([tree], g))[0].view("int64")[0]) == value_hash
        else:
            assert predicted == "" or int(row_hashes(evaluate_trees([parse_prefix(predicted, g)], g))[0].view("int64")[0]) != value_hash


def test_hybrid_and_beyond_tasks(trained):
    path, run_id = trained
    result = solve(path, "--method", "hybrid", "--run", run_id, "--view", "tasks_beyond", "--limit", "8",
                   "--samples", "4", "--bank-ops", "2")
    assert result.returncode == 0, result.stderr
    run = rows(path, "SELECT run_id, config->>'parent_run' FROM runs WHERE config->>'method' = 'hybrid'")[0]
    assert run[1] == run_id
    got = rows(path, f"SELECT role, view, count(*), count(*) FILTER (WHERE passed) FROM predictions WHERE run_id = '{run[0]}' GROUP BY ALL")
    assert got[0][:3] == ("test_beyond", "tasks_beyond", 8) and got[0][3] >= 6
    n_ops = rows(path, "SELECT DISTINCT n_ops FROM tasks_beyond")
    max_ops = rows(path, "SELECT value FROM meta WHERE key = 'max_ops'")[0][0]
    assert n_ops == [(int(max_ops) + 1,)]
    # function-disjoint from the warehouse
    assert rows(path, "SELECT count(*) FROM tasks_beyond JOIN functions USING (value_hash)")[0][0] == 0


@pytest.mark.parametrize("args,message", [
    (["--method", "magic", "--view", "split_support_syntactic"], "--method must be one of"),
    (["--method", "hybrid", "--view", "split_support_syntactic"], "needs a trained model"),
    (["--method", "enumerative", "--view", "split_support_syntactic", "--budget-candidates", "0"], "zero budget"),
    (["--method", "enumerative", "--view", "split_nope"], "split_nope"),
    (["--method", "enumerative", "--view", "split_support_syntactic", "--role", "test_nope"], "has no role 'test_nope'"),
    (["--method", "sample_verify", "--run", "no-such-run", "--view", "split_support_syntactic"], "No training run 'no-such-run'"),
])
def test_bad_input(trained, args, message):
    path, _ = trained
    before = rows(path, "SELECT count(*) FROM runs")[0][0]
    result = solve(path, *args)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert rows(path, "SELECT count(*) FROM runs")[0][0] == before


# --- one accounting for every method (issue 10, item 6) ----------------------------------

def _run_of(path, method):
    return rows(path, f"SELECT run_id FROM runs WHERE config->>'method' = '{method}' ORDER BY started_at DESC LIMIT 1")[0][0]


def test_sample_verify_is_bounded_by_the_candidate_budget(trained):
    path, run_id = trained
    result = solve(path, "--method", "sample_verify", "--run", run_id, "--view", "split_support_syntactic",
                   "--role", "test_ood", "--limit", "10", "--samples", "32", "--budget-candidates", "5")
    assert result.returncode == 0, result.stderr
    sv = _run_of(path, "sample_verify")
    assert rows(path, f"SELECT max(candidates) FROM predictions WHERE run_id = '{sv}'")[0][0] <= 5
    # the run's budget is what it could spend, not the unused --budget-candidates default
    assert rows(path, f"SELECT budget FROM finished_runs WHERE run_id = '{sv}'")[0][0] == 5


def test_every_sample_counts_duplicates_included(trained):
    path, run_id = trained
    result = solve(path, "--method", "sample_verify", "--run", run_id, "--view", "split_support_syntactic",
                   "--role", "test_ood", "--limit", "10", "--samples", "6", "--temperature", "0.05")
    assert result.returncode == 0, result.stderr
    sv = _run_of(path, "sample_verify")
    got = rows(path, f"SELECT passed, candidates FROM predictions WHERE run_id = '{sv}'")
    assert any(not p for p, _ in got)
    assert all(c == 6 for p, c in got if not p)  # near-greedy samples repeat, and each repeat was evaluated
    assert all(1 <= c <= 6 for p, c in got if p)
    assert rows(path, f"SELECT budget FROM finished_runs WHERE run_id = '{sv}'")[0][0] == 6


def test_neural_runs_record_the_parent_size_and_the_model_loading(trained):
    path, run_id = trained
    result = solve(path, "--method", "hybrid", "--run", run_id, "--view", "split_support_syntactic",
                   "--role", "test_ood", "--limit", "5", "--samples", "4", "--bank-ops", "1")
    assert result.returncode == 0, result.stderr
    hy = _run_of(path, "hybrid")
    parent_size = rows(path, f"SELECT size FROM runs WHERE run_id = '{run_id}'")[0][0]
    assert parent_size == "nano"
    assert rows(path, f"SELECT size, n_params FROM runs WHERE run_id = '{hy}'")[0] == \
        rows(path, f"SELECT size, n_params FROM runs WHERE run_id = '{run_id}'")[0]
    share = float(rows(path, f"SELECT config->'accounting'->>'shared_seconds_per_task' FROM runs WHERE run_id = '{hy}'")[0][0])
    assert share > 0  # loading the model is charged to the tasks, in equal shares
    assert rows(path, f"SELECT min(search_seconds) FROM predictions WHERE run_id = '{hy}'")[0][0] >= share


@pytest.mark.parametrize("method", ["sample_verify", "hybrid"])
def test_the_seconds_budget_bounds_neural_methods(trained, method):
    path, run_id = trained
    result = solve(path, "--method", method, "--run", run_id, "--view", "split_support_syntactic", "--role", "test_ood",
                   "--limit", "5", "--samples", "8", "--budget-seconds", "0.000001")
    assert result.returncode == 0, result.stderr
    got = rows(path, f"SELECT count(*), max(candidates), count(*) FILTER (WHERE passed) FROM predictions "
                     f"WHERE run_id = '{_run_of(path, method)}'")[0]
    assert got == (5, 0, 0)  # out of time before the first sample: nothing drawn, nothing solved
