"""Shared fixtures: small warehouses of the default grammar, built once per test session.

The files are shared by every test that asks for them: treat them as read-only (copy
one with ``shutil.copy`` before changing it).
"""

from pathlib import Path

import pytest


def _build(tmp_path_factory, max_ops: int) -> Path:
    from gensynth.pipeline import build_warehouse
    from gensynth.universe.grammar import load_grammar

    path = tmp_path_factory.mktemp(f"warehouse_ops{max_ops}") / "gensynth.duckdb"
    build_warehouse(load_grammar(), max_ops, path, quiet=True)
    return path


@pytest.fixture(scope="session")
def warehouse_ops2(tmp_path_factory) -> Path:
    """A warehouse of the default grammar with max-ops 2 (4,105 programs). Read-only."""
    return _build(tmp_path_factory, 2)


@pytest.fixture(scope="session")
def warehouse_ops3(tmp_path_factory) -> Path:
    """A warehouse of the default grammar with max-ops 3 (204,105 programs). Read-only."""
    return _build(tmp_path_factory, 3)
