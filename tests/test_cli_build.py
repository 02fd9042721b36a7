"""`gensynth build` and `gensynth shell` through the real command line.

Every bad input must give one `Error: ...` paragraph naming the problem and the fix (no
traceback), exit non-zero, and leave an existing warehouse byte-for-byte as it was.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from gensynth.cli import main as cli
from gensynth.universe.programs import MAX_PROGRAMS, count_programs
from gensynth.universe.grammar import load_grammar

GENSYNTH = shutil.which("gensynth") or str(Path(sys.executable).with_name("gensynth"))
GRAMMARS = Path(__file__).parent / "grammars"

OPERATOR = '[[operators]]\ntoken = "+"\narity = 2\nnumpy = "add"\n'
GRID_X = "[grid.x]\nstart = -1\nstop = 1\nnum = 3\n"


def gensynth(*args, cwd: Path, input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "GENSYNTH_WAREHOUSE"}
    return subprocess.run([GENSYNTH, *map(str, args)], capture_output=True, text=True, cwd=cwd, input=input,
                          env=base | (env or {}), timeout=300)


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def existing(warehouse_ops2, tmp_path) -> Path:
    """A private copy of a max-ops 2 warehouse that a failing command must not touch."""
    path = tmp_path / "w.duckdb"
    shutil.copy(warehouse_ops2, path)
    return path


def assert_clean_failure(result: subprocess.CompletedProcess, *expected: str) -> str:
    """Exit 1, one `Error:` message containing every expected part, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    message = result.stderr.strip()
    assert message.startswith("Error: "), message
    assert "Traceback" not in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def assert_untouched(path: Path, digest: str) -> None:
    assert file_hash(path) == digest
    assert [p.name for p in path.parent.iterdir() if ".building-" in p.name or p.name.endswith(".wal")] == []


BAD_GRAMMARS = {
    "not_toml": ("variables = [x\n", ["is not valid TOML", "Fix the syntax"]),
    "unknown_numpy": ('variables = ["x"]\n' + OPERATOR.replace('"add"', '"frobnicate"') + GRID_X,
                      ["numpy has no ufunc named 'frobnicate'", "use a numpy ufunc name"]),
    "arity": ('variables = ["x"]\n' + OPERATOR.replace("arity = 2", "arity = 3") + GRID_X,
              ["arity must be 1 or 2, got 3"]),
    "duplicate_token": ('variables = ["x"]\n' + OPERATOR + OPERATOR.replace('"add"', '"multiply"') + GRID_X,
                        ["token '+' is defined 2 times", "needs its own token"]),
    "no_leaves": ("variables = []\n" + OPERATOR, ["no leaves", "list at least one entry in `variables` or `constants`"]),
    "empty_grid": ('variables = ["x"]\n' + OPERATOR + "[grid.x]\nvalues = []\n",
                   ["grid.x is empty", "give num >= 1 or a non-empty `values` list"]),
}


@pytest.mark.parametrize("case", sorted(BAD_GRAMMARS))
def test_bad_grammar(existing, tmp_path, case):
    text, expected = BAD_GRAMMARS[case]
    grammar = tmp_path / f"{case}.toml"
    grammar.write_text(text)
    digest = file_hash(existing)
    result = gensynth("build", "--grammar", grammar, "--max-ops", 1, "--warehouse", existing, cwd=tmp_path)
    assert_clean_failure(result, str(grammar), *expected)
    assert_untouched(existing, digest)


def test_missing_grammar_file(existing, tmp_path):
    digest = file_hash(existing)
    result = gensynth("build", "--grammar", tmp_path / "nope.toml", "--warehouse", existing, cwd=tmp_path)
    assert_clean_failure(result, "nope.toml' does not exist", "--grammar", "leave the flag out")
    assert_untouched(existing, digest)


def test_negative_max_ops(existing, tmp_path):
    digest = file_hash(existing)
    result = gensynth("build", "--max-ops", -1, "--warehouse", existing, cwd=tmp_path)
    assert_clean_failure(result, "--max-ops must be 0 or more, got -1", "Use e.g. --max-ops 3")
    assert_untouched(existing, digest)


@pytest.mark.parametrize("max_ops", [5, 9])
def test_max_ops_over_the_cap(existing, tmp_path, max_ops):
    digest = file_hash(existing)
    result = gensynth("build", "--max-ops", max_ops, "--warehouse", existing, cwd=tmp_path)
    message = assert_clean_failure(result, f"--max-ops {max_ops} would enumerate", f"{MAX_PROGRAMS:,}", "Use --max-ops 4 or less")
    shown = [int(n.replace(",", "")) for n in re.findall(r"\d{1,3}(?:,\d{3})+", message)]
    assert max(shown) > MAX_PROGRAMS  # the count, computed before any work
    if max_ops == 5:
        assert f"{sum(count_programs(load_grammar(), 5)):,}" in message  # 683,404,105 exactly
    assert_untouched(existing, digest)


def test_warehouse_in_missing_directory(tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "w.duckdb"
    result = gensynth("build", "--max-ops", 1, "--warehouse", target, cwd=tmp_path)
    assert_clean_failure(result, "does not exist", "mkdir -p", "--warehouse")
    assert not (tmp_path / "no").exists()


def test_warehouse_path_is_a_directory(tmp_path):
    target = tmp_path / "adir"
    target.mkdir()
    result = gensynth("build", "--max-ops", 1, "--warehouse", target, cwd=tmp_path)
    assert_clean_failure(result, "it is a directory", "--warehouse")
    assert list(target.iterdir()) == [] and not [p for p in tmp_path.iterdir() if ".building-" in p.name]


def test_warehouse_parent_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("")
    result = gensynth("build", "--max-ops", 1, "--warehouse", tmp_path / "afile" / "w.duckdb", cwd=tmp_path)
    assert_clean_failure(result, "is a file, not a directory")


def test_warehouse_in_read_only_directory(tmp_path):
    # Tests run as root, for whom chmod does not stop writes; /proc/sys is a directory
    # that even root cannot create files in, so the check is genuinely exercised.
    if os.access("/proc/sys", os.W_OK) or not os.path.isdir("/proc/sys"):
        pytest.skip("no read-only directory available on this machine")
    result = gensynth("build", "--max-ops", 1, "--warehouse", "/proc/sys/w.duckdb", cwd=tmp_path)
    assert_clean_failure(result, "directory '/proc/sys' is not writable", "Choose a writable --warehouse path")


def test_read_only_directory_in_process(existing, tmp_path, monkeypatch, capsys):
    """The same check through the console-script entry point, with os.access saying 'read-only'."""
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == tmp_path else real_access(p, mode, **kw))
    monkeypatch.setattr(sys, "argv", ["gensynth", "build", "--max-ops", "1", "--warehouse", str(existing)])
    digest = file_hash(existing)
    with pytest.raises(SystemExit) as info:
        cli.run()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "is not writable" in err and "Traceback" not in err
    assert_untouched(existing, digest)


def test_not_a_duckdb_file(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("my notes, not a warehouse\n")
    digest = file_hash(path)
    result = gensynth("build", "--max-ops", 1, "--warehouse", path, cwd=tmp_path)
    assert_clean_failure(result, "exists but is not a DuckDB file", "choose another --warehouse path")
    assert_untouched(path, digest)


@pytest.fixture
def newer(existing) -> Path:
    con = duckdb.connect(str(existing))
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    return existing


def test_newer_schema_version(newer, tmp_path):
    digest = file_hash(newer)
    result = gensynth("build", "--max-ops", 1, "--warehouse", newer, cwd=tmp_path)
    assert_clean_failure(result, "schema version 999", "written by a newer gensynth", "upgrade gensynth")
    assert_untouched(newer, digest)
    result = gensynth("shell", "--warehouse", newer, cwd=tmp_path, input="SELECT 1;\n")
    assert_clean_failure(result, "schema version 999")
    assert_untouched(newer, digest)


# Successful builds stop after programs and functions (--skip-embed): this file tests the
# build stage; the manifold stages have their own tests.


def test_build_succeeds_and_replaces(existing, tmp_path):
    result = gensynth("build", "--skip-embed", "--max-ops", 1, "--warehouse", existing, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = result.stdout + result.stderr
    for row in ["programs", "105", "functions", "non-finite functions", "enumerate (s)", "total (s)"]:
        assert row in summary
    con = duckdb.connect(str(existing), read_only=True)
    assert con.execute("SELECT count(*) FROM programs").fetchone()[0] == 105
    con.close()


def test_build_uses_environment_warehouse(tmp_path):
    target = tmp_path / "from_env.duckdb"
    result = gensynth("build", "--skip-embed", "--max-ops", 0, cwd=tmp_path, env={"GENSYNTH_WAREHOUSE": str(target)})
    assert result.returncode == 0, result.stderr
    assert target.is_file() and not (tmp_path / "warehouse").exists()


def test_build_with_unary_grammar(tmp_path):
    target = tmp_path / "u.duckdb"
    result = gensynth("build", "--skip-embed", "--grammar", GRAMMARS / "unary.toml", "--max-ops", 2, "--warehouse", target,
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    con = duckdb.connect(str(target), read_only=True)
    assert con.execute("SELECT count(*) FROM programs").fetchone()[0] == 3 + 24 + 336
    con.close()


def test_shell_opens_the_warehouse(warehouse_ops2, tmp_path):
    result = gensynth("shell", "--warehouse", warehouse_ops2, cwd=tmp_path,
                      input="SELECT count(*) AS n FROM programs JOIN functions USING (function_id);\n")
    assert result.returncode == 0, result.stderr
    assert "4105" in result.stdout


def test_shell_without_warehouse(tmp_path):
    result = gensynth("shell", "--warehouse", tmp_path / "none.duckdb", cwd=tmp_path)
    assert_clean_failure(result, "No warehouse at", "gensynth build --warehouse")
