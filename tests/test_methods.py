"""The synthesizer interface (gensynth.synthesis.methods): a method is one class registered by
name; `gensynth solve --method NAME` and the analysis views pick it up with no other edit,
and it is charged through the same Meter as every built-in method."""

import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from gensynth.cli.main import app
from gensynth.errors import GensynthError
from gensynth.manifolds.embed import EmbedConfig
from gensynth.pipeline import build_warehouse
from gensynth.synthesis.budget import Budget, Meter, OutOfBudget
from gensynth.synthesis.methods import Attempt, get_method, method_names, register
from gensynth.universe.grammar import load_grammar


@register
class ToyLeaves:
    """Tries every leaf of the grammar, one candidate each, in grammar order."""

    name = "toy_leaves"
    needs_model = False

    def __init__(self, context):
        self.grammar = context.grammar

    def solve(self, problem, meter):
        from gensynth.universe.functions import leaf_values

        leaves = leaf_values(self.grammar)
        for sym in range(self.grammar.n_leaves):
            meter.spend(1)
            if (leaves.num[sym, problem.points] == problem.target.num[0]).all() and \
                    (leaves.den[sym, problem.points] == problem.target.den[0]).all():
                return Attempt((sym,), "solved", exact_up_to=0, how="leaf")
        return Attempt(None, "exhausted", exact_up_to=0)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    path = tmp_path_factory.mktemp("methods") / "w.duckdb"
    build_warehouse(load_grammar(), 1, path, quiet=True, embed=EmbedConfig())
    return path


def test_builtins_are_registered():
    assert {"enumerative", "sample_verify", "hybrid", "toy_leaves"} <= set(method_names())
    assert get_method("enumerative").needs_model is False and get_method("hybrid").needs_model is True


def test_a_registered_method_runs_through_gensynth_solve(warehouse):
    result = CliRunner().invoke(app, ["solve", "--method", "toy_leaves", "--view", "split_support_syntactic",
                                      "--role", "train", "--limit", "200", "-q", "-w", str(warehouse)])
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(warehouse), read_only=True) as con:
        run_id, size, budget = con.execute("SELECT run_id, size, config->>'budget' FROM runs "
                                           "WHERE config->>'method' = 'toy_leaves'").fetchone()
        preds = con.execute(f"SELECT passed, candidates, p.n_ops FROM predictions JOIN programs p USING (program_id) "
                            f"WHERE run_id = '{run_id}'").fetchall()
        shown = con.execute("SELECT DISTINCT method FROM finished_runs").fetchall()
        n_train = con.execute("SELECT count(*) FROM split_support_syntactic WHERE role = 'train'").fetchone()[0]
    assert len(preds) == min(200, n_train) and size == "toy_leaves" and int(budget) == 2_000_000
    assert 0 < sum(p for p, _, _ in preds) < len(preds)
    # the toy solves exactly the targets that are a leaf's function, charged one per leaf tried
    for passed, candidates, n_ops in preds:
        assert 1 <= candidates <= 5 and (passed or candidates == 5)
        assert not passed or n_ops == 0 or candidates >= 1
    assert ("toy_leaves",) in shown  # the analysis picks the new method up by its name


def test_a_registered_method_lands_in_method_comparison(warehouse):
    """The toy, defined only in this file, reaches the analysis through `gensynth solve` alone:
    method_comparison (test roles) shows it by name, with the solve rate of its predictions."""
    result = CliRunner().invoke(app, ["solve", "--method", "toy_leaves", "--view", "split_support_syntactic",
                                      "--role", "test_id", "-q", "-w", str(warehouse)])
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("SELECT role, n, pass_at_1, budget, split FROM method_comparison "
                           "WHERE method = 'toy_leaves'").fetchall()
        truth = con.execute("""
            SELECT count(*), count(*) FILTER (WHERE p.function_id IN (SELECT function_id FROM programs WHERE n_ops = 0))
            FROM split_support_syntactic s JOIN programs p USING (program_id) WHERE s.role = 'test_id'""").fetchone()
        agree = con.execute("""
            SELECT bool_and(pr.passed = (p.function_id IN (SELECT function_id FROM programs WHERE n_ops = 0)))
            FROM predictions pr JOIN runs r USING (run_id) JOIN programs p USING (program_id)
            WHERE r.config->>'method' = 'toy_leaves' AND pr.role = 'test_id'""").fetchone()[0]
    n, leaf_functions = truth
    assert rows == [("test_id", n, pytest.approx(leaf_functions / n), 2_000_000, "support_syntactic")]
    assert 0 < leaf_functions < n and agree  # solved exactly the targets whose function a leaf computes


def test_unknown_and_malformed_methods_are_refused():
    with pytest.raises(GensynthError, match="--method must be one of .*toy_leaves"):
        get_method("no_such_method")
    with pytest.raises(GensynthError, match="needs a class attribute `name`"):
        register(type("Nameless", (), {"needs_model": False, "solve": lambda self, p, m: None}))


def test_the_meter_charges_batches_up_to_their_first_hit():
    meter = Meter(Budget(candidates=10, seconds=100))
    assert meter.grant(4) == 4
    meter.settle(4, 2)  # the hit was the second row
    assert meter.candidates == 2 and meter.grant(100) == 8
    with pytest.raises(OutOfBudget, match="budget"):
        meter.grant(1)
    clock = iter([0.0, 5.0]).__next__
    late = Meter(Budget(seconds=1.0), charged_seconds=0.5, clock=clock)
    with pytest.raises(OutOfBudget, match="timeout"):
        late.grant(1)
    assert late.candidates == 0
