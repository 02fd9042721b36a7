"""The score figures of `gensynth report` (see gensynth.analysis.figures for the list).

* ``pass_at_1.png`` — pass@1 of every run on every role of its split with 95% Wilson
  intervals, one panel per split (``pass_by_role.sql``);
* ``prediction_diversity.png`` — pass@1 against function pass@1, and the share of answers
  that are one predicted function, with the warning threshold (``prediction_diversity.sql``);
* ``pass_by_size.png`` — pass@1 by the target's n_ops and depth on the split drawn, per run
  configuration (``pass_by_size.sql``);
* ``training_curves.png`` — training and validation curves from ``metrics`` (``training_curves.sql``);
* ``scaling.png`` — pass@1 against training FLOPs with intervals and the log-linear fit, one
  panel per split with runs at two or more compute levels (``scaling_points.sql``);
* ``proximity.png`` — distances to the nearest training program for one run (solved vs
  unsolved), and the AUC of every run apart (``solved_points.sql``, ``proximity_runs.sql``).

No function here opens the warehouse.
"""

from __future__ import annotations

from pathlib import Path

import textwrap

from gensynth.analysis.plotting import (CONFIG_PALETTE, SOLVED, UNSOLVED, config_colors, config_label, grid,
                                        placeholder, placeholder_figure, plt, role_colors, role_order, run_label, save)
from gensynth.analysis.report_data import TOP_SHARE, ReportData

DISTANCES = (("syntactic", "syn_nn_dist", "Syntactic manifold", "Euclidean distance in syn coordinates"),
             ("semantic", "sem_nn_dist", "Semantic manifold", "Euclidean distance in sem coordinates"),
             ("pqgram", "pqgram_nn_dist", "pq-gram distance", "normalised pq-gram distance (0 same, 1 disjoint)"))
NO_RUNS = "No finished runs yet.\nTrain one: `gensynth train --view split_NAME` (or `gensynth sweep support`)."


def _errorbars(ax, xs, rows, color, label=None, marker="o", size=5) -> None:
    """Points with their 95% Wilson interval (rows: pass_at_1, pass_at_1_lo, pass_at_1_hi)."""
    ys = [r["pass_at_1"] for r in rows]
    lo = [max(0.0, r["pass_at_1"] - (r["pass_at_1_lo"] if r["pass_at_1_lo"] is not None else r["pass_at_1"])) for r in rows]
    hi = [max(0.0, (r["pass_at_1_hi"] if r["pass_at_1_hi"] is not None else r["pass_at_1"]) - r["pass_at_1"]) for r in rows]
    ax.errorbar(xs, ys, yerr=[lo, hi], fmt=marker, color=color, ms=size, capsize=2.5, lw=1.1, label=label, zorder=3)


def _config_legend(fig, colors: dict[str, str], title: str) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", color=c, lw=0, ms=6) for c in colors.values()]
    fig.legend(handles, list(colors), title=title, loc="lower center", ncol=min(6, len(colors)), fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, 0.0))


def figure_pass_at_1(d: ReportData, path: Path) -> str | None:
    """pass@1 by role with 95% intervals, one panel per split, one marker per run."""
    rows = d.rows("pass_by_role")
    if not rows:
        placeholder_figure(path, "pass@1 by role", NO_RUNS)
        return "pass@1 by role: no finished training runs"
    views = list(dict.fromkeys(r["view"] for r in rows))
    colors = config_colors(rows)
    fig, axes = grid(len(views), w=6.4, h=4.6)
    for ax, view in zip(axes, views):
        mine = [r for r in rows if r["view"] == view]
        runs = list(dict.fromkeys(r["run_id"] for r in mine))
        roles = role_order({r["role"] for r in mine})
        width = 0.8 / max(1, len(runs))
        for k, run in enumerate(runs):
            pts = [r for r in mine if r["run_id"] == run]
            xs = [roles.index(r["role"]) - 0.4 + width * (k + 0.5) for r in pts]
            _errorbars(ax, xs, pts, colors[config_label(pts[0])], size=4)
        ax.set_xticks(range(len(roles)), roles, rotation=20 if len(roles) > 4 else 0, fontsize=9)
        for x in range(1, len(roles)):
            ax.axvline(x - 0.5, color="#dddddd", lw=0.8)
        top = max(r["pass_at_1_hi"] or r["pass_at_1"] for r in mine)
        ax.set_ylim(0, min(1.02, max(0.05, top * 1.12)))
        ax.set_ylabel("greedy pass@1 (95% Wilson interval)")
        ax.set_title(f"{view} ({len(runs)} run{'s' if len(runs) != 1 else ''})", fontsize=11)
        ax.grid(alpha=0.25, axis="y")
    _config_legend(fig, colors, "run configuration (seeds side by side)")
    fig.suptitle("pass@1 of every training run on every role of its own split, with 95% confidence intervals "
                 "(search runs: methods.png)", fontsize=13)
    fig.tight_layout(rect=(0, 0.08 if len(views) <= 3 else 0.05, 1, 1))
    save(fig, path, tight=False)
    return None


def figure_prediction_diversity(d: ReportData, path: Path) -> str | None:
    """pass@1 vs function pass@1 per run and test role; the top predicted function's share, thresholded."""
    rows = d.rows("prediction_diversity")
    if not rows:
        placeholder_figure(path, "Prediction diversity", NO_RUNS)
        return "prediction diversity: no finished training runs"
    fig, (ax, bx) = plt().subplots(1, 2, figsize=(16, 6.2), width_ratios=[1, 1.25])
    colors = role_colors({r["role"] for r in rows})
    for role in role_order({r["role"] for r in rows}):
        mine = [r for r in rows if r["role"] == role and r["function_pass_at_1"] is not None]
        ax.scatter([r["pass_at_1"] for r in mine], [r["function_pass_at_1"] for r in mine], s=30, c=colors[role],
                   label=f"{role} ({len(mine)} runs)", zorder=3, edgecolors="white", linewidths=0.5)
        bad = [r for r in mine if r["dominated"]]
        if bad:
            ax.scatter([r["pass_at_1"] for r in bad], [r["function_pass_at_1"] for r in bad], s=110, facecolors="none",
                       edgecolors="#d62728", linewidths=1.5, zorder=4)
    top = max([0.05] + [max(r["pass_at_1"], r["function_pass_at_1"] or 0) for r in rows])
    lim = min(1.02, top * 1.12)
    ax.plot([0, lim], [0, lim], color="#888888", ls="--", lw=1, label="equal")
    ax.set_xlim(0, lim)
    ax.set_ylim(0, lim)
    ax.set_xlabel("pass@1 (each test program counted once)")
    ax.set_ylabel("function pass@1 (each target function counted once)")
    ax.set_title("Below the line: common functions lift pass@1\n(red rings: one answer is "
                 f"> {TOP_SHARE:.0%} of the run's answers)", fontsize=11)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.25)
    ranked = sorted(rows, key=lambda r: -(r["top_prediction_share"] or 0))[:20]
    ys = range(len(ranked))
    shares = [r["top_prediction_share"] or 0 for r in ranked]
    bx.barh(list(ys), shares, color=["#d62728" if r["dominated"] else "#9bbbd9" for r in ranked])
    for y, r in zip(ys, ranked):
        if r["top_prediction"]:
            bx.text(shares[y] + 0.01, y, r["top_prediction"][:28], va="center", fontsize=7, color="#333333",
                    family="monospace")
    bx.set_yticks(list(ys), [f"{run_label(r)} · {r['role']}" for r in ranked], fontsize=7)
    bx.invert_yaxis()
    bx.axvline(TOP_SHARE, color="#d62728", ls="--", lw=1, label=f"warning threshold {TOP_SHARE:.0%}")
    bx.set_xlim(0, 1.25)
    bx.set_xlabel("share of the role's answers that are its most frequent predicted function")
    n_bad = sum(bool(r["dominated"]) for r in rows)
    bx.set_title(f"Most frequent answer per run and test role\n({n_bad} of {len(rows)} above the threshold"
                 + ("; the 20 highest shown" if len(rows) > 20 else "") + "; its program on the right)", fontsize=11)
    bx.legend(fontsize=8, loc="lower right")
    fig.suptitle("Can one answer fake pass@1? Function-level pass@1 and prediction diversity (test roles)", fontsize=13)
    save(fig, path)
    return None


def figure_pass_by_size(d: ReportData, path: Path) -> str | None:
    """pass@1 by the target's n_ops and depth per test role of the split drawn, per run configuration."""
    rows = d.rows("pass_by_size")
    if not rows:
        placeholder_figure(path, "pass@1 by program size",
                           f"No finished runs with test answers on {d.split or 'any split'} yet.\n"
                           "Train one: `gensynth train --view split_NAME`.")
        return "pass@1 by size: no finished runs on the split drawn"
    roles = role_order({r["role"] for r in rows})
    colors = config_colors(rows)
    fig, axes = plt().subplots(2, len(roles), figsize=(6.0 * len(roles), 8.6), squeeze=False)
    for col, role in enumerate(roles):
        for row, dim in enumerate(("n_ops", "depth")):
            ax = axes[row][col]
            mine = [r for r in rows if r["role"] == role and r["dimension"] == dim]
            labels = list(dict.fromkeys(config_label(r) for r in mine))
            for k, label in enumerate(labels):
                pts = [r for r in mine if config_label(r) == label]
                dodge = 0.08 * (k - (len(labels) - 1) / 2)
                runs = pts[0]["runs"]
                _errorbars(ax, [r["value"] + dodge for r in pts], pts, colors[label],
                           label=f"{label} ({runs} run{'s' if runs != 1 else ''})", marker="o-", size=4)
            values = sorted({r["value"] for r in mine})
            totals = {v: max(r["n"] // max(1, r["runs"]) for r in mine if r["value"] == v) for v in values}
            ax.set_xticks(values, [f"{v}\n(n≈{totals[v]:,})" for v in values], fontsize=8)
            ax.set_xlim(min(values) - 0.6, max(values) + 0.6)
            ax.set_ylim(0, min(1.02, max(0.05, max(r["pass_at_1_hi"] for r in mine) * 1.12)))
            ax.set_xlabel("operators in the target program" if dim == "n_ops" else "depth of the target's tree")
            ax.set_ylabel("greedy pass@1 (95% interval)")
            ax.set_title(f"{role} by {dim}", fontsize=11)
            ax.grid(alpha=0.25)
            ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"pass@1 by program size on {d.split} (seeds of a configuration pooled; n per run)", fontsize=13)
    save(fig, path)
    return None


CURVES = (("train/loss", "training loss (cross-entropy per token)"), ("val/loss", "validation loss"),
          ("val/seq_acc", "validation sequence accuracy\n(teacher-forced exact match, not pass@1)"),
          ("val/pass@1", "validation pass@1"))


def figure_training_curves(d: ReportData, path: Path) -> str | None:
    """Loss and validation curves of every finished transformer run, one colour per configuration."""
    rows = d.rows("training_curves")
    if not rows:
        placeholder_figure(path, "Training curves", "No finished training runs with logged metrics yet.\n"
                           "Train one: `gensynth train --view split_NAME`.")
        return "training curves: no finished training runs"
    names = [c for c in CURVES if any(r["name"] == c[0] for r in rows)]
    groups = [dict(r, split=r["view"].removeprefix("split_"), method="transformer") for r in rows]
    labels = {r["run_id"]: f"{r['split']} · {config_label(r)}" for r in groups}
    colors: dict[str, str] = {}
    for r in groups:
        colors.setdefault(labels[r["run_id"]], CONFIG_PALETTE[len(colors) % len(CONFIG_PALETTE)])
    fig, axes = grid(len(names), ncol_max=len(names), w=6.0, h=4.8)
    for ax, (name, ylabel) in zip(axes, names):
        seen = set()
        for run in dict.fromkeys(r["run_id"] for r in groups):
            pts = [(r["step"], r["value"]) for r in groups if r["run_id"] == run and r["name"] == name]
            if not pts:
                continue
            label = labels[run]
            ax.plot(*zip(*pts), color=colors[label], lw=1.3, alpha=0.85, label=None if label in seen else label)
            seen.add(label)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.set_title(name, fontsize=11)
        ax.grid(alpha=0.25)
    handles, legend_labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, legend_labels, loc="lower center", ncol=min(4, len(legend_labels)), fontsize=8, frameon=False)
    n_runs = len({r["run_id"] for r in rows})
    fig.suptitle(f"Training curves of {n_runs} finished run(s) from `metrics` (one colour per split and "
                 "configuration; seeds share it)", fontsize=13)
    fig.tight_layout(rect=(0, 0.04 + 0.03 * ((len(legend_labels) - 1) // 4), 1, 1))
    save(fig, path, tight=False)
    return None


def figure_scaling(d: ReportData, path: Path) -> str | None:
    """pass@1 vs FLOPs with 95% intervals and the fit, one panel per split with a compute range."""
    import numpy as np

    rows = d.rows("scaling_points")
    if not rows:
        placeholder_figure(path, "pass@1 vs training compute",
                           "No finished training runs with a test role yet.\nRun `gensynth sweep scaling`.")
        return "scaling: no finished training runs"
    views = list(dict.fromkeys(r["view"] for r in rows))
    ranged = [v for v in views if any(r["view"] == v and r["slope"] is not None for r in rows)]
    flat = [v for v in views if v not in ranged]
    if not ranged:
        placeholder_figure(path, "pass@1 vs training compute",
                           "No split has runs at two or more compute levels yet, so no log-linear fit.\n"
                           f"Runs at one level ({', '.join(flat)}) are in pass_at_1.png.\n"
                           "Run `gensynth sweep scaling` (sizes x steps on one split).", size=(11, 5.5))
        return "scaling: no split with runs at two or more compute levels"
    fig, axes = grid(len(ranged), w=max(7.0, 11.0 / len(ranged)) if len(ranged) < 3 else 7.0, h=5.6)
    for ax, view in zip(axes, ranged):
        mine = [r for r in rows if r["view"] == view]
        roles = role_order({r["role"] for r in mine})
        colors = role_colors(roles)
        for n_role, role in enumerate(roles):
            pts = [r for r in mine if r["role"] == role]
            x = np.array([p["training_flops"] for p in pts], dtype=float)
            nudge = 1.05 ** (n_role - (len(roles) - 1) / 2)  # roles share compute levels: side by side
            fit = pts[0]
            if fit["slope"] is not None:
                r2 = "n/a (pass@1 constant)" if fit["r2"] is None else f"{fit['r2']:.2f}"
                label = f"{role}: {fit['slope']:+.3f} per 10× FLOPs, R² {r2} (n={fit['n_fit']})"
                xs = np.logspace(np.log10(x.min()), np.log10(x.max()), 50)
                ax.plot(xs, fit["intercept"] + fit["slope"] * np.log10(xs), color=colors[role], lw=1.5, alpha=0.9)
            else:
                label = f"{role} (one compute level)"
            _errorbars(ax, x * nudge, pts, colors[role], label=label)
        ax.set_xscale("log")
        ax.set_ylim(0, min(1.02, max(0.05, max(r["pass_at_1_hi"] or r["pass_at_1"] for r in mine) * 1.12)))
        lo, hi = min(r["training_flops"] for r in mine), max(r["training_flops"] for r in mine)
        ax.set_xlim(lo / 2, hi * 2)
        span = max(r["flops_span"] or 1 for r in mine)
        ax.set_title(f"{view}: {len({r['run_id'] for r in mine})} runs over {span:.0f}× FLOPs", fontsize=11)
        ax.set_xlabel("training compute (FLOPs, analytic; log scale)")
        ax.set_ylabel("greedy pass@1 (95% interval)")
        ax.grid(alpha=0.25, which="both")
        ax.legend(fontsize=8, loc="upper left")
    note = (f"Not drawn: {len(flat)} split(s) with runs at one compute level only ({', '.join(flat)}); "
            "see pass_at_1.png." if flat else "")
    fig.suptitle("Scaling: pass@1 = a + b·log10(FLOPs), one fit per split and test role", fontsize=13)
    lines = textwrap.wrap(note, 130)
    if lines:
        fig.text(0.5, 0.01, "\n".join(lines), ha="center", va="bottom", fontsize=9, color="#555555")
    fig.tight_layout(rect=(0, 0.03 + 0.025 * len(lines) if lines else 0, 1, 1))
    save(fig, path, tight=False)
    return None


def _ecdf(ax, points: list[dict], col: str) -> bool:
    import numpy as np

    drawn = False
    for passed, label, color in ((True, "solved", SOLVED), (False, "unsolved", UNSOLVED)):
        vals = np.sort(np.array([p[col] for p in points if bool(p["passed"]) == passed and p[col] is not None], dtype=float))
        if len(vals) == 0:
            continue
        drawn = True
        med = float(np.median(vals))
        ax.step(np.concatenate([[vals[0]], vals]), np.arange(len(vals) + 1) / len(vals), where="post", color=color,
                lw=2, label=f"{label}: n={len(vals):,}, median {med:.3g}")
        ax.axvline(med, color=color, ls="--", lw=1)
    return drawn


def _auc_panel(ax, runs: list[dict], name: str, title: str, labels: list[str], first: bool) -> None:
    """Every run's AUC on one distance, one row per run (open: p >= 0.05)."""
    mine = {run_label(r): r for r in runs if r["distance"] == name}
    if not mine:
        placeholder(ax, f"{title}: AUC per run", "No run with solved and unsolved test programs\n"
                    "and distances yet (`gensynth proximity`).")
        return
    ys = [i for i, lab in enumerate(labels) if lab in mine]
    aucs = [mine[labels[i]]["auc"] for i in ys]
    sig = [mine[labels[i]]["p_value"] is not None and mine[labels[i]]["p_value"] < 0.05 for i in ys]
    ax.scatter(aucs, ys, s=40, c=["#1f77b4" if s else "white" for s in sig], edgecolors="#1f77b4", zorder=3)
    ax.axvline(0.5, color="#888888", ls="--", lw=1)
    solved = {lab: next(r["n_solved"] for r in runs if run_label(r) == lab) for lab in labels}
    ax.set_yticks(range(len(labels)), [f"{lab} · {solved[lab]:,} solved" for lab in labels] if first
                  else [""] * len(labels), fontsize=7)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel("AUC: P(an unsolved test program lies farther than a solved one)")
    ax.set_title(f"{title}: AUC per run ({len(mine)} runs; filled: p < 0.05)", fontsize=11)
    ax.grid(alpha=0.25)


def figure_proximity(d: ReportData, path: Path) -> str | None:
    """Top: one run's distance distributions, solved vs unsolved. Bottom: every run's AUC, apart."""
    featured = d.rows("featured_run")
    points = d.rows("solved_points")
    runs = d.rows("proximity_runs")
    labels = list(dict.fromkeys(run_label(r) for r in runs))
    fig, axes = plt().subplots(2, 3, figsize=(18, 6.0 + max(3.0, 0.32 * len(labels) + 1.5)),
                               height_ratios=[5.0, max(3.0, 0.32 * len(labels) + 1.5)])
    note = None
    for ax, (name, col, title, xlabel) in zip(axes[0], DISTANCES):
        if not points or not _ecdf(ax, points, col):
            msg = ("No finished run with test answers on the split drawn.\nTrain one (`gensynth sweep support`)."
                   if not points else "No distances computed yet.\nRun `gensynth proximity`.")
            placeholder(ax, title, msg)
            note = "proximity: " + msg.splitlines()[0]
            continue
        ax.set_title(f"{title}: run …{featured[0]['run_id'][-4:]}", fontsize=11)
        ax.set_xlabel(f"distance to nearest training program\n({xlabel})")
        ax.set_ylabel("share of test programs within this distance")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.25)
        ax.legend(fontsize=9, loc="lower right")
    for k, (ax, (name, _col, title, _x)) in enumerate(zip(axes[1], DISTANCES)):
        _auc_panel(ax, runs, name, title, labels, first=k == 0)
    n_runs = len({r["run_id"] for r in runs})
    answered = len({r["run_id"] for r in d.rows("every_run")})
    top = (f"top: the test programs of run {featured[0]['run_id']} ({featured[0]['size']}, {featured[0]['max_steps']} "
           f"steps) on {d.split}" if featured else "top: no run on the split drawn")
    bottom = (f"bottom: each of the {n_runs} run(s) with an AUC separately, not pooled"
              + (f" ({answered - n_runs} other finished run(s) solved none or all of their test programs, or have no "
                 "distances: no AUC)" if answered > n_runs else "") if n_runs else "bottom: no run has an AUC yet")
    fig.suptitle(f"Distance to the nearest training program, solved vs unsolved ({top}; dashed: medians);\n{bottom}",
                 fontsize=12)
    fig.tight_layout()
    if labels:
        fig.subplots_adjust(left=max(fig.subplotpars.left, 0.16))  # room for the run labels of the AUC rows
    save(fig, path, tight=False)
    return note
