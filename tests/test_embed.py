"""The embed stage: pq-gram tables and macros, syntactic and semantic coordinates, the
manifold view, and the `gensynth embed` command's refusals."""

import hashlib
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from gensynth.pipeline import build_warehouse
from gensynth.manifolds.embed import EmbedConfig, project_programs
from gensynth.universe.grammar import load_grammar
from gensynth.manifolds.pqgrams import profile_tree
from pqgram_reference import tods_distance, vldb_distance
from gensynth.universe.syntax import parse_prefix

GENSYNTH = [sys.executable, "-m", "gensynth"]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("embed") / "w.duckdb"
    build_warehouse(load_grammar(), 3, path, quiet=True, embed=EmbedConfig())
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("embed_small") / "w.duckdb"
    build_warehouse(load_grammar(), 2, path, quiet=True, embed=EmbedConfig())
    return path


def rows(path: Path, sql: str):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def table_digest(path: Path) -> dict[str, str]:
    """A content hash of every table (row for row), to prove nothing changed."""
    out = {}
    with duckdb.connect(str(path), read_only=True) as con:
        for (name,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall():
            # Each row as text (a struct cast), so any column type hashes without Python conversions.
            out[name] = con.execute(f"SELECT md5(coalesce(string_agg(r::VARCHAR, '|' ORDER BY r::VARCHAR), '')) FROM (SELECT {name} AS r FROM {name})").fetchone()[0]
    return out


def test_pqgram_tables_match_reference(warehouse):
    g = load_grammar()
    ids = random.Random(0).sample(range(204_105), 50)
    for pid in ids:
        prefix = rows(warehouse, f"SELECT prefix FROM programs WHERE program_id = {pid}")[0][0]
        stored = rows(warehouse, f"SELECT v.stem, v.base, g.n FROM pqgrams g JOIN pqgram_vocab v USING (gram_id) WHERE program_id = {pid}")
        bag = {(tuple(s), tuple(b)): n for s, b, n in stored}
        assert bag == dict(profile_tree(parse_prefix(prefix, g), g))


def test_sql_macros_agree_with_python(warehouse):
    g = load_grammar()
    rng = random.Random(1)
    pairs = [(rng.randrange(204_105), rng.randrange(204_105)) for _ in range(40)] + [(7, 7), (0, 1)]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for a, b in pairs:
            pa, pb = (profile_tree(parse_prefix(con.execute(f"SELECT prefix FROM programs WHERE program_id = {i}").fetchone()[0], g), g) for i in (a, b))
            tods, vldb = con.execute(f"SELECT pqgram_distance({a}, {b}), pqgram_distance_vldb({a}, {b})").fetchone()
            assert tods == pytest.approx(tods_distance(pa, pb))
            assert vldb == pytest.approx(vldb_distance(pa, pb))


def test_sql_macros_work_on_columns(warehouse):
    """Review C4: the macros take columns (pairs from a table, joined to programs), set-based, with the reference's values."""
    g = load_grammar()
    rng = random.Random(2)
    pairs = [(rng.randrange(204_105), rng.randrange(204_105)) for _ in range(200)] + [(7, 7), (0, 1), (204_104, 3)]
    values = ", ".join(f"({i}, {a}, {b})" for i, (a, b) in enumerate(pairs))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        got = con.execute(f"""
            WITH pairs(i, x, y) AS (VALUES {values})
            SELECT a.prefix, b.prefix, pqgram_distance(a.program_id, b.program_id), pqgram_distance_vldb(a.program_id, b.program_id)
            FROM pairs JOIN programs AS a ON a.program_id = pairs.x JOIN programs AS b ON b.program_id = pairs.y
            ORDER BY pairs.i""").fetchall()
        constants = [con.execute(f"SELECT pqgram_distance({a}, {b}), pqgram_distance_vldb({a}, {b})").fetchone() for a, b in pairs[:20]]
        assert con.execute("SELECT pqgram_distance(NULL, 1)").fetchone()[0] is None
    assert len(got) == len(pairs)
    for prefix_a, prefix_b, tods, vldb in got:
        pa, pb = (profile_tree(parse_prefix(p, g), g) for p in (prefix_a, prefix_b))
        assert tods == pytest.approx(tods_distance(pa, pb), abs=1e-15) and vldb == pytest.approx(vldb_distance(pa, pb), abs=1e-15)
    assert [(t, v) for _, _, t, v in got[:20]] == constants  # the same values as with constant arguments


def test_coordinates_finite_and_radius_is_centred_norm(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        syn = np.array(con.execute("SELECT syn FROM syn_coords ORDER BY program_id").fetchnumpy()["syn"].tolist(), dtype=np.float64)
        syn_r = con.execute("SELECT syn_radius FROM syn_coords ORDER BY program_id").fetchnumpy()["syn_radius"]
        sem = np.array(con.execute("SELECT sem FROM sem_coords ORDER BY function_id").fetchnumpy()["sem"].tolist(), dtype=np.float64)
        sem_r = con.execute("SELECT sem_radius FROM sem_coords ORDER BY function_id").fetchnumpy()["sem_radius"]
        n_finite = con.execute("SELECT count(*) FROM functions WHERE finite").fetchone()[0]
    assert syn.shape == (204_105, 34) and np.isfinite(syn).all()  # DEFAULT_K_SYN 32, to the end of its group
    assert sem.shape == (n_finite, 16) and np.isfinite(sem).all()
    np.testing.assert_allclose(syn_r, np.linalg.norm(syn - syn.mean(axis=0), axis=1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sem_r, np.linalg.norm(sem - sem.mean(axis=0), axis=1), rtol=1e-4, atol=1e-4)


def _syn(con) -> np.ndarray:
    return np.array(con.execute("SELECT syn FROM syn_coords ORDER BY program_id").fetchnumpy()["syn"].tolist(), dtype=np.float64)


def test_syntactic_coordinates_are_centred_principal_components(warehouse):
    """Issue 10.1: mean ≈ 0, variance non-increasing from syn[1], shares of variance in meta."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        syn = _syn(con)
        centre = con.execute("SELECT centre FROM syn_basis ORDER BY gram_id").fetchnumpy()["centre"]
        explained = np.array(json.loads(con.execute("SELECT value FROM meta WHERE key = 'embed.syn_explained'").fetchone()[0]))
    var = syn.var(axis=0)
    assert np.abs(syn.mean(axis=0)).max() < 1e-4 * np.sqrt(var.max())
    assert (np.diff(var) <= 1e-6 * var[0]).all(), var
    # l2 rows have norm 1, so the total variance of the (fully sampled) rows is 1 − |centre|².
    np.testing.assert_allclose(explained, var / (1 - centre @ centre), rtol=1e-3)


def test_top_syntactic_direction_is_not_the_mean_profile(warehouse):
    """Uncentred, the top eigenvector was the mean pq-gram profile (|cos| = 1.000)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cols = con.execute("SELECT centre, basis FROM syn_basis ORDER BY gram_id").fetchnumpy()
    centre, basis = cols["centre"], np.array(cols["basis"].tolist())
    cos = np.abs(centre @ basis) / np.linalg.norm(centre) / np.linalg.norm(basis, axis=0)
    assert cos.max() < 0.1, cos


def test_stored_map_reproduces_stored_coordinates(warehouse):
    """The centre and basis in syn_basis place a program where syn_coords has it, from the stored tables and by project_programs."""
    g = load_grammar()
    ids = [0, 7, 105, 4_104, 99_999, 204_104]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        syn = _syn(con)[ids]
        basis_rows = con.execute("SELECT centre, basis FROM syn_basis ORDER BY gram_id").fetchnumpy()
        grams = con.execute("SELECT program_id, gram_id, n FROM pqgrams WHERE program_id IN (SELECT unnest($ids))", {"ids": ids}).fetchnumpy()
        trees = [parse_prefix(con.execute("SELECT prefix FROM programs WHERE program_id = ?", [i]).fetchone()[0], g) for i in ids]
        projected = project_programs(con, g, trees)
    centre, basis = basis_rows["centre"], np.array(basis_rows["basis"].tolist())
    w = np.zeros((len(ids), len(centre)))  # the stored counts, l2-weighted
    w[np.searchsorted(ids, grams["program_id"]), grams["gram_id"]] = grams["n"]
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    np.testing.assert_allclose((w - centre) @ basis, syn, atol=1e-5)
    np.testing.assert_allclose(projected, syn, atol=1e-5)


def test_project_programs_places_programs_beyond_the_universe(small):
    """A 3-operator program is not in a max-ops 2 universe; its grams outside the vocabulary still count in the l2 norm."""
    g = load_grammar()
    inside, beyond = parse_prefix("+ x y", g), parse_prefix("* + x y - 3 / y 2", g)
    with duckdb.connect(str(small), read_only=True) as con:
        stored = _syn(con)[con.execute("SELECT program_id FROM programs WHERE prefix = '+ x y'").fetchone()[0]]
        coords = project_programs(con, g, [inside, beyond])
        k = con.execute("SELECT value FROM meta WHERE key = 'embed.k_syn'").fetchone()[0]
    np.testing.assert_allclose(coords[0], stored, atol=1e-5)
    assert coords.shape == (2, int(k)) and np.isfinite(coords).all()


def test_default_k_syn_keeps_whole_groups_of_equal_eigenvalues():
    """The grammar's label symmetries make eigenvalues multiple; the default k never cuts a group."""
    from gensynth.manifolds.embed import DEFAULT_K_SYN, eigen_groups, fit_syntactic, weighted_matrix
    from gensynth.manifolds.pqgrams import compute_profiles
    from gensynth.universe.programs import enumerate_programs

    g = load_grammar()
    dag = enumerate_programs(g, 2)
    x = weighted_matrix(compute_profiles(g, dag), len(dag), "l2")
    groups = eigen_groups(fit_syntactic(x, 60, 0).explained)
    assert (3, 19) in groups and (31, 35) in groups  # syn[4..19] are 16 equal directions, syn[32..35] four
    assert fit_syntactic(x, DEFAULT_K_SYN, 0, whole_groups=True).basis.shape[1] == 35
    assert fit_syntactic(x, 16, 0, whole_groups=True).basis.shape[1] == 19
    assert fit_syntactic(x, 16, 0).basis.shape[1] == 16  # an explicit --k-syn is honoured (with a notice)


def test_manifold_view(warehouse):
    cols = rows(warehouse, "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'manifold' ORDER BY column_index")
    assert [c for c, _ in cols] == ["program_id", "function_id", "n_ops", "depth", "syn", "sem", "syn_radius", "sem_radius", "prefix", "infix"]
    assert dict(cols)["syn"] == "FLOAT[34]"
    n, n_sem, nonfinite_with_sem = rows(warehouse, """
        SELECT count(*), count(sem), count(*) FILTER (WHERE sem IS NOT NULL AND NOT f.finite)
        FROM manifold JOIN functions AS f USING (function_id)""")[0]
    finite_programs = rows(warehouse, "SELECT count(*) FROM programs JOIN functions USING (function_id) WHERE finite")[0][0]
    assert n == 204_105 and n_sem == finite_programs and nonfinite_with_sem == 0


def test_meta_records_parameters(warehouse):
    meta = dict(rows(warehouse, "SELECT key, value FROM meta"))
    for key in ("pqgram.p", "pqgram.q", "embed.k_syn", "embed.k_sem", "embed.seed", "embed.syn_weighting",
                "embed.syn_explained", "embed.sem_explained", "embed.sem_excluded_functions"):
        assert key in meta
    assert meta["pqgram.p"] == "2" and meta["pqgram.q"] == "3"


def test_embed_is_reproducible_and_parameters_apply(small, tmp_path):
    copy = tmp_path / "copy.duckdb"
    shutil.copy(small, copy)
    before = table_digest(copy)
    subprocess.run(GENSYNTH + ["embed", "-w", str(copy)], check=True, capture_output=True)
    after = table_digest(copy)
    for table in ("pqgrams", "pqgram_vocab", "syn_coords", "sem_coords"):
        assert after[table] == before[table], table
    subprocess.run(GENSYNTH + ["embed", "-w", str(copy), "--p", "3", "--q", "2", "--k-syn", "4", "--k-sem", "3"], check=True, capture_output=True)
    meta = dict(rows(copy, "SELECT key, value FROM meta"))
    assert meta["pqgram.p"] == "3" and meta["embed.k_syn"] == "4"
    assert rows(copy, "SELECT len(syn), len(sem) FROM manifold WHERE sem IS NOT NULL LIMIT 1")[0] == (4, 3)


@pytest.mark.parametrize("flags,message", [
    (["--p", "0"], "--p must be >= 1"),
    (["--q", "0"], "--q must be >= 1"),
    (["--k-syn", "100000"], "exceeds the rank available"),
    (["--k-sem", "65"], "exceeds the rank available"),
    (["--weighting", "bm25"], "--weighting must be one of"),
])
def test_bad_parameters_leave_warehouse_unchanged(small, tmp_path, flags, message):
    copy = tmp_path / "copy.duckdb"
    shutil.copy(small, copy)
    before = table_digest(copy)
    result = subprocess.run(GENSYNTH + ["embed", "-w", str(copy), *flags], capture_output=True, text=True)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert table_digest(copy) == before


def test_embed_without_programs_and_other_schema_version(tmp_path):
    path = tmp_path / "w.duckdb"
    build_warehouse(load_grammar(), 1, path, quiet=True, embed=None)
    with duckdb.connect(str(path)) as con:
        con.execute("DELETE FROM programs")
    before = table_digest(path)
    result = subprocess.run(GENSYNTH + ["embed", "-w", str(path)], capture_output=True, text=True)
    assert result.returncode != 0 and "no programs" in result.stderr
    assert table_digest(path) == before
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = subprocess.run(GENSYNTH + ["embed", "-w", str(path)], capture_output=True, text=True)
    assert result.returncode != 0 and "schema version 999" in result.stderr and "newer gensynth" in result.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
