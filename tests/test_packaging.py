"""Packaging: sql/ and sweeps/ ship inside the package (gensynth/sql, gensynth/sweeps).

The full check, a wheel in a fresh virtual environment building a warehouse outside the
repository, is in `.ci/run`; this fast test keeps pyproject.toml in step with the tree.
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_sql_folder_and_sweep_ships_in_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"gensynth.sql": "sql", "gensynth.sweeps": "sweeps"}
    packages, data = set(config["packages"]), config["package-data"]
    folders = {"gensynth.sql"} | {f"gensynth.sql.{d.name}" for d in (ROOT / "sql").iterdir() if d.is_dir() and any(d.glob("*.sql"))}
    assert folders <= packages, f"add to pyproject's packages and package-data: {sorted(folders - packages)}"
    for package in folders:
        assert data.get(package) == ["*.sql"], package
    assert not [p for p in (ROOT / "sql").rglob("*.sql") if p.parent.parent not in (ROOT, ROOT / "sql")], "sql/ is two levels deep at most"
    assert "gensynth.sweeps" in packages and data["gensynth.sweeps"] == ["*.toml"] and list((ROOT / "sweeps").glob("*.toml"))


def test_the_source_tree_finds_its_sql_and_sweeps():
    from gensynth.experiments.sweep import SWEEPS_DIR
    from gensynth.warehouse import SQL_DIR

    assert (SQL_DIR / "schema.sql").is_file() and (SQL_DIR / "splits" / "density_natural.sql").is_file()
    assert (SWEEPS_DIR / "density.toml").is_file()
