"""Packaging: sql/ and sweeps/ ship inside the package (gensynth/sql, gensynth/sweeps).

The full check, a wheel in a fresh virtual environment building a warehouse outside the
repository, is in `.ci/run`; this fast test keeps pyproject.toml in step with the tree.
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_sql_file_and_sweep_ships_in_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"gensynth.sql": "sql", "gensynth.sweeps": "sweeps"}
    packages, data = set(config["packages"]), config["package-data"]
    assert {"gensynth.sql", "gensynth.sweeps"} <= packages
    # One recursive glob ships every folder of sql/, present and future (setuptools >= 62.3).
    assert data["gensynth.sql"] == ["*.sql", "**/*.sql"], "sql/ must ship whole: package-data gensynth.sql = ['*.sql', '**/*.sql']"
    assert list((ROOT / "sql").rglob("*.sql")) and not [p for p in (ROOT / "sql").rglob("*") if p.is_file() and p.suffix != ".sql"]
    assert data["gensynth.sweeps"] == ["*.toml"] and list((ROOT / "sweeps").glob("*.toml"))


def test_the_source_tree_finds_its_sql_and_sweeps():
    from gensynth.experiments.sweep import SWEEPS_DIR
    from gensynth.warehouse import SQL_DIR

    assert (SQL_DIR / "schema.sql").is_file() and (SQL_DIR / "splits" / "density_natural.sql").is_file()
    assert (SWEEPS_DIR / "density.toml").is_file()
