"""Evaluations of a run, kept side by side in its directory: evaluations add, never replace.

A run directory holds, per evaluated split view,

* ``evals/<view>/predictions.parquet`` + ``scores.json`` — the latest evaluation of that view
  (written by the training stage);
* ``evals/<view>/earlier/<eval_id>/`` — every earlier evaluation of it, moved there (never
  deleted) when the view is evaluated again; ``gensynth eval --replace`` deletes them.

Each evaluation is stamped with an ``eval_id`` and ``evaluated_at`` in its scores.json; on
ingestion its predictions carry the eval_id and it gets a row in the ``evaluations`` table
(``sql/migrations/0004_evaluations.sql``). Which evaluation the analysis counts is the rule
of ``sql/analysis/analysed_predictions.sql``.

An evaluation on another split than the run's own also records, per prediction, whether
the program (``train_program``) or its function (``train_function``) is in the run's own
training set (``mark_training_overlap``): the analysis views leave those out of test roles.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from pathlib import Path

import duckdb
import numpy as np

from gensynth.results.migrations import quote_path
from gensynth.warehouse import sql_text

EARLIER = "earlier"


def new_eval_id() -> str:
    """Sortable and unique: UTC time plus random hex."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:6]


def _read(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _write(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def stamp(eval_dir: Path, overlap: dict | None = None) -> dict:
    """Give an evaluation directory an eval_id and evaluated_at (once); record ``overlap``. Returns scores.json."""
    eval_dir = Path(eval_dir)
    scores = _read(eval_dir / "scores.json")
    changed = False
    if "eval_id" not in scores:
        mtime = (eval_dir / "predictions.parquet").stat().st_mtime
        scores["eval_id"] = new_eval_id()
        scores["evaluated_at"] = dt.datetime.fromtimestamp(mtime, dt.timezone.utc).isoformat()
        changed = True
    if overlap is not None:
        scores["training_overlap"] = overlap
        changed = True
    if changed:
        _write(eval_dir / "scores.json", scores)
    return scores


def evaluation_dirs(run_dir: Path) -> list[Path]:
    """Every evaluation of a run (current and earlier), oldest first within each view."""
    out = []
    for view_dir in sorted(p for p in (Path(run_dir) / "evals").glob("*") if p.is_dir()):
        earlier = sorted(p for p in (view_dir / EARLIER).glob("*") if (p / "predictions.parquet").is_file())
        current = [view_dir] if (view_dir / "predictions.parquet").is_file() and (view_dir / "scores.json").is_file() else []
        out += earlier + current
    return out


def keep_current(view_dir: Path) -> Path | None:
    """Move the view's current evaluation into ``earlier/<eval_id>/`` before a new one is written."""
    view_dir = Path(view_dir)
    if not (view_dir / "predictions.parquet").is_file() or not (view_dir / "scores.json").is_file():
        return None
    eval_id = stamp(view_dir)["eval_id"]
    target = view_dir / EARLIER / eval_id
    target.mkdir(parents=True, exist_ok=True)
    for name in ("predictions.parquet", "scores.json"):
        os.replace(view_dir / name, target / name)
    return target


def drop_earlier(view_dir: Path) -> int:
    """``eval --replace``, after the new evaluation is written: delete the view's earlier ones; returns how many."""
    earlier = Path(view_dir) / EARLIER
    n = len([p for p in earlier.glob("*") if p.is_dir()])
    shutil.rmtree(earlier, ignore_errors=True)
    return n


def mark_training_overlap(predictions: Path, own_snapshot: Path, eval_snapshot: Path) -> dict:
    """Add ``train_program`` / ``train_function`` to an evaluation's predictions; return the counts.

    ``own_snapshot`` is the run's training snapshot (its ``train`` role is what the model
    saw), ``eval_snapshot`` the snapshot of the split evaluated. A program's function is in
    the training set when some training program computes it: the model's input is the
    function's outputs, so it has seen that very input (with another program as target).
    """
    from gensynth.learning.snapshot import Snapshot

    own, ev = Snapshot.load(own_snapshot), Snapshot.load(eval_snapshot)
    tr = own.role_slice("train") if "train" in own.roles else slice(0, 0)
    train_pids = np.asarray(own.program_id[tr], dtype=np.int64)
    train_fids = np.unique(np.asarray(own.function_id)[np.asarray(own.function_index[tr])])
    ev_pids = np.asarray(ev.program_id, dtype=np.int64)
    ev_fids = np.asarray(ev.function_id)[np.asarray(ev.function_index)]
    order = np.argsort(ev_pids, kind="stable")
    con = duckdb.connect()
    try:
        f = quote_path(predictions)
        pids = con.execute(f"SELECT DISTINCT program_id FROM read_parquet('{f}') ORDER BY 1").fetchnumpy()["program_id"]
        pids = np.asarray(pids, dtype=np.int64)
        fid = ev_fids[order[np.searchsorted(ev_pids[order], pids)]]  # every evaluated program is in its snapshot
        flags = {"program_id": pids.astype(np.int32), "in_train": np.isin(pids, train_pids),
                 "fn_in_train": np.isin(fid, train_fids)}
        con.register("flags", flags)
        tmp = Path(predictions).with_name(f".{Path(predictions).name}.{os.getpid()}.tmp")
        con.execute(f"""COPY (SELECT p.*, g.in_train AS train_program, g.fn_in_train AS train_function
                              FROM (SELECT COLUMNS(c -> c NOT IN ('train_program', 'train_function'))
                                    FROM read_parquet('{f}')) AS p
                              JOIN flags AS g USING (program_id))
                        TO '{quote_path(tmp)}' (FORMAT parquet)""")
        os.replace(tmp, predictions)
        fn_of_eval = np.unique(fid[flags["fn_in_train"]])
        return {"evaluated_programs": int(len(pids)), "train_programs": int(flags["in_train"].sum()),
                "train_functions": int(flags["fn_in_train"].sum()),
                "evaluated_functions": int(len(np.unique(fid))), "distinct_train_functions": int(len(fn_of_eval))}
    finally:
        con.close()


def insert_evaluation(con: duckdb.DuckDBPyConnection, run_id: str, eval_dir: Path) -> None:
    """Insert one stamped evaluation (its predictions with eval_id, and its evaluations row) into ``con``."""
    eval_dir = Path(eval_dir)
    scores = _read(eval_dir / "scores.json")
    f = quote_path(eval_dir / "predictions.parquet")
    con.execute(f"INSERT INTO predictions BY NAME SELECT * REPLACE (? AS eval_id) FROM read_parquet('{f}')"
                if _has_column(con, f, "eval_id") else
                f"INSERT INTO predictions BY NAME SELECT *, ? AS eval_id FROM read_parquet('{f}')", [scores["eval_id"]])
    overlap = scores.get("training_overlap") or {}
    roles = {r: {"programs": int(sc.get("n_programs") or 0), "functions": int(sc.get("n_functions") or 0)}
             for r, sc in scores.get("scores", {}).items()}
    con.execute(sql_text("ingest/evaluation_row.sql"), {
        "run_id": run_id, "eval_id": scores["eval_id"], "view": scores.get("view") or eval_dir.name,
        "checkpoint": scores.get("checkpoint"), "step": scores.get("step"),
        "settings": json.dumps(scores.get("settings")), "evaluated_at": scores.get("evaluated_at"),
        "roles": json.dumps(roles), "train_programs": overlap.get("train_programs"),
        "train_functions": overlap.get("train_functions"), "scores": json.dumps(scores.get("scores"))})


def _has_column(con: duckdb.DuckDBPyConnection, parquet: str, column: str) -> bool:
    return column in {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{parquet}')").fetchall()}
