"""`gensynth report`: figures (PNG) and a Markdown report from the analysis views.

Every number comes from a query file of ``sql/report/`` over the views of
``sql/analysis/`` (``gensynth.analysis.report_data``); under each table the report names
the file and prints the SQL with its ``SET VARIABLE`` lines, so a reader can rerun it in
``gensynth shell``. The data is read first, in one go; the figures
(``gensynth.analysis.figures``) and the Markdown are then written with no warehouse
connection open, so runs that finish meanwhile are ingested.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from gensynth.analysis.figures import FIGURES, STRATEGY_ORDER, draw_figures
from gensynth.analysis.report_data import TOP_SHARE, ReportData, choose_split, gather  # noqa: F401 (choose_split: CLI)


@dataclass
class ReportSummary:
    """What `gensynth report` wrote."""

    out: Path
    markdown: Path
    figures: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # figures drawn as "no data yet" panels
    split: str | None = None


# ------------------------------------------------------------------------- helpers


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.2e}"
        return f"{v:.{digits}f}"
    return str(v)


def _md_table(headers: list[str], rows: list[list], empty: str) -> str:
    if not rows:
        return f"_{empty}_\n"
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    out += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def _query(d: ReportData, name: str) -> str:
    """The file a table came from and its text, ready to paste into `gensynth shell`."""
    q = d.q[name]
    return f"Query: [`{q.path}`](../../{q.path}) (rerun in `gensynth shell`):\n\n```sql\n{q.shell_text()}\n```\n"


# ------------------------------------------------------------------------ markdown


def _claims(d: ReportData) -> list[list]:
    """Paper claims next to the numbers this warehouse measures."""
    out = []
    if "density_claims" in d.q:
        by = {r["train_strategy"]: r for r in d.rows("density_claims")}
        dv, s = by.get("diverse"), by.get("semantic")
        out.append(["Diverse-trained models hold ~19% pass@1 steadily across density test sets",
                    f"diverse: mean {_fmt(dv['mean'])}, spread {_fmt(dv['spread'])}" if dv else "no density_diverse runs",
                    "density_matrix"])
        out.append(["Semantic-trained model peaks at 30.5% in-domain but is brittle under shift",
                    f"semantic: in-domain {_fmt(s['in_domain'])}, spread {_fmt(s['spread'])}" if s else "no density_semantic runs",
                    "density_matrix"])
    else:
        out.append(["Density: diverse steady ~19%; semantic peaks 30.5% in-domain, brittle", "no density runs yet", "density_matrix"])
    drops = {r["split"]: r for r in d.rows("ood_claims")}
    for split, claim in (("support_syntactic", "> 30% relative pass@1 drop on the syntactic support split"),
                         ("support_semantic", "almost no drop on the semantic support split")):
        r = drops.get(split)
        out.append([claim, f"mean relative drop {_fmt(r['rel'])} over {r['runs']} run(s)" if r else f"no {split} runs yet",
                    "ood_drop"])
    fits = d.rows("scaling_claims")
    out.append(["Log-linear gains in FLOPs for every split",
                "; ".join(f"{f['split']}/{f['role']}: {f['slope']:+.3f}/decade, R² {_fmt(f['r2'], 2)}" for f in fits)
                if fits else "no compute range yet (need runs at 2+ FLOPs levels)", "scaling"])
    prox = d.rows("proximity_auc")
    out.append(["Solved test programs lie closer to training data than unsolved ones",
                "; ".join(f"{p['distance']}: mean AUC {_fmt(p['auc'])} ({p['runs']} runs)" for p in prox if p["runs"])
                or "no proximity data yet", "proximity_summary"])
    return out


def _header(d: ReportData, summary: ReportSummary, warehouse: Path) -> list[str]:
    meta, status = d.meta, (d.rows("run_status") or [{}])[0]
    lines = ["# gensynth report", "",
             f"Warehouse `{warehouse}` · grammar {meta.get('grammar_name', '?')} · max ops {meta.get('max_ops', '?')} · "
             f"data version `{meta.get('data_version', '?')}` · {int(meta.get('n_programs', 0)):,} programs · "
             f"generated {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}", "",
             f"Runs: {status.get('finished', 0)} finished, {status.get('running', 0)} running or killed, "
             f"{status.get('failed', 0)} failed (only finished runs are counted)"
             + (f"; {status['other_universe']} run(s) of other universes (other data versions) are kept in the "
                f"warehouse but never analysed here" if status.get("other_universe") else "")
             + ". Every table below is a query of `sql/report/` over the views of `sql/analysis/`; the query under "
               "each reproduces it in `gensynth shell`.", ""]
    if summary.notes:
        lines += ["Missing data (drawn as explanatory panels): " + "; ".join(summary.notes) + ".", ""]
    collapse = d.rows("collapse")
    if collapse:
        lines += [f"**Warning: pass@1 dominated by one answer.** On these test roles more than {TOP_SHARE:.0%} of a "
                  "run's answers are one predicted function, so pass@1 mostly counts that one prediction; "
                  "function pass@1 weights each target function once.", "",
                  _md_table(["run", "view", "role", "n", "pass@1", "function pass@1", "top share", "top prediction"],
                            [[r["run_id"], r["view"], r["role"], r["n"], r["pass_at_1"], r["function_pass_at_1"],
                              r["top_prediction_share"], f"`{r['top_prediction']}`"] for r in collapse[:50]], ""),
                  _query(d, "collapse"), ""]
    lines += ["## Paper claims and what this warehouse measures", "",
              _md_table(["paper (arXiv 2604.27551)", "measured here", "view"], _claims(d), "nothing measured yet"), ""]
    return lines


def _density_section(d: ReportData) -> list[str]:
    lines = ["## 3. Density generalisation", "", "![density matrix](density_matrix.png)", ""]
    if "density_cells" not in d.q:
        return lines + ["_No finished runs on density_* splits yet (`gensynth sweep density`)._", ""]
    cfg, cells = d.q["density_cells"].variables, d.rows("density_cells")
    trains = [t for t in STRATEGY_ORDER if any(c["train_strategy"] == t for c in cells)]
    trains += sorted({c["train_strategy"] for c in cells} - set(trains))
    tests = [t for t in STRATEGY_ORDER if any(c["test_strategy"] == t for c in cells)]
    tests += sorted({c["test_strategy"] for c in cells} - set(tests))
    at = {(c["train_strategy"], c["test_strategy"]): c for c in cells}
    rows = []
    for t in trains:
        row = [f"density_{t}"]
        for u in tests:
            c = at.get((t, u))
            row.append("–" if c is None else _fmt(c["pass_at_1"]) + (f" ± {_fmt(c['pass_at_1_sd'])}" if c["pass_at_1_sd"] is not None else ""))
        mine = [c for c in cells if c["train_strategy"] == t]
        row += [mine[0]["row_spread"], max(c["n_runs"] for c in mine)]
        rows.append(row)
    lines += [f"{cfg['method']}, size {cfg['size']}, {cfg['max_steps']} steps; pass@1 mean ± sd over seeds.", "",
              _md_table(["trained on"] + [f"test_{u}" for u in tests] + ["row spread", "runs"], rows, ""),
              _query(d, "density_cells"), ""]
    groups = d.rows("density_runs")[0]["groups"]
    if groups > 1:
        lines += [f"{groups - 1} other method/size/steps group(s) in `density_matrix`; the figure shows the most complete.", ""]
    return lines


def _table(d: ReportData, name: str, headers: list[str], empty: str) -> list[str]:
    rows = [list(r.values()) for r in d.rows(name)]
    return [_md_table(headers, rows, empty), _query(d, name) if rows else "", ""]


def write_markdown(d: ReportData, out: Path, summary: ReportSummary, warehouse: Path) -> Path:
    """report.md from the gathered data (no warehouse connection)."""
    lines = _header(d, summary, warehouse)
    lines += ["## 1. The two manifolds", "", "![manifolds](manifolds.png)", "",
              f"Split drawn: `{summary.split}`." if summary.split else "No split drawn.", "",
              "## 2. Support generalisation: out-of-distribution drop", ""]
    lines += _table(d, "ood_table", ["split", "OOD role", "method", "size", "runs", "test_id pass@1", "OOD pass@1",
                                     "abs drop", "rel drop"],
                    "No finished runs on splits with a test_id role yet (`gensynth sweep support`).")
    lines += _density_section(d)
    lines += ["## 4. Scaling with compute", "", "![scaling](scaling.png)", ""]
    lines += _table(d, "scaling_fits", ["split", "role", "method", "runs", "FLOPs span (max/min)", "slope (per 10× FLOPs)",
                                        "intercept", "R²"], "No finished training runs yet (`gensynth sweep scaling`).")
    lines += ["## 5. Proximity: are solved programs closer to the training data?", "", "![proximity](proximity.png)", ""]
    lines += _table(d, "proximity_table", ["trained on", "distance", "runs", "median dist. solved", "median dist. unsolved",
                                           "mean AUC", "runs with p < 0.05 (solved closer)"],
                    "No proximity data yet (finished runs, then `gensynth proximity`).")
    lines += ["AUC is the probability that an unsolved test program lies farther from the training set than a solved one "
              "(Mann–Whitney U / n_solved·n_unsolved); 0.5 means no difference.", "",
              "## 6. Search methods", "", "![methods](methods.png)", ""]
    if any(r["method"] != "transformer" for r in d.rows("method_table")):
        lines += _table(d, "method_table", ["method", "split", "budget", "runs", "solve rate (test roles)", "wall time (s)"], "")
    else:
        lines += ["_No finished search runs yet (runs with config.method)._", ""]
    every = d.rows("every_run")
    lines += ["## 7. Every finished run (test roles)", "",
              "function pass@1 weights each target function once; top share is the share of answers that are the single "
              f"most frequent predicted function (above {TOP_SHARE:.0%}, one answer dominates pass@1); excluded counts test "
              "programs whose function the run trained on (evaluations on another split).", "",
              _md_table(["run", "split", "method", "size", "seed", "steps", "FLOPs", "role", "n", "pass@1", "95% lo",
                         "95% hi", "function pass@1", "top share", "excluded"],
                        [list(r.values()) for r in every[:300]], "No finished runs yet."),
              (f"_{len(every) - 300} more rows: run the query._\n" if len(every) > 300 else ""),
              _query(d, "every_run") if every else "", "",
              "## Reproduce", "", "```sh",
              "gensynth sweep density      # sweeps/density.toml",
              "gensynth sweep support      # sweeps/support.toml",
              "gensynth sweep scaling      # sweeps/scaling.toml",
              "gensynth proximity",
              f"gensynth report --out {out}" + (f" --split {summary.split.removeprefix('split_')}" if summary.split else ""),
              "```", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


# --------------------------------------------------------------------------- entry


def render_report(d: ReportData, out: Path, warehouse: Path) -> ReportSummary:
    """Write every figure and report.md into ``out`` from gathered data (no warehouse connection)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = ReportSummary(out=out, markdown=out / "report.md", split=d.split)
    summary.figures, summary.notes = draw_figures(d, out)
    write_markdown(d, out, summary, warehouse)
    return summary


def write_report(con: duckdb.DuckDBPyConnection, out: Path, warehouse: Path, split: str | None = None) -> ReportSummary:
    """Gather the data on ``con`` (analysis views installed), then write the report into ``out``."""
    return render_report(gather(con, split), out, warehouse)
