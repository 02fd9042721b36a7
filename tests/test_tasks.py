"""Targets for the synthesizers: user task files (`gensynth solve --tasks FILE`, the `tasks`
table) and tasks beyond the universe (`gensynth beyond --ops N`)."""

import shutil
import subprocess
import sys
from collections import Counter
from fractions import Fraction

import duckdb
import numpy as np
import pytest

from gensynth.errors import GensynthError
from gensynth.manifolds.embed import EmbedConfig
from gensynth.pipeline import build_warehouse
from gensynth.synthesis.formulas import evaluate_formula, parse_formula
from gensynth.synthesis.task_files import read_task_file
from gensynth.synthesis.tasks import draw_programs, evaluate_nodes, prefix_texts
from gensynth.universe.grammar import load_grammar
from gensynth.universe.syntax import evaluate_trees, parse_prefix

GENSYNTH = [sys.executable, "-m", "gensynth"]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """A max-ops 2 warehouse with manifolds, splits and analysis views (read-only: copy to change)."""
    path = tmp_path_factory.mktemp("tasks") / "w.duckdb"
    build_warehouse(load_grammar(), 2, path, quiet=True, embed=EmbedConfig())
    return path


@pytest.fixture
def fresh(warehouse, tmp_path):
    path = tmp_path / "w.duckdb"
    shutil.copy(warehouse, path)
    return path


def gensynth(*args):
    return subprocess.run(GENSYNTH + list(args), capture_output=True, text=True)


def test_formulas_are_evaluated_exactly_on_the_grid():
    g = load_grammar()
    v = evaluate_formula(parse_formula("x^3 - 2*x*y + 1/2 - 0.25 * -3", g), g)
    for (x, y), num, den in zip(g.grid_points, v.num[0], v.den[0]):
        assert Fraction(int(num), int(den)) == x**3 - 2 * x * y + Fraction(1, 2) + Fraction(3, 4)
    u = evaluate_formula(parse_formula("1 / (x - y) + (x + 1)^-2", g), g)
    undefined = [x == y for x, y in g.grid_points]
    assert ((u.den[0] == 0) == np.array(undefined)).all()  # undefined exactly where x - y is 0
    # the same function as a program of the grammar
    same = evaluate_trees([parse_prefix("- * x * x x - * 2 * x y / 1 2", g)], g)
    w = evaluate_formula(parse_formula("x^3 - (2*x*y - 1/2)", g), g)
    assert (same.num == w.num).all() and (same.den == w.den).all()


BAD_FILES = [
    ("a: x + z\n", "line 1, column 8: unknown variable 'z'"),
    ("# header\nok: x*y\nbad: (x + 1 * y\n", "line 3, column 6: unbalanced parentheses: '(' is never closed"),
    ("x)\n", "line 1, column 2: unbalanced parentheses: ')' without a matching '('"),
    ("half: x / 0\n", "line 1, column 9: division by a literal zero"),
    ("q: y / (2 - 2)\n", "division by a literal zero"),
    ("p: x ^ y\n", "the exponent after '^' must be an integer literal"),
    ("\n# only comments\n\n", "has no tasks"),
    ("", "has no tasks"),
    ("a: x\na: y\n", "names several tasks 'a'"),
]


@pytest.mark.parametrize("text,message", BAD_FILES)
def test_bad_task_files_are_refused_with_the_line(tmp_path, text, message):
    path = tmp_path / "targets.txt"
    path.write_text(text)
    with pytest.raises(GensynthError, match=message.replace("(", r"\(").replace(")", r"\)").replace("^", r"\^")):
        read_task_file(path, load_grammar())


def test_gensynth_solve_refuses_bad_task_files_and_writes_nothing(fresh, tmp_path):
    for i, (text, message) in enumerate(BAD_FILES[:4] + BAD_FILES[6:7]):  # unknown variable, parentheses, /0, empty
        path = tmp_path / f"targets{i}.txt"
        path.write_text(text)
        result = gensynth("solve", "--method", "enumerative", "--tasks", str(path), "-q", "-w", str(fresh))
        assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr
        assert "nothing was stored" in result.stderr.lower() or "has no tasks" in result.stderr
    with duckdb.connect(str(fresh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'tasks'").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_task_file_runs_land_and_method_comparison_picks_them_up(fresh, tmp_path):
    path = tmp_path / "targets.txt"
    path.write_text("# my targets\ncubic: x^3 - 2*x*y + 1/2\n(x + 1) / (y - 0.5)\nsq: x*x + y*y\n")
    result = gensynth("solve", "--method", "enumerative", "--tasks", str(path), "-q", "-w", str(fresh),
                      "--budget-seconds", "60", "--budget-candidates", "100000000")
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(fresh), read_only=True) as con:
        tasks = con.execute("SELECT task_id, name, formula, line, in_universe FROM tasks ORDER BY task_id").fetchall()
        preds = con.execute("SELECT p.program_id, t.name, p.passed, p.candidates FROM predictions p "
                            "JOIN tasks t ON t.task_id = p.program_id WHERE p.view = 'tasks' ORDER BY 1").fetchall()
        comparison = con.execute("SELECT method, split, role, n, pass_at_1 FROM method_comparison WHERE split = 'tasks'").fetchall()
    assert [t[1:4] for t in tasks] == [("cubic", "x^3 - 2*x*y + 1/2", 2), ("line3", "(x + 1) / (y - 0.5)", 3),
                                       ("sq", "x*x + y*y", 4)]
    assert [t[4] for t in tasks] == [False, False, False]  # none is a function of the max-ops 2 universe
    assert [p[1] for p in preds] == ["cubic", "line3", "sq"] and all(p[2] for p in preds)
    assert comparison == [("enumerative", "tasks", "test_tasks", 3, 1.0)]
    # the same file again: its tasks are reused, not stored twice
    assert gensynth("solve", "--method", "enumerative", "--tasks", str(path), "-q", "-w", str(fresh)).returncode == 0
    with duckdb.connect(str(fresh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM tasks").fetchone()[0] == 3
        assert con.execute("SELECT count(DISTINCT run_id) FROM predictions WHERE view = 'tasks'").fetchone()[0] == 2


def test_values_files(fresh, tmp_path):
    g = load_grammar()
    rows = ["name,x,y,value"]
    for x, y in g.grid_points:
        v = x * y + 1
        rows.append(f"xy1,{x},{y},{v}")
        rows.append(f"inv,{float(x)},{float(y)},{'' if x == y else 1 / (x - y)}")
    path = tmp_path / "values.csv"
    path.write_text("\n".join(rows) + "\n")
    tasks = read_task_file(path, g)
    assert [t.name for t in tasks] == ["xy1", "inv"]
    assert (tasks[1].exact.den[0] == 0).sum() == 8  # undefined on the diagonal
    result = gensynth("solve", "--method", "enumerative", "--tasks", str(path), "-q", "-w", str(fresh))
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(fresh), read_only=True) as con:
        assert con.execute("SELECT count(*) FILTER (WHERE passed) FROM predictions WHERE view = 'tasks'").fetchone()[0] == 2
    path.write_text("name,x,y,value\nt,0.3,-2,1\n")
    with pytest.raises(GensynthError, match="line 2: .* is not a point of the grammar's grid"):
        read_task_file(path, g)
    path.write_text("name,x,y,value\nt,-2,-2,one\n")
    with pytest.raises(GensynthError, match="line 2, column value: 'one' is not a number"):
        read_task_file(path, g)
    path.write_text("name,x,y,value\nt,-2,-2,1\n")
    with pytest.raises(GensynthError, match="lacks 63 of the 64 grid points"):
        read_task_file(path, g)


def test_random_trees_are_uniform_and_evaluated_like_parsed_programs():
    g = load_grammar("tests/grammars/tiny.toml")
    nodes, roots = draw_programs(g, 2, 25_600, np.random.default_rng(0))
    texts = prefix_texts(g, nodes, roots)
    counts = Counter(texts)
    assert len(counts) == 256  # every 2-operator tree of the tiny grammar (4 ops, 2 leaves) ...
    assert 50 < min(counts.values()) and max(counts.values()) < 160  # ... about 100 times each
    values = evaluate_nodes(g, nodes).take(roots)
    again = evaluate_trees([parse_prefix(t, g) for t in texts[:300]], g)
    assert (values.num[:300] == again.num).all() and (values.den[:300] == again.den).all()


def test_beyond_draws_n_operators_disjoint_from_the_warehouse(fresh):
    result = gensynth("beyond", "--ops", "7", "--tasks", "30", "-w", str(fresh))
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(fresh), read_only=True) as con:
        rows = con.execute("SELECT prefix, n_ops, value_hash FROM tasks_beyond").fetchall()
        clash = con.execute("SELECT count(*) FROM tasks_beyond JOIN functions USING (value_hash)").fetchone()[0]
    g = load_grammar()
    assert len(rows) == 30 and clash == 0 and {r[1] for r in rows} == {7}
    assert all(sum(tok in "+-*/" for tok in r[0].split()) == 7 for r in rows)
    assert len({r[2] for r in rows}) == 30
    values = evaluate_trees([parse_prefix(r[0], g) for r in rows], g)
    assert (values.den > 0).all()  # defined at every grid point
    for ops, message in (("2", "more than the warehouse's max_ops"), ("11", "at most 10")):
        bad = gensynth("beyond", "--ops", ops, "-w", str(fresh))
        assert bad.returncode != 0 and message in bad.stderr


def test_a_rebuild_keeps_the_tasks_users_brought(fresh, tmp_path):
    """User targets are irreplaceable: `gensynth build` over the warehouse carries `tasks` over, rows unchanged."""
    path = tmp_path / "targets.txt"
    path.write_text("cubic: x^3 - 2*x*y + 1/2\nsq: x*x + y*y\n")
    solved = gensynth("solve", "--method", "enumerative", "--tasks", str(path), "-q", "-w", str(fresh))
    assert solved.returncode == 0, solved.stderr
    query = "SELECT task_id, name, formula, exact, data_version FROM tasks ORDER BY task_id"
    with duckdb.connect(str(fresh), read_only=True) as con:
        before = con.execute(query).fetchall()
    rebuilt = gensynth("build", "--max-ops", "1", "-w", str(fresh))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "user tasks carried" in rebuilt.stdout + rebuilt.stderr
    with duckdb.connect(str(fresh), read_only=True) as con:
        assert con.execute(query).fetchall() == before
        assert con.execute("SELECT value FROM meta WHERE key = 'tasks_carried'").fetchone()[0] == "2"
        # the runs on them were carried too, and still join to their tasks
        assert con.execute("SELECT count(*) FROM predictions p JOIN tasks t ON t.task_id = p.program_id "
                           "WHERE p.view = 'tasks'").fetchone()[0] == 2
