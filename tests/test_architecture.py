"""docs/architecture.md stays true: its warehouse contract against a freshly built warehouse,
its stage table against pipeline.BUILD_STAGES, and every file it names against the tree."""

from __future__ import annotations

import re

import duckdb
import pytest

import warehouse_contract as contract

ROOT = contract.ROOT


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """Relations and macros of a freshly built max-ops 2 warehouse (plus `tasks`)."""
    path = contract.build_reference(tmp_path_factory.mktemp("contract") / "w.duckdb")
    with duckdb.connect(str(path), read_only=True) as con:
        return contract.live_contract(con)


@pytest.fixture(scope="module")
def doc() -> str:
    return contract.DOC.read_text()


REGENERATE = "regenerate the section: python tests/warehouse_contract.py --write"


def test_every_table_and_view_is_documented_with_its_columns(live, doc):
    relations, _ = live
    documented, _ = contract.documented(doc)
    assert sorted(set(relations) - set(documented)) == [], f"missing from docs/architecture.md; {REGENERATE}"
    assert sorted(set(documented) - set(relations)) == [], f"documented but not in a built warehouse; {REGENERATE}"
    for name, rel in relations.items():
        assert documented[name] == [c for c, _ in rel.columns], f"columns of `{name}` differ; {REGENERATE}"


def test_the_contract_names_what_users_type(live):
    relations, macros = live
    assert {"splits", "manifold_cells", "syn_basis", "tasks_beyond", "tasks", "nearest_train", "evaluations",
            "schema_migrations", "manifold", contract.SPLIT_VIEW} <= set(relations)
    assert {"sample_natural", "sample_syntactic", "sample_semantic", "sample_diverse", "density_pools",
            "pqgram_distance"} <= set(macros)


def test_every_macro_is_documented(live, doc):
    _, macros = live
    _, documented = contract.documented(doc)
    assert documented == set(macros), REGENERATE


def test_every_column_says_what_it_means_and_every_relation_who_writes_it(live):
    """The SQL files document every column (the doc's meanings come from them) and WRITERS
    names the stage writing each table (analysis views: the analysis stage)."""
    relations, macros = live
    sources = contract.sql_sources()
    undocumented = [f"{name}.{c}" for name, rel in relations.items() for c, _ in rel.columns
                    if not sources.get(name) or not sources[name].columns.get(c)]
    assert undocumented == [], "add a comment after these columns in their SQL files"
    no_writer = [n for n in relations if n not in contract.WRITERS and not sources[n].file.startswith("sql/analysis/")]
    assert no_writer == [], "add these relations to WRITERS in tests/warehouse_contract.py"
    assert all(sources.get(m) and sources[m].summary for m in macros)


def test_the_stage_table_follows_build_stages(doc):
    from gensynth import pipeline

    names = [s.__name__ for s in pipeline.BUILD_STAGES]
    listed = re.findall(r"^\| \d+ \| `(\w+)` \|", doc, re.M)
    assert listed == names


def test_every_file_the_doc_names_exists(doc):
    paths = set(re.findall(r"`((?:gensynth|models|sql|tests|sweeps|benchmarks)/[\w./-]+)`", doc))
    assert len(paths) > 30
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert missing == []


def test_the_readme_points_at_the_architecture():
    readme = (ROOT / "README.md").read_text()
    assert "docs/architecture.md" in readme and "DESIGN.md" in readme


def test_reading_the_doc_back_sees_what_render_wrote():
    rel = contract.Relation("t", "table", [("a", "INTEGER"), ("b", "VARCHAR")])
    text = contract.render({"t": rel}, {"m": "m(x) → table"}, {"t": contract.Source("t", "table", "sql/t.sql", "T.")})
    assert contract.documented(text) == ({"t": ["a", "b"]}, {"m"})
    assert contract.documented(text.replace("| `b` | VARCHAR |  |\n", "")) == ({"t": ["a"]}, {"m"})
