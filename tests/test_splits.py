"""Tests for gensynth/splits/ (validate, contract, registry, sampling, stats, export), sql/sampling/ and sql/splits/: the built-in splits, the
sampling strategies, `gensynth split` and the validation that keeps a split harmless.

One max-ops-3 warehouse (204,105 programs, manifolds and built-in splits included) is
built per module by the real pipeline; tests that change a warehouse work on a copy.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlglot
from typer.testing import CliRunner

from gensynth import splits
from gensynth.errors import GensynthError

DENSITY = [f"density_{s}" for s in splits.STRATEGIES]
SUPPORT = ["support_syntactic", "support_semantic", "support_joint"]
TEST_ROLES = {f"test_{s}" for s in splits.STRATEGIES}
# The grid each strategy flattens (splits.GRIDS), to compare against `natural` on it.
OWN_GRID = {"syntactic": "syntactic", "semantic": "semantic", "diverse": "functions"}
KIND = "-- a test split\n-- kind: density\n"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """A max-ops-3 warehouse built by `build_warehouse` with the manifolds (and so the splits). Read-only."""
    from gensynth.pipeline import build_warehouse
    from gensynth.manifolds.embed import EmbedConfig
    from gensynth.universe.grammar import load_grammar

    path = tmp_path_factory.mktemp("splits_ops3") / "gensynth.duckdb"
    build_warehouse(load_grammar(), 3, path, quiet=True, embed=EmbedConfig())
    return path


@pytest.fixture(scope="module")
def con(warehouse):
    c = duckdb.connect(str(warehouse), read_only=True)
    yield c
    c.close()


@pytest.fixture
def copy(warehouse, tmp_path) -> Path:
    """A private, writable copy of the module warehouse."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(warehouse, path)
    return path


def rows(con, relation: str) -> dict[int, str]:
    return dict(con.execute(f"SELECT program_id, role FROM {relation}").fetchall())


def role_counts(con, view: str) -> dict[str, int]:
    return dict(con.execute(f"SELECT role, count(*) FROM {view} GROUP BY role").fetchall())


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot(path: Path) -> tuple:
    """Everything a refused split must leave alone: file bytes, registry rows, views."""
    c = duckdb.connect(str(path), read_only=True)
    try:
        registry = c.execute("SELECT * FROM splits ORDER BY name").fetchall()
        views = c.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()
        programs = c.execute("SELECT count(*), sum(hash(prefix)) FROM programs").fetchall()
    finally:
        c.close()
    return file_hash(path), registry, views, programs


def write_split(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.sql"
    path.write_text(body)
    return path


# ------------------------------------------------------------------------------------
# The SQL files
# ------------------------------------------------------------------------------------

def test_builtin_files_document_themselves():
    names = splits.builtin_names()
    assert set(names) == set(DENSITY) | set(SUPPORT)
    for name in names:
        text = splits.builtin_sql(name)
        assert text.startswith(f"-- {name}: "), f"{name}.sql must open with a header comment naming it"
        assert splits.kind_of(text) == ("density" if name.startswith("density_") else "support")
        root = sqlglot.parse_one(text, read="duckdb")
        docs = splits.column_docs(root)
        assert list(docs) == ["program_id", "role"]
        assert all(docs.values()), f"{name}.sql: every selected column needs a trailing comment, got {docs}"
        params = splits.params_of(root)
        assert {"seed", "n_train", "n_val", "n_test"} <= set(params), name
        assert (params["n_train"], params["n_val"], params["n_test"]) == (50_000, 2_000, 2_000)
        params_cte = next(c for c in root.find_all(sqlglot.exp.CTE) if c.alias == "params")
        assert all(p.comments for p in params_cte.this.expressions), f"{name}.sql: document each parameter"
        assert "SELECT 0 AS seed," in text  # one place to change the seed (used by the determinism test)
    for strategy in splits.STRATEGIES:
        text = (splits.SQL_DIR / "sampling" / f"{strategy}.sql").read_text()
        assert f"CREATE OR REPLACE MACRO sample_{strategy}(pool, n, seed) AS TABLE" in text
        assert "random()" not in text and "setseed" not in text


def test_density_splits_share_their_pools_from_one_place():
    """The pools and test roles live once, in sql/sampling/density_pools.sql; each density
    file is a short SELECT calling them, differing from the others only in its strategy."""
    shared = (splits.SQL_DIR / "sampling" / "density_pools.sql").read_text()
    assert "CREATE OR REPLACE MACRO density_pools(seed, train_pool_pct) AS TABLE" in shared
    assert "CREATE OR REPLACE MACRO density_test_roles(seed, n_test, train_pool_pct) AS TABLE" in shared
    bodies = {}
    for strategy in splits.STRATEGIES:
        text = splits.builtin_sql(f"density_{strategy}")
        body = text[text.index("-- kind: density"):]
        assert "FROM density_pools(" in body and "FROM density_test_roles(" in body
        assert "hash(" not in body, "the pools are drawn in density_pools, not copied into each file"
        assert len(body.splitlines()) <= 20
        bodies[strategy] = body.replace(f"sample_{strategy}(", "sample_STRATEGY(")
    assert len(set(bodies.values())) == 1, "density files differ only in their train/val strategy"


def test_build_registers_every_builtin(con):
    assert splits.registered_names(con) == sorted(splits.builtin_names())
    for row in splits.list_splits(con):
        text = splits.builtin_sql(row["name"])
        stored = con.execute("SELECT sql_text, sql_hash, source FROM splits WHERE name = ?", [row["name"]]).fetchone()
        assert stored == (text, hashlib.sha256(text.encode()).hexdigest(), "builtin")
        assert role_counts(con, f"split_{row['name']}") == row["roles"]


# ------------------------------------------------------------------------------------
# Built-in splits: their invariants
# ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DENSITY)
def test_density_split_invariants(con, name):
    view = f"split_{name}"
    # Sizes: the 3-op universe holds enough for every default size.
    assert role_counts(con, view) == {"train": 50_000, "val": 2_000, **{r: 2_000 for r in TEST_ROLES}}
    # Every program has one role, and only finite programs are drawn.
    assert con.execute(f"SELECT count(*) - count(DISTINCT program_id) FROM {view}").fetchone()[0] == 0
    assert con.execute(f"SELECT count(*) FROM {view} JOIN manifold USING (program_id) WHERE sem IS NULL").fetchone()[0] == 0
    # Pools are by function: no test function appears in train or val.
    shared = con.execute(f"""
        WITH s AS (SELECT role, function_id FROM {view} JOIN programs USING (program_id))
        SELECT count(DISTINCT function_id) FROM s
        WHERE role LIKE 'test%' AND function_id IN (SELECT function_id FROM s WHERE role IN ('train', 'val'))""").fetchone()[0]
    assert shared == 0
    # The same seed gives every density split the same test roles (the strategy x strategy table).
    other = f"split_{DENSITY[0]}"
    assert con.execute(f"""
        (SELECT * FROM {view} WHERE role LIKE 'test%' EXCEPT SELECT * FROM {other} WHERE role LIKE 'test%')
        UNION ALL
        (SELECT * FROM {other} WHERE role LIKE 'test%' EXCEPT SELECT * FROM {view} WHERE role LIKE 'test%')""").fetchall() == []


@pytest.mark.parametrize("name", SUPPORT)
def test_support_split_invariants(con, name):
    view = f"split_{name}"
    counts = role_counts(con, view)
    expected = {"train", "val", "test_id"} | ({"test_ood_syntactic", "test_ood_semantic", "test_ood_joint"} if name == "support_joint" else {"test_ood"})
    assert set(counts) == expected
    assert (counts["train"], counts["val"], counts["test_id"]) == (50_000, 2_000, 2_000)
    assert con.execute(f"SELECT count(*) - count(DISTINCT program_id) FROM {view}").fetchone()[0] == 0
    report = splits.check_split(con, name)
    assert report.train_overlap and not any(report.train_overlap.values()), "every test role is function-disjoint from train"
    # Radii: train / val / test_id inside the 0.8 quantile, the OOD roles outside it.
    syn_q, sem_q = con.execute("""
        SELECT quantile_cont(syn_radius, 0.8),
               (SELECT quantile_cont(sem_radius, 0.8) FROM (SELECT DISTINCT function_id, sem_radius FROM manifold WHERE sem IS NOT NULL))
        FROM manifold WHERE sem IS NOT NULL""").fetchone()
    side = dict(con.execute(f"""
        SELECT role, {{'syn_out': bool_or(syn_radius > {syn_q}), 'syn_all_out': bool_and(syn_radius > {syn_q}),
                      'sem_out': bool_or(sem_radius > {sem_q}), 'sem_all_out': bool_and(sem_radius > {sem_q})}}
        FROM {view} JOIN manifold USING (program_id) GROUP BY role""").fetchall())
    inner_uses = {"support_syntactic": ["syn"], "support_semantic": ["sem"], "support_joint": ["syn", "sem"]}[name]
    for role in ("train", "val", "test_id"):
        assert not any(side[role][f"{m}_out"] for m in inner_uses), f"{role} must lie in the inner region"
    if name == "support_joint":
        assert side["test_ood_syntactic"]["syn_all_out"] and not side["test_ood_syntactic"]["sem_out"]
        assert side["test_ood_semantic"]["sem_all_out"] and not side["test_ood_semantic"]["syn_out"]
        assert side["test_ood_joint"]["syn_all_out"] and side["test_ood_joint"]["sem_all_out"]
    else:
        assert side["test_ood"][f"{inner_uses[0]}_all_out"]
    if name in ("support_syntactic", "support_joint"):
        # Syntactic OOD keeps only programs whose function has no program in the inner region.
        role = "test_ood" if name == "support_syntactic" else "test_ood_syntactic"
        inner = f"syn_radius <= {syn_q}" + (f" AND sem_radius <= {sem_q}" if name == "support_joint" else "")
        familiar = con.execute(f"""
            SELECT count(*) FROM {view} s JOIN manifold m USING (program_id)
            WHERE s.role = '{role}' AND m.function_id IN (SELECT function_id FROM manifold WHERE sem IS NOT NULL AND {inner})""").fetchone()[0]
        assert familiar == 0
        stats = splits.split_stats(con, name)
        pool = next(r.pool for r in stats.roles if r.role == role)
        assert pool is not None and counts[role] == min(2_000, pool)


@pytest.mark.parametrize("name", DENSITY + SUPPORT)
def test_builtin_split_is_deterministic_per_seed(con, name):
    text = splits.builtin_sql(name)
    for seed, same in ((0, True), (1, False)):
        split = splits.parse_split(con, f"{name}_seed{seed}", text.replace("SELECT 0 AS seed,", f"SELECT {seed} AS seed,"))
        con.execute(f"CREATE OR REPLACE TEMP VIEW seeded AS {split.body}\n")
        a, b = rows(con, "seeded"), rows(con, f"split_{name}")
        if same:
            assert a == b, "the same seed must give the same split in every session"
        else:
            assert len(a) == len(b)  # same sizes, different draws (diverse keeps small functions whole, so some overlap)
            assert sum(a.get(k) == role for k, role in b.items()) < 0.8 * len(b)


def test_each_strategy_is_flatter_than_natural_on_its_own_manifold(con):
    natural = splits.split_stats(con, "density_natural")
    natural_role = {r.role: r for r in natural.roles}
    for strategy, grid in OWN_GRID.items():
        stats = {r.role: r for r in splits.split_stats(con, f"density_{strategy}").roles}
        for role in ("train", "val"):  # drawn with the split's own strategy
            assert stats[role].flatness[grid] > natural_role[role].flatness[grid] + 0.02, (strategy, role, grid)
        # The test roles of one split: test_<s> against test_natural, same-sized parts of one pool.
        assert stats[f"test_{strategy}"].flatness[grid] > stats["test_natural"].flatness[grid] + 0.02, (strategy, grid)


def test_sampling_macros_round_robin(con):
    """Each strategy draws the pool's cells (functions for diverse) in turns: the first
    k draws from a pool touching k cells hit k different cells."""
    con.execute("CREATE OR REPLACE TEMP VIEW half_pool AS SELECT * FROM manifold_cells WHERE program_id % 2 = 0")
    for strategy, column in (("syntactic", "syn_cell"), ("semantic", "sem_cell"), ("diverse", "function_id")):
        k = con.execute(f"SELECT count(DISTINCT {column}) FROM manifold_cells WHERE program_id % 2 = 0").fetchone()[0]
        drawn = con.execute(f"""
            SELECT count(*), count(DISTINCT c.{column}), min(s.draw), max(s.draw), bool_and(s.program_id % 2 = 0)
            FROM sample_{strategy}('half_pool', {k}, 7) s JOIN manifold_cells c USING (program_id)""").fetchone()
        assert drawn == (k, k, 1, k, True), strategy
    # natural: deterministic, a prefix property, only finite programs, clipped to the pool.
    first = con.execute("SELECT program_id FROM sample_natural('half_pool', 100, 3) ORDER BY draw").fetchall()
    assert first == con.execute("SELECT program_id FROM sample_natural('half_pool', 100, 3) ORDER BY draw").fetchall()
    assert first[:10] == con.execute("SELECT program_id FROM sample_natural('half_pool', 10, 3) ORDER BY draw").fetchall()
    finite_in_pool = con.execute("SELECT count(*) FROM manifold_cells WHERE program_id % 2 = 0").fetchone()[0]
    assert con.execute("SELECT count(*) FROM sample_natural('half_pool', 10000000, 3)").fetchone()[0] == finite_in_pool


# ------------------------------------------------------------------------------------
# `gensynth split`: add round trip, the stock shell, show, check, export, drop
# ------------------------------------------------------------------------------------

USER_SPLIT = """-- small_vs_big: train on programs with at most 2 operators, test on 3-operator ones.
-- kind: density
SELECT program_id,   -- a finite program
       CASE WHEN n_ops <= 2 THEN (CASE WHEN hash(program_id) % 10 = 0 THEN 'val' ELSE 'train' END)
            ELSE 'test_big' END AS role  -- train / val (small programs) or test_big
FROM manifold
WHERE sem IS NOT NULL AND (n_ops <= 2 OR program_id % 50 = 0)
"""


def test_add_round_trip_and_the_view_works_in_the_duckdb_shell(copy, tmp_path):
    from gensynth.cli.main import app

    runner = CliRunner()
    file = write_split(tmp_path, "small_vs_big", USER_SPLIT)
    result = runner.invoke(app, ["split", "add", str(file), "-w", str(copy)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "split_small_vs_big" in result.output

    c = duckdb.connect(str(copy), read_only=True)
    try:
        registry = c.execute("SELECT kind, sql_text, sql_hash, source, description FROM splits WHERE name = 'small_vs_big'").fetchone()
        assert registry[:4] == ("density", USER_SPLIT, hashlib.sha256(USER_SPLIT.encode()).hexdigest(), str(file))
        assert registry[4].startswith("small_vs_big: train on programs")
        expected = c.execute(f"SELECT role, count(*) FROM ({USER_SPLIT}) GROUP BY ALL ORDER BY ALL").fetchall()
        assert c.execute("SELECT role, count(*) FROM split_small_vs_big GROUP BY ALL ORDER BY ALL").fetchall() == expected
        builtin_counts = c.execute("SELECT role, count(*) FROM split_density_syntactic GROUP BY ALL ORDER BY ALL").fetchall()
    finally:
        c.close()

    # The stock DuckDB shell reads the user view and a built-in (macros, query_table) alike.
    exe = Path(sys.executable).with_name("duckdb")
    if not exe.exists():
        pytest.skip("duckdb CLI not installed (pip install duckdb-cli)")
    for view, want in (("split_small_vs_big", expected), ("split_density_syntactic", builtin_counts)):
        out = subprocess.run([str(exe), "-readonly", "-csv", "-noheader", str(copy), "-c",
                              f"SELECT role, count(*) FROM {view} GROUP BY ALL ORDER BY ALL"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert [tuple(line.split(",")) for line in out.stdout.split()] == [(r, str(n)) for r, n in want]

    for args in (["split", "list"], ["split", "show", "small_vs_big"], ["split", "check", "--all"]):
        result = runner.invoke(app, args + ["-w", str(copy)], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (args, result.output, result.exception)
        assert "small_vs_big" in result.output
    assert "flatness" in runner.invoke(app, ["split", "show", "small_vs_big", "-w", str(copy)], env={"COLUMNS": "200"}).output

    parquet = tmp_path / "out.parquet"
    result = runner.invoke(app, ["split", "export", "small_vs_big", "--parquet", str(parquet), "-w", str(copy)])
    assert result.exit_code == 0, result.output
    assert duckdb.sql(f"SELECT role, count(*) FROM read_parquet('{parquet}') GROUP BY ALL ORDER BY ALL").fetchall() == expected
    assert duckdb.sql(f"SELECT * FROM read_parquet('{parquet}') LIMIT 0").columns == \
        ["program_id", "role", "function_id", "n_ops", "depth", "prefix", "infix"]

    # A second add under the same name is refused unless --replace.
    with pytest.raises(GensynthError, match="already registered"):
        splits.add_split(copy, file)
    splits.add_split(copy, file, replace=True)

    result = runner.invoke(app, ["split", "drop", "small_vs_big", "-w", str(copy)])
    assert result.exit_code == 0, result.output
    c = duckdb.connect(str(copy), read_only=True)
    try:
        assert "small_vs_big" not in splits.registered_names(c)
        assert c.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'split_small_vs_big'").fetchone()[0] == 0
    finally:
        c.close()


def test_the_readme_example_split_registers(copy, tmp_path):
    """The split contract in the README is shown by an example that must keep working."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Splits\n"):readme.index("## Synthesizers")]
    example = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
    report = splits.add_split(copy, write_split(tmp_path, "small_vs_big", example))
    assert report.kind == "density" and report.roles == {"train": 2_000, "test_big": 1_000} and not report.notices


def test_clipped_sizes_register_with_a_notice(copy, tmp_path):
    text = splits.builtin_sql("density_natural").replace("50000 AS n_train", "10000000 AS n_train")
    report = splits.add_split(copy, write_split(tmp_path, "huge_train", text))
    assert report.roles["train"] < 10_000_000
    assert any(re.search(r"clipped to what the pools hold on this universe: train [\d,]+ of 10,000,000 \(n_train\)", n) for n in report.notices)
    c = duckdb.connect(str(copy), read_only=True)
    try:
        assert "n_train" in c.execute("SELECT notes FROM splits WHERE name = 'huge_train'").fetchone()[0]
    finally:
        c.close()


# ------------------------------------------------------------------------------------
# Refusals: every class, with its message, and the warehouse left exactly as it was
# ------------------------------------------------------------------------------------

REFUSALS = {
    # static: statements
    "second_statement": (KIND + "SELECT program_id, 'train' AS role FROM programs; DROP TABLE programs",
                         r"line 3, column \d+: a second statement `DROP TABLE programs`"),
    "attach": (KIND + "ATTACH '/tmp/other.duckdb' AS other", r"`ATTACH '/tmp/other.duckdb' AS other`: ATTACH statements are not allowed"),
    "detach": (KIND + "DETACH other", r"DETACH statements are not allowed"),
    "copy": (KIND + "COPY programs TO '/tmp/programs.csv'", r"COPY statements are not allowed"),
    "export": (KIND + "EXPORT DATABASE '/tmp/dump'", r"EXPORT statements are not allowed"),
    "pragma": (KIND + "PRAGMA version", r"PRAGMA statements are not allowed"),
    "set": (KIND + "SET threads = 1", r"SET statements are not allowed"),
    "install": (KIND + "INSTALL httpfs", r"INSTALL statements are not allowed"),
    "load": (KIND + "LOAD httpfs", r"LOAD statements are not allowed"),
    "call": (KIND + "CALL pragma_version()", r"CALL statements are not allowed"),
    "ddl": (KIND + "CREATE TABLE stolen AS SELECT * FROM programs", r"CREATE statements are not allowed"),
    "dml": (KIND + "DELETE FROM programs", r"DELETE statements are not allowed"),
    # static: files, network, unchecked strings, unstable functions
    "read_csv": (KIND + "SELECT 1 AS program_id, 'train' AS role FROM read_csv('/etc/passwd')",
                 r"line 3, column 46: `read_csv\('/etc/passwd'\)` reads files or the network"),
    "read_parquet": (KIND + "SELECT program_id, 'train' AS role FROM read_parquet('s3://bucket/x.parquet')", r"reads files or the network"),
    "glob": (KIND + "SELECT 1 AS program_id, 'train' AS role FROM glob('/etc/*')", r"`glob\('/etc/\*'\)` reads files or the network"),
    "file_string": (KIND + "SELECT 1 AS program_id, 'train' AS role FROM '/etc/passwd'", r"reads a file or URL"),
    "url": (KIND + "SELECT 1 AS program_id, 'train' AS role FROM 'https://example.org/x.csv'", r"reads a file or URL"),
    "query": (KIND + "SELECT program_id, 'train' AS role FROM query('SELECT * FROM programs')", r"takes SQL or a table name as a string"),
    "pool_path": (KIND + "SELECT program_id, 'train' AS role FROM sample_natural('/etc/passwd', 10, 0)", r"looks like a file or URL"),
    "random": (KIND + "SELECT program_id, 'train' AS role FROM manifold ORDER BY random() LIMIT 10", r"`random\(\)` returns a new value on every read"),
    "getvariable": (KIND + "SELECT program_id, 'train' AS role FROM manifold WHERE n_ops < getvariable('max')", r"reads a session variable"),
    # static: only the universe may be read (the reviewer's A6 cases), and nothing that depends on the machine or the moment
    "analysed_predictions_in": (KIND + "SELECT program_id, 'train' AS role FROM manifold WHERE program_id IN (SELECT program_id FROM analysed_predictions)",
                                r"`analysed_predictions`.*reads analysed_predictions, which changes as runs land"),
    "analysed_predictions_from": (KIND + "SELECT program_id, 'train' AS role FROM analysed_predictions",
                                  r"reads analysed_predictions, which changes as runs land"),
    "meta": (KIND + "SELECT program_id, 'train' AS role FROM manifold WHERE n_ops <= (SELECT value::INTEGER FROM meta WHERE key = 'max_ops')",
             r"reads meta, which a split may not read: it holds facts about the build"),
    "tasks_beyond": (KIND + "SELECT program_id, 'train' AS role FROM manifold WHERE program_id NOT IN (SELECT task_id FROM tasks_beyond)",
                     r"reads tasks_beyond, which a split may not read: it is redrawn by `gensynth beyond`"),
    "current_setting": (KIND + "SELECT program_id, 'train' AS role FROM manifold WHERE program_id % current_setting('threads')::INTEGER = 0",
                        r"`current_setting\('threads'\)` depends on the machine or the session"),
    "version": (KIND + "SELECT program_id, 'train' AS role FROM manifold WHERE version() LIKE 'v1%'",
                r"`version\(\)` depends on the machine or the session"),
    "now": (KIND + "SELECT program_id, 'train' AS role FROM manifold WHERE program_id % 7 = extract(dow FROM now())",
            r"`now\(\)` changes from one query to the next"),
    "current_timestamp": (KIND + "SELECT program_id, 'train' AS role FROM manifold WHERE epoch(current_timestamp) > 0",
                          r"`current_timestamp` changes from one query to the next"),
    # static: names
    "unknown_table": (KIND + "SELECT program_id, 'train' AS role FROM manifol",
                      r"line 3, column 41: `manifol`: no table or view 'manifol' in the warehouse — did you mean 'manifold'\?"),
    "unknown_column": (KIND + "SELECT program_id, 'train' AS role FROM manifold WHERE sem_radus < 1",
                       r"line 3, column 56: no column 'sem_radus' — did you mean 'sem_radius'\?"),
    "ambiguous_column": (KIND + "SELECT m.program_id, 'train' AS role FROM manifold m JOIN programs p ON m.program_id = p.program_id WHERE n_ops < 2",
                         r"line 3, column \d+: column 'n_ops' is ambiguous: it is in m\.n_ops \(manifold\) and p\.n_ops \(programs\); qualify it"),
    "column_of_another_relation": (KIND + "SELECT program_id, 'train' AS role FROM manifold WHERE outputs[1] > 0",
                                   r"no column 'outputs' in manifold; it is a column of functions.*: add `JOIN functions USING \(function_id\)`"),
    "column_of_another_relation_by_program": (KIND + "SELECT program_id, 'train' AS role FROM manifold_cells WHERE infix LIKE 'x%'",
                                              r"no column 'infix' in manifold_cells; it is a column of manifold \(also in programs\): add `JOIN manifold USING \(program_id\)`"),
    "unknown_pool": (KIND + "WITH train_pool AS (SELECT program_id FROM manifold)\nSELECT program_id, 'train' AS role FROM sample_natural('trian_pool', 10, 0)",
                     r"pool 'trian_pool' names no CTE, table or view — did you mean 'train_pool'\?"),
    "columns": (KIND + "SELECT program_id, 'train' AS role, n_ops FROM manifold", r"returns columns \(program_id, role, n_ops\); a split returns exactly two columns"),
    "no_kind": ("SELECT program_id, 'train' AS role FROM manifold", r"has no `-- kind:` line"),
    "bad_kind": ("-- kind: densty\nSELECT program_id, 'train' AS role FROM manifold", r"did you mean 'density'\?"),
    "syntax": (KIND + "SELECT program_id, 'train' AS role FROM manifold WHERE (", r"is not valid SQL: line 3"),
    # after running
    "two_roles": (KIND + "SELECT program_id, 'train' AS role FROM programs WHERE n_ops = 1 UNION ALL SELECT program_id, 'test_x' FROM programs WHERE n_ops = 1",
                  r"100 programs are in more than one role \(e\.g\. program \d+ in test_x and train\); a density split draws every role from disjoint programs"),
    "empty_train": (KIND + "SELECT program_id, 'test_all' AS role FROM programs WHERE n_ops = 1", r"train is empty"),
    "bad_role": (KIND + "SELECT program_id, CASE WHEN n_ops = 1 THEN 'train' ELSE 'holdout' END AS role FROM programs WHERE n_ops <= 2",
                 r"roles 'holdout' are not train, val or test_<name>"),
    "duplicates": (KIND + "SELECT program_id, 'train' AS role FROM programs WHERE n_ops = 1 UNION ALL SELECT program_id, 'train' FROM programs WHERE n_ops = 1",
                   r"role train lists 100 programs more than once"),
    "unknown_ids": (KIND + "SELECT r::INTEGER AS program_id, 'train' AS role FROM range(100000000, 100000010) t(r)", r"10 program_id values are not in programs"),
    "runtime_error": (KIND + "SELECT program_id, CAST('x' || program_id AS INTEGER)::VARCHAR AS role FROM programs",
                      r"failed when run: Conversion Error"),
    "support_overlap": ("-- kind: support\nSELECT program_id, CASE WHEN program_id % 2 = 0 THEN 'train' ELSE 'test_odd' END AS role FROM programs WHERE n_ops <= 2",
                        r"role test_odd shares [\d,]+ functions with train; a support split's test roles must be function-disjoint from train"),
}


def test_every_refusal_class_leaves_the_warehouse_unchanged(copy, tmp_path):
    before = snapshot(copy)
    for name, (sql, message) in REFUSALS.items():
        file = write_split(tmp_path, name, sql)
        with pytest.raises(GensynthError) as err:
            splits.add_split(copy, file)
        assert re.search(message, str(err.value)), f"{name}: {err.value}"
        assert re.search(r"\bFix\b|\bAdd\b", str(err.value)), f"{name}: the message must say how to fix it: {err.value}"
    assert snapshot(copy) == before


def test_split_inputs_are_the_universe_and_its_maps_and_the_readme_lists_them(con):
    """A6: split SQL may read an allow-list, derived in one place (gensynth/splits/inputs.py)
    from what `gensynth build` creates, minus results, tasks and meta; the README's split
    contract names every relation on it."""
    from gensynth.splits.inputs import split_inputs

    allowed = split_inputs()
    assert allowed == {"symbols", "grid", "programs", "functions", "pqgram_vocab", "pqgrams", "syn_basis", "syn_coords",
                       "sem_coords", "manifold", "manifold_cells"}
    built = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() UNION SELECT view_name FROM duckdb_views() "
                                       "WHERE NOT internal").fetchall()}
    assert allowed <= built
    refused = built - allowed - {v for v in built if v.startswith("split_")}
    assert {"meta", "splits", "tasks_beyond", "nearest_train", "analysed_predictions", "pass_at_k"} <= refused
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    contract = readme[readme.index("### The split contract"):]
    contract = contract[:contract.index("\n## ")]
    for name in allowed:
        assert f"`{name}`" in contract, name


def test_hand_made_views_and_macros_are_refused(copy, tmp_path):
    """A view or macro created by hand in the shell is no part of the universe gensynth built:
    it could read anything, so a split may not use it."""
    with duckdb.connect(str(copy)) as c:
        c.execute("CREATE VIEW my_programs AS SELECT * FROM programs")
        c.execute("CREATE MACRO my_pool() AS TABLE SELECT program_id FROM programs")
        c.execute("CREATE MACRO my_today() AS now()")
    before = snapshot(copy)
    for name, sql, message in (
            ("hand_view", "SELECT program_id, 'train' AS role FROM my_programs", r"reads my_programs, which a split may not read"),
            ("hand_table_macro", "SELECT program_id, 'train' AS role FROM my_pool()", r"`my_pool\(\)` is a macro made by hand in this warehouse"),
            ("hand_macro", "SELECT program_id, 'train' AS role FROM manifold WHERE my_today() IS NOT NULL",
             r"`my_today\(\)` is a macro made by hand in this warehouse")):
        with pytest.raises(GensynthError) as err:
            splits.add_split(copy, write_split(tmp_path, name, KIND + sql))
        assert re.search(message, str(err.value)), f"{name}: {err.value}"
    assert snapshot(copy) == before


def test_hostile_split_through_the_cli_is_refused_and_changes_nothing(copy, tmp_path):
    before = snapshot(copy)
    for body, fragment in (("SELECT program_id, 'train' AS role FROM programs; DROP TABLE programs", "DROP TABLE programs"),
                           ("SELECT 1 AS program_id, 'train' AS role FROM read_csv('/etc/passwd')", "read_csv('/etc/passwd')")):
        file = write_split(tmp_path, "evil", KIND + body)
        out = subprocess.run([sys.executable, "-m", "gensynth", "split", "add", str(file), "-w", str(copy)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 1
        assert out.stderr.startswith("Error: Split 'evil'") and fragment in out.stderr and "Traceback" not in out.stderr
    assert snapshot(copy) == before


def test_sandbox_blocks_files_even_if_validation_missed_it():
    """Defence in depth: `add`, `show` and `check` run with external access disabled."""
    c = duckdb.connect()
    try:
        splits.sandbox(c)
        with pytest.raises(duckdb.Error, match="disabled"):
            c.execute("SELECT * FROM read_csv('/etc/passwd')")
    finally:
        c.close()


def test_manifold_view_declares_sem_nullable_and_has_program_text(con):
    described = {r[0]: (r[1], r[2]) for r in con.execute("DESCRIBE manifold").fetchall()}
    assert described["sem"][1] == "YES" and described["sem_radius"][1] == "YES"  # NULL for non-finite functions
    assert con.execute("SELECT count(*) FROM manifold WHERE sem IS NULL").fetchone()[0] > 0
    assert described["prefix"] == ("VARCHAR", "NO") and described["infix"] == ("VARCHAR", "NO")
    split = splits.parse_split(con, "by_text", KIND + "SELECT program_id, 'train' AS role FROM manifold WHERE prefix LIKE '+ x %' AND infix <> ''")
    assert split.body


def test_check_all_and_names(con):
    for name in splits.registered_names(con):
        assert splits.check_split(con, name).roles["train"] > 0
    with pytest.raises(GensynthError, match="did you mean 'density_natural'"):
        splits.check_split(con, "density_natral")
    with pytest.raises(GensynthError, match="not a valid split name"):
        splits.check_name("Bad-Name")
