"""The 4-op study's claims table, from the exported Parquet files and claims.sql alone.

    python reports/study-4op/claims.py --results reports/study-4op/results \
        --beyond reports/study-4op --write reports/study-4op/README.md

Runs every statement of claims.sql in DuckDB (from the study directory, so the SQL's
relative paths resolve), judges each paper claim by the rule written next to it below, and
writes the claims table and the block tables between the markers of README.md (the rest
of the README is prose kept by hand). Prints the table too.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
START, END = "<!-- claims:start (written by claims.py) -->", "<!-- claims:end -->"


def run_claims(study_dir: Path) -> dict[str, list[dict]]:
    """{claim name: rows of its SELECT} for every `-- claim: NAME` block of claims.sql."""
    parts = re.split(r"(?m)^-- claim: (\w+)\s*$", (HERE / "claims.sql").read_text())
    cwd = os.getcwd()
    os.chdir(study_dir)  # the SQL's paths are relative to the study directory
    try:
        con = duckdb.connect()
        for stmt in statements(parts[0]):
            con.execute(stmt)
        out = {}
        for name, body in zip(parts[1::2], parts[2::2]):
            for stmt in statements(body):
                cur = con.execute(stmt)
                if stmt.upper().startswith("SELECT"):
                    cols = [d[0] for d in cur.description]
                    out[name] = [dict(zip(cols, row)) for row in cur.fetchall()]
        con.close()
        return out
    finally:
        os.chdir(cwd)


def statements(chunk: str) -> list[str]:
    """The SQL statements of a chunk (comment lines dropped; ';' ends a statement)."""
    body = "\n".join(line for line in chunk.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def pct(x, digits=1) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}%"


def ci(lo, hi, digits=1, rate=True) -> str:
    """A 95% interval in percent; a rate's interval is cut to [0, 100] (a t-interval over
    three seeds can reach past the ends; the cut is marked with its end's value)."""
    if lo is None or hi is None:
        return "–"
    if rate:
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    return f"[{100 * lo:.{digits}f}, {100 * hi:.{digits}f}]"


def num(x, digits=3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def gt(x, y) -> bool:
    """x > y, False when either is unknown (an interval end is None with one seed)."""
    return x is not None and y is not None and x > y


def judge(r: dict[str, list[dict]]) -> list[tuple[str, str, str, str, str]]:
    """(claim, paper, measured, verdict, why) rows. Each verdict's rule is stated in its `why`."""
    rows = []
    dens = {d["train_strategy"]: d for d in r.get("density_rows", [])}
    cells = {(c["train_strategy"], c["test_strategy"]): c for c in r.get("density_cells", [])}
    if dens and "diverse" in dens:
        dv = dens["diverse"]
        others = [d for d in dens.values() if d is not dv]
        smallest = all((dv["rel_spread"] or 0) <= (o["rel_spread"] or 0) for o in others)
        clear = all(gt(o["rel_spread_lo"], dv["rel_spread_hi"]) for o in others)
        verdict = "reproduced" if smallest and clear else "inconclusive" if smallest else "not reproduced"
        ranked = sorted(dens.values(), key=lambda d: d["rel_spread"] or 0)
        rows.append(("Diverse sampling is the most robust (steady across density test sets)",
                     "~19% pass@1, steady across the four test sets",
                     f"diverse row mean {pct(dv['row_mean'])} {ci(dv['row_mean_lo'], dv['row_mean_hi'])}; spread "
                     f"{pct(dv['spread'])} {ci(dv['spread_lo'], dv['spread_hi'])}, relative to its mean "
                     f"{pct(dv['rel_spread'])} {ci(dv['rel_spread_lo'], dv['rel_spread_hi'], rate=False)}; smallest "
                     f"relative spread: {ranked[0]['train_strategy']} ({pct(ranked[0]['rel_spread'])}), largest: "
                     f"{ranked[-1]['train_strategy']} ({pct(ranked[-1]['rel_spread'])})",
                     verdict,
                     "rule: on the spread relative to the row's mean (an absolute spread rewards rows that fail "
                     "everywhere); reproduced if diverse's is the smallest and its interval lies below every other "
                     "row's; inconclusive if smallest but the intervals overlap"))
    if "semantic" in dens and cells:
        sem, best = dens["semantic"], max(cells.values(), key=lambda c: c["pass_at_1"] or 0)
        in_domain = cells.get(("semantic", "semantic"))
        peak_point = best is in_domain
        peak_clear = in_domain is not None and all(gt(in_domain["lo"], c["hi"]) for c in cells.values() if c is not in_domain)
        median_rel = sorted(d["rel_spread"] or 0 for d in dens.values())[(len(dens) - 1) // 2]
        brittle = (sem["rel_spread"] or 0) > median_rel
        verdict = ("reproduced" if peak_clear and brittle else
                   "partly reproduced (point estimates)" if peak_point and brittle else
                   "partly reproduced" if (peak_point or brittle) else "not reproduced")
        rows.append(("The semantic-trained model peaks in-domain but is brittle",
                     "30.5% on semantic test, the matrix's best cell; large drop elsewhere",
                     f"semantic→semantic {pct(in_domain['pass_at_1']) if in_domain else '–'} "
                     f"{ci(in_domain['lo'], in_domain['hi']) if in_domain else ''}; best cell {best['train_strategy']}→"
                     f"{best['test_strategy']} {pct(best['pass_at_1'])}; semantic row's relative spread "
                     f"{pct(sem['rel_spread'])} (median row {pct(median_rel)})",
                     verdict,
                     "rule: peak = semantic→semantic is the matrix's highest cell, 'clear' when its interval lies above "
                     "every other cell's; brittle = the semantic row's relative spread is above the median row's; "
                     "clear peak and brittle = reproduced"))
    sup = {(s["split"], s["ood_role"]): s for s in r.get("support", [])}
    syn = sup.get(("support_syntactic", "test_ood"))
    if syn:
        verdict = ("reproduced" if gt(syn["rel_lo"], 0.30) else
                   "not reproduced" if gt(0.30, syn["rel_hi"]) else
                   "inconclusive (point estimate above 30%)" if gt(syn["rel_drop"], 0.30) else "inconclusive")
        rows.append(("A large drop on syntactically novel programs", ">30% relative drop (support_syntactic)",
                     f"test_id {pct(syn['id_pass_at_1'])} {ci(syn['id_lo'], syn['id_hi'])} → test_ood "
                     f"{pct(syn['ood_pass_at_1'])} {ci(syn['ood_lo'], syn['ood_hi'])}; relative drop {pct(syn['rel_drop'])} "
                     f"{ci(syn['rel_lo'], syn['rel_hi'], rate=False)}",
                     verdict, "rule: reproduced if the relative drop's interval lies above 30%, not reproduced if below"))
    sem = sup.get(("support_semantic", "test_ood"))
    if sem:
        verdict = ("reversed (better out of distribution)" if gt(0.0, sem["rel_hi"]) else
                   "reproduced" if gt(0.15, sem["rel_hi"]) and gt(sem["rel_lo"], -0.15) else
                   "not reproduced" if gt(sem["rel_lo"], 0.15) else "inconclusive")
        contrast = (f"; the syntactic split's relative drop is {pct(syn['rel_drop'] - sem['rel_drop'])} larger"
                    if syn and syn["rel_drop"] is not None and sem["rel_drop"] is not None else "")
        rows.append(("Almost no drop on semantically novel programs", "≈0 relative drop (support_semantic)",
                     f"test_id {pct(sem['id_pass_at_1'])} {ci(sem['id_lo'], sem['id_hi'])} → test_ood "
                     f"{pct(sem['ood_pass_at_1'])} {ci(sem['ood_lo'], sem['ood_hi'])}; relative drop {pct(sem['rel_drop'])} "
                     f"{ci(sem['rel_lo'], sem['rel_hi'], rate=False)}{contrast}",
                     verdict, "rule: 'almost none' = within ±15% (half the syntactic claim's 30%): reproduced if the "
                              "interval lies within it, not reproduced if above it, reversed if below 0, otherwise "
                              "inconclusive"))
    for f in r.get("scaling_fit", []):
        if f["role"] not in ("test_id", "test_ood", "test_diverse"):
            continue
        positive, negative = gt(f["slope_lo"], 0.0), gt(0.0, f["slope_hi"])
        log_better = gt(f["r2_log"], f["r2_linear"])
        saturates = gt(0.0, f["slope_change_hi"])
        verdict = ("reversed" if negative else "inconclusive" if not positive else
                   "partly reproduced (saturates)" if saturates else
                   "reproduced" if log_better else "partly reproduced (rises, but faster than log-linear: a linear fit in FLOPs fits better)")
        sl = lambda v: "–" if v is None else f"{100 * v:.1f}"
        rows.append((f"Log-linear gains with compute ({f['split_name']}, {f['role']}, {f['metric']})",
                     "pass@1 rises linearly in log10 FLOPs",
                     f"slope {sl(f['slope'])} points per 10× FLOPs [{sl(f['slope_lo'])}, {sl(f['slope_hi'])}], R² log "
                     f"{num(f['r2_log'], 2)} vs linear {num(f['r2_linear'], 2)}; {f['n_points']} points over "
                     f"{f['flops_span']:,.0f}× FLOPs; slope lower / upper half {sl(f['slope_lower_half'])} / "
                     f"{sl(f['slope_upper_half'])} (change [{sl(f['slope_change_lo'])}, {sl(f['slope_change_hi'])}])",
                     verdict, "rule: reproduced if the slope's interval lies above 0, the upper half is not significantly "
                              "flatter than the lower (else 'saturates') and the log fit's R² beats the linear one's"))
    for p in r.get("proximity_overall", []):
        verdict = ("reproduced" if p["splits_above_half"] == p["n_splits"] else
                   "reversed" if p["splits_below_half"] == p["n_splits"] else
                   "partly reproduced" if p["splits_above_half"] else "not reproduced")
        rows.append((f"Solved test programs lie near training data ({p['distance']} distance)",
                     "solved cases are closer to the training set",
                     f"AUC {num(p['auc'])} averaged over {p['n_splits']} splits (within test roles); "
                     f"{p['splits_above_half']} of {p['n_splits']} splits have their interval above 0.5 (per-split "
                     f"intervals from {num(p['worst_split_lo'])} to {num(p['best_split_hi'])})",
                     verdict, "rule: AUC = P(an unsolved program is farther than a solved one), within each test role; "
                              "reproduced if every split's interval lies above 0.5"))
    return rows


def table(rows: list[tuple], header: tuple) -> str:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(out)


def render(r: dict[str, list[dict]]) -> str:
    parts = ["## Claims", "", table(judge(r), ("claim", "the paper", "measured here (95% interval)", "verdict", "why")), ""]
    if r.get("density_cells"):
        parts += ["## Density matrix (pass@1, mean of 3 seeds [95% interval])", "", "SQL: `density_cells` in claims.sql.", ""]
        tests = sorted({c["test_strategy"] for c in r["density_cells"]})
        trains = sorted({c["train_strategy"] for c in r["density_cells"]})
        cells = {(c["train_strategy"], c["test_strategy"]): c for c in r["density_cells"]}
        rows = [(t, *[f"{pct(cells[(t, s)]['pass_at_1'])} {ci(cells[(t, s)]['lo'], cells[(t, s)]['hi'])}"
                      if (t, s) in cells else "–" for s in tests]) for t in trains]
        parts += [table(rows, ("train \\ test", *tests)), ""]
        parts += ["Row means and spreads (max − min over the four test roles, per seed; SQL `density_rows`):", "",
                  table([(d["train_strategy"], d["n_seeds"], f"{pct(d['row_mean'])} {ci(d['row_mean_lo'], d['row_mean_hi'])}",
                          f"{pct(d['spread'])} {ci(d['spread_lo'], d['spread_hi'])}",
                          f"{pct(d['rel_spread'])} {ci(d['rel_spread_lo'], d['rel_spread_hi'], rate=False)}", d["usual_best_role"])
                         for d in r["density_rows"]], ("train strategy", "seeds", "row mean", "spread", "spread / row mean", "usual best role")), ""]
    if r.get("support"):
        parts += ["## Support (SQL `support`)", "",
                  table([(s["split"], s["ood_role"], s["n_seeds"], f"{pct(s['id_pass_at_1'])} {ci(s['id_lo'], s['id_hi'])}",
                          f"{pct(s['ood_pass_at_1'])} {ci(s['ood_lo'], s['ood_hi'])}", pct(s["abs_drop"]),
                          f"{pct(s['rel_drop'])} {ci(s['rel_lo'], s['rel_hi'], rate=False)}") for s in r["support"]],
                        ("split", "ood role", "seeds", "test_id", "ood", "absolute drop", "relative drop")), ""]
    if r.get("scaling_fit"):
        parts += ["## Scaling (SQL `scaling_fit`)", "",
                  table([(f["split_name"], f["role"], f["metric"], f["n_points"], f"{f['flops_span']:,.0f}×",
                          f"{num(100 * f['slope'], 2)} [{num(f['slope_lo'] and 100 * f['slope_lo'], 2)}, {num(f['slope_hi'] and 100 * f['slope_hi'], 2)}]",
                          num(f["r2_log"], 2), num(f["r2_linear"], 2),
                          f"{num(f['slope_lower_half'] and 100 * f['slope_lower_half'], 2)} / {num(f['slope_upper_half'] and 100 * f['slope_upper_half'], 2)}",
                          pct(f["best_pass_at_1"])) for f in r["scaling_fit"]],
                        ("split", "role", "metric", "points", "FLOPs span", "slope (points per 10×) [95%]", "R² log", "R² linear",
                         "slope lower / upper half", "best pass@1")), ""]
    if r.get("proximity"):
        parts += ["## Proximity (SQL `proximity`: AUC within each test role, averaged per run, then over seeds)", "",
                  table([(p["split_name"], p["distance"], p["n_runs"], f"{num(p['auc'])} [{num(p['auc_lo'])}, {num(p['auc_hi'])}]",
                          f"{p['n_solved']:,} / {p['n_unsolved']:,}") for p in r["proximity"]],
                        ("split", "distance", "runs", "AUC [95%]", "solved / unsolved programs")), ""]
    if r.get("search"):
        parts += ["## Search and hybrid (SQL `search`, `transformer_same_roles`)", "",
                  "On support_syntactic's test roles (ops 0 = the role's own programs) and beyond the universe "
                  "(ops 5-8: drawn tasks of exactly that many operators). Wilson intervals over the tasks.", "",
                  table([(s["method"], s["role"], s["ops"] or "≤ 4", s["n"], f"{pct(s['pass_at_1'])} {ci(s['pass_at_1_lo'], s['pass_at_1_hi'])}",
                          f"{s['wall_time_s']:.0f}" if s["wall_time_s"] is not None else "–") for s in r["search"]],
                        ("method", "role", "operators", "tasks", "solved [95%]", "wall s")), ""]
        if r.get("transformer_same_roles"):
            parts += ["The parent transformers (lines micro, 3 seeds) on the same roles: " + "; ".join(
                f"{t['role']} {pct(t['pass_at_1'])} {ci(t['lo'], t['hi'])}" for t in r["transformer_same_roles"]) + ".", ""]
    if r.get("diversity"):
        parts += ["## Per-function pass@1 and prediction diversity (SQL `diversity`)", "",
                  table([(d["split_name"], d["role"], f"{d['programs']:,.0f}", f"{d['functions']:,.0f}", pct(d["pass_at_1"]),
                          pct(d["function_pass_at_1"]), num(d["max_top_share"], 2)) for d in r["diversity"]],
                        ("split", "role", "programs", "functions", "pass@1", "per-function pass@1", "max top-prediction share")), ""]
    return "\n".join(parts)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results", help="the `gensynth runs export` directory")
    ap.add_argument("--beyond", type=Path, default=HERE, help="the directory holding beyond_runs.csv")
    ap.add_argument("--write", type=Path, default=None, help="README.md to write the tables into (between the markers)")
    a = ap.parse_args(argv)
    study = Path(a.results).resolve().parent
    if Path(a.results).name != "results":
        raise SystemExit(f"claims.sql reads <study>/results/: name the export directory 'results' (got {a.results})")
    if Path(a.beyond).resolve() != study:
        raise SystemExit(f"claims.sql reads results/ and beyond_runs.csv from one directory; got {a.results} and {a.beyond}")
    if not (study / "beyond_runs.csv").exists():
        (study / "beyond_runs.csv").write_text("")
    text = render(run_claims(study))
    print(text)
    if a.write:
        readme = Path(a.write)
        old = readme.read_text() if readme.exists() else f"# The 4-op study\n\n{START}\n{END}\n"
        if START not in old:
            old += f"\n{START}\n{END}\n"
        head, rest = old.split(START, 1)
        tail = rest.split(END, 1)[1] if END in rest else ""
        readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")


if __name__ == "__main__":
    main()
