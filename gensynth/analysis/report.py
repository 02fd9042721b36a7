"""`gensynth report`: figures (PNG), ``report.md`` and a self-contained ``index.html``.

Every number comes from a query file of ``sql/report/`` over the views of
``sql/analysis/`` (``gensynth.analysis.report_data``); beside each table the report names
the file and prints the SQL with its ``SET VARIABLE`` lines, so a reader can rerun it in
``gensynth shell``, and each figure names the files its data came from. The data is read
first, in one go; the figures (``gensynth.analysis.figures``) and the two documents
(``gensynth.analysis.document``: the same blocks written as Markdown and as HTML) are then
written with no warehouse connection open, so runs that finish meanwhile are ingested.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from gensynth.analysis import document
from gensynth.analysis.document import Block, Code, Figure, Heading, Table, Text, fmt
from gensynth.analysis.figures import FIGURE_QUERIES, FIGURES, STRATEGY_ORDER, draw_figures
from gensynth.analysis.report_data import TOP_SHARE, ReportData, choose_split, gather  # noqa: F401 (choose_split: CLI)


@dataclass
class ReportSummary:
    """What `gensynth report` wrote."""

    out: Path
    markdown: Path
    html: Path | None = None  # index.html: the same report, self-contained
    figures: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # figures drawn as "no data yet" panels
    split: str | None = None


# ------------------------------------------------------------------------- helpers


def _fmt(v, digits: int = 3) -> str:
    return fmt(v, digits)


def _figure(d: ReportData, name: str, alt: str) -> Figure:
    return Figure(name, alt, [d.q[q] for q in FIGURE_QUERIES[name] if q in d.q])


def _table(d: ReportData, name: str, headers: list[str], empty: str) -> list[Block]:
    return [Table(headers, [list(r.values()) for r in d.rows(name)], empty, d.q.get(name))]


# ------------------------------------------------------------------------ sections


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


def _header(d: ReportData, summary: ReportSummary, warehouse: Path) -> list[Block]:
    meta, status = d.meta, (d.rows("run_status") or [{}])[0]
    blocks: list[Block] = [
        Heading(1, "gensynth report"),
        Text(f"Warehouse `{warehouse}` · grammar {meta.get('grammar_name', '?')} · max ops {meta.get('max_ops', '?')} · "
             f"data version `{meta.get('data_version', '?')}` · {int(meta.get('n_programs', 0)):,} programs · "
             f"generated {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}"),
        Text(f"Runs: {status.get('finished', 0)} finished, {status.get('running', 0)} running or killed, "
             f"{status.get('failed', 0)} failed (only finished runs are counted)"
             + (f"; {status['other_universe']} run(s) of other universes (other data versions) are kept in the "
                f"warehouse but never analysed here" if status.get("other_universe") else "")
             + ". Every table and figure below is a query of `sql/report/` over the views of `sql/analysis/`; the "
               "query beside each reproduces it in `gensynth shell`.")]
    if summary.notes:
        blocks.append(Text("Missing data (drawn as explanatory panels): " + "; ".join(summary.notes) + "."))
    collapse = d.rows("collapse")
    if collapse:
        blocks += [Text(f"**Warning: pass@1 dominated by one answer.** On these test roles more than {TOP_SHARE:.0%} "
                        "of a run's answers are one predicted function, so pass@1 mostly counts that one prediction; "
                        "function pass@1 weights each target function once (figure in section 2)."),
                   Table(["run", "view", "role", "n", "pass@1", "function pass@1", "top share", "top prediction"],
                         [[r["run_id"], r["view"], r["role"], r["n"], r["pass_at_1"], r["function_pass_at_1"],
                           r["top_prediction_share"], f"`{r['top_prediction']}`"] for r in collapse[:50]], "",
                         d.q["collapse"])]
    blocks += [Heading(2, "Paper claims and what this warehouse measures"),
               Table(["paper (arXiv 2604.27551)", "measured here", "view"], _claims(d), "nothing measured yet")]
    return blocks


def _density_section(d: ReportData) -> list[Block]:
    blocks: list[Block] = [Heading(2, "3. Density generalisation"), _figure(d, "density_matrix.png", "density matrix")]
    if "density_cells" not in d.q:
        return blocks + [Text("_No finished runs on density_* splits yet (`gensynth sweep density`)._")]
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
    blocks += [Text(f"{cfg['method']}, size {cfg['size']}, {cfg['max_steps']} steps; pass@1 mean ± sd over seeds."),
               Table(["trained on"] + [f"test_{u}" for u in tests] + ["row spread", "runs"], rows, "",
                     d.q["density_cells"], show_query_when_empty=True)]
    groups = d.rows("density_runs")[0]["groups"]
    if groups > 1:
        blocks.append(Text(f"{groups - 1} other method/size/steps group(s) in `density_matrix`; the figure shows the "
                           "most complete."))
    return blocks


def _maps(d: ReportData, summary: ReportSummary) -> list[Block]:
    featured = d.rows("featured_run")
    return [
        Heading(2, "1. The two manifolds"), _figure(d, "manifolds.png", "manifolds"),
        Text(f"Split drawn: `{summary.split}`." if summary.split else "No split drawn."),
        Text("Where one run solves its test programs: the finished training run on the split drawn with the highest "
             "test pass@1" + (f" (`{featured[0]['run_id']}`)." if featured else "; none yet.")),
        _figure(d, "solved_on_manifolds.png", "solved and unsolved test programs on both manifolds"),
    ]


def _scores(d: ReportData) -> list[Block]:
    return [
        Heading(3, "pass@1 by role, by program size, and what could fake it"),
        _figure(d, "pass_at_1.png", "pass@1 by role with 95% intervals"),
        Text("Each marker is a run (seeds side by side), with its 95% Wilson interval; every role of a run's own "
             "split."),
        _figure(d, "pass_by_size.png", "pass@1 by n_ops and depth"),
        _figure(d, "prediction_diversity.png", "function pass@1 and prediction diversity"),
        Text(f"Function pass@1 weights each target function once; a run whose most frequent answer exceeds "
             f"{TOP_SHARE:.0%} of a role's answers is flagged (its pass@1 mostly counts that one answer)."),
    ]


def _reproduce(out: Path, summary: ReportSummary) -> list[Block]:
    return [Heading(2, "Reproduce"),
            Code("\n".join(["gensynth sweep density      # sweeps/density.toml",
                            "gensynth sweep support      # sweeps/support.toml",
                            "gensynth sweep scaling      # sweeps/scaling.toml",
                            "gensynth proximity",
                            f"gensynth report --out {out}" + (f" --split {summary.split.removeprefix('split_')}"
                                                            if summary.split else "")]))]


def report_blocks(d: ReportData, out: Path, summary: ReportSummary, warehouse: Path) -> list[Block]:
    """The whole report, in order (no warehouse connection)."""
    blocks = _header(d, summary, warehouse) + _maps(d, summary)
    blocks += [Heading(2, "2. Support generalisation: out-of-distribution drop")]
    blocks += _table(d, "ood_table", ["split", "OOD role", "method", "size", "runs", "test_id pass@1", "OOD pass@1",
                                      "abs drop", "rel drop"],
                     "No finished runs on splits with a test_id role yet (`gensynth sweep support`).")
    blocks += _scores(d) + _density_section(d)
    blocks += [Heading(2, "4. Scaling with compute"), _figure(d, "scaling.png", "scaling")]
    blocks += _table(d, "scaling_fits", ["split", "role", "method", "runs", "FLOPs span (max/min)", "slope (per 10× FLOPs)",
                                         "intercept", "R²"], "No finished training runs yet (`gensynth sweep scaling`).")
    blocks += [Heading(3, "Training curves"), _figure(d, "training_curves.png", "training curves"),
               Text("From `metrics`: training loss per logged step, validation loss and sequence accuracy at each "
                    "validation.")]
    blocks += [Heading(2, "5. Proximity: are solved programs closer to the training data?"),
               _figure(d, "proximity.png", "proximity")]
    blocks += _table(d, "proximity_table", ["trained on", "distance", "runs", "median dist. solved",
                                            "median dist. unsolved", "mean AUC", "runs with p < 0.05 (solved closer)"],
                     "No proximity data yet (finished runs, then `gensynth proximity`).")
    blocks += [Text("AUC is the probability that an unsolved test program lies farther from the training set than a "
                    "solved one (Mann–Whitney U / n_solved·n_unsolved); 0.5 means no difference."),
               Heading(2, "6. Search methods"), _figure(d, "methods.png", "methods")]
    if any(r["method"] != "transformer" for r in d.rows("method_table")):
        blocks += _table(d, "method_table", ["method", "split", "budget", "runs", "solve rate (test roles)",
                                             "wall time (s)"], "")
    else:
        blocks.append(Text("_No finished search runs yet (runs with config.method)._"))
    every = d.rows("every_run")
    blocks += [Heading(2, "7. Every finished run (test roles)"),
               Text("function pass@1 weights each target function once; top share is the share of answers that are the "
                    f"single most frequent predicted function (above {TOP_SHARE:.0%}, one answer dominates pass@1); "
                    "excluded counts test programs whose function the run trained on (evaluations on another split)."),
               Table(["run", "split", "method", "size", "seed", "steps", "FLOPs", "role", "n", "pass@1", "95% lo",
                      "95% hi", "function pass@1", "top share", "excluded"],
                     [list(r.values()) for r in every[:300]], "No finished runs yet.", d.q.get("every_run"))]
    if len(every) > 300:
        blocks.append(Text(f"_{len(every) - 300} more rows: run the query._"))
    return blocks + _reproduce(out, summary)


def write_markdown(d: ReportData, out: Path, summary: ReportSummary, warehouse: Path) -> Path:
    """report.md and index.html from the gathered data (no warehouse connection); returns report.md's path."""
    blocks = report_blocks(d, out, summary, warehouse)
    path = out / "report.md"
    path.write_text(document.markdown(blocks, out))
    summary.html = out / "index.html"
    summary.html.write_text(document.html(blocks, out, f"gensynth report — {d.meta.get('grammar_name', '?')}, "
                                                        f"max ops {d.meta.get('max_ops', '?')}"))
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
