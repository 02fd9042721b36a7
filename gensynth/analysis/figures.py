"""The figures of `gensynth report`, drawn from its gathered data (gensynth.analysis.report_data).

Maps and search (this module):

* ``manifolds.png`` — both manifolds (first two coordinates), programs coloured by role in
  one split, axes fitted to where the programs are (``manifold_limits.sql``);
* ``solved_on_manifolds.png`` — one run's test programs, solved and unsolved, on both
  manifolds over the split's training programs;
* ``density_matrix.png`` — train strategy × test strategy pass@1 with each row's spread;
* ``methods.png`` — solve rate against budget for search methods.

Scores (gensynth.analysis.score_figures): ``pass_at_1.png``, ``prediction_diversity.png``,
``pass_by_size.png``, ``training_curves.png``, ``scaling.png``, ``proximity.png``.

Every figure's data is the rows of one or more files of ``sql/report/`` (``FIGURE_QUERIES``
names them; the report prints them under each figure). Every figure file is written even
when its data is missing: the panel then says what is missing and which command produces
it. No function here opens the warehouse.
"""

from __future__ import annotations

import math
from pathlib import Path

from gensynth.analysis import score_figures
from gensynth.analysis.plotting import (SOLVED, TEST_PALETTE, UNSOLVED, below, padded, placeholder, plt, role_colors,
                                        role_order, save)
from gensynth.analysis.report_data import MAX_POINTS, ReportData

STRATEGY_ORDER = ("natural", "syntactic", "semantic", "diverse")

# figure -> the sql/report/ files its data comes from, in report order
FIGURE_QUERIES: dict[str, tuple[str, ...]] = {
    "manifolds.png": ("manifold_points", "manifold_roles", "manifold_limits"),
    "solved_on_manifolds.png": ("featured_run", "solved_points", "manifold_points", "manifold_limits"),
    "pass_at_1.png": ("pass_by_role",),
    "prediction_diversity.png": ("prediction_diversity",),
    "pass_by_size.png": ("pass_by_size",),
    "training_curves.png": ("training_curves",),
    "density_matrix.png": ("density_cells", "density_runs"),
    "scaling.png": ("scaling_points",),
    "proximity.png": ("featured_run", "solved_points", "proximity_runs"),
    "methods.png": ("method_runs", "method_costs"),
}
FIGURES = tuple(FIGURE_QUERIES)


def draw_figures(d: ReportData, out: Path) -> tuple[dict[str, Path], list[str]]:
    """Write every figure into ``out``; returns (name -> path, notes for figures drawn as 'no data' panels)."""
    makers = {"manifolds.png": figure_manifolds, "solved_on_manifolds.png": figure_solved,
              "pass_at_1.png": score_figures.figure_pass_at_1,
              "prediction_diversity.png": score_figures.figure_prediction_diversity,
              "pass_by_size.png": score_figures.figure_pass_by_size,
              "training_curves.png": score_figures.figure_training_curves,
              "density_matrix.png": figure_density, "scaling.png": score_figures.figure_scaling,
              "proximity.png": score_figures.figure_proximity, "methods.png": figure_methods}
    paths, notes = {}, []
    for name in FIGURES:
        note = makers[name](d, out / name)
        paths[name] = out / name
        if note:
            notes.append(note)
    return paths, notes


# ----------------------------------------------------------------------- the maps


def _limits(d: ReportData) -> dict[str, dict]:
    return {r["manifold"]: r for r in d.rows("manifold_limits")}


def fit_axes(ax, limits: dict | None) -> str | None:
    """Axes at the 0.5%/99.5% quantiles of the programs (padded); a note on what lies outside."""
    if not limits or limits.get("x_lo") is None:
        return None
    ax.set_xlim(*padded(limits["x_lo"], limits["x_hi"]))
    ax.set_ylim(*padded(limits["y_lo"], limits["y_hi"]))
    n_out = int(limits.get("n_outside") or 0)
    if not n_out:
        return None
    return (f"axes: the 0.5–99.5% quantiles of all {int(limits['n']):,} programs' coordinates; "
            f"{n_out:,} programs lie outside and are not shown")


def _points_by_role(d: ReportData) -> dict[str, list]:
    by_role: dict[str, list] = {}
    for r in d.rows("manifold_points"):
        by_role.setdefault(r["role"], []).append((r["s1"], r["s2"], r["c1"], r["c2"]))
    return by_role


PANELS = ((0, 1, "Syntactic manifold", "syn", "pq-gram SVD"), (2, 3, "Semantic manifold", "sem", "PCA of z-scored outputs"))


def _label_axes(ax, coord: str, unit: str) -> None:
    ax.set_xlabel(f"{coord}[1]: coordinate 1 ({unit}, unitless)")
    ax.set_ylabel(f"{coord}[2]: coordinate 2 ({unit}, unitless)")
    ax.grid(alpha=0.2)


def _manifold_placeholder(d: ReportData, axes) -> str:
    msg = ("No manifolds in this warehouse.\nRun `gensynth embed` (or build without --skip-embed)."
           if not d.has_manifold else "No split views yet.\nRegister one with `gensynth split add`.")
    for ax, (*_, name, _c, _u) in zip(axes, PANELS):
        placeholder(ax, name, msg)
    return msg.splitlines()[0]


def figure_manifolds(d: ReportData, path: Path) -> str | None:
    """First two syn and sem coordinates, coloured by role in the split drawn."""
    view = d.split
    fig, axes = plt().subplots(1, 2, figsize=(14, 7.4))
    if not d.has_manifold or view is None:
        note = "manifolds: " + _manifold_placeholder(d, axes)
        save(fig, path)
        return note
    counts = {r["role"]: r["n"] for r in d.rows("manifold_roles")}
    by_role = _points_by_role(d)
    roles = [r for r in by_role if r != "(not in split)"]
    colors = role_colors(roles)
    order = ["(not in split)"] + role_order(roles)
    limits = _limits(d)
    for ax, (i, j, name, coord, unit) in zip(axes, PANELS):
        drawn = 0
        distinct = set()
        for role in order:
            pts = [(p[i], p[j]) for p in by_role.get(role, []) if p[i] is not None and p[j] is not None]
            if not pts:
                continue
            drawn += len(pts)
            distinct.update(pts)
            xs, ys = zip(*pts)
            bg = role == "(not in split)"
            n_role = counts.get(role, 0)
            label = f"{role} (n={n_role:,}" + ("" if len(pts) >= n_role else f", {len(pts):,} shown") + ")"
            ax.scatter(xs, ys, s=3 if bg or role == "train" else 7, c="#d0d0d0" if bg else colors[role],
                       alpha=0.5 if bg else 0.8, linewidths=0, label=label, rasterized=True, zorder=1 if bg else 2)
        notes = [fit_axes(ax, limits.get(coord))]
        if drawn and len(distinct) < 0.5 * drawn:  # say so when points hide each other
            notes.append(f"{drawn:,} programs drawn at only {len(distinct):,} distinct positions: points overlap "
                         "(later roles on top)")
        if coord == "sem":
            notes.append("non-finite functions have no semantic coordinates")
        ax.set_title(f"{name} — programs of {view}")
        _label_axes(ax, coord, unit)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2, fontsize=8, markerscale=3, frameon=False)
        below(ax, "\n".join(n for n in notes if n), y=-0.24)
    fig.suptitle(f"The two manifolds coloured by role in {view} (≤ {MAX_POINTS:,} programs drawn)", fontsize=13)
    save(fig, path)
    return None


def figure_solved(d: ReportData, path: Path) -> str | None:
    """One run's test programs, solved (green) and unsolved (red), on both manifolds over its training programs."""
    fig, axes = plt().subplots(1, 2, figsize=(14, 7.4))
    featured = d.rows("featured_run")
    points = d.rows("solved_points")
    if not d.has_manifold or d.split is None:
        note = "solved test programs: " + _manifold_placeholder(d, axes)
        save(fig, path)
        return note
    if not featured or not points:
        msg = (f"No finished transformer run on {d.split} with test answers yet.\n"
               f"Train one: `gensynth train --view {d.split}`.")
        for ax, (*_, name, _c, _u) in zip(axes, PANELS):
            placeholder(ax, name, msg)
        save(fig, path)
        return "solved test programs: no finished run on the split drawn"
    run = featured[0]
    train = [p for p in _points_by_role(d).get("train", [])]
    roles = role_order({p["role"] for p in points})
    markers = dict(zip(roles, "o^sDvP*X"))
    limits = _limits(d)
    for ax, (i, j, name, coord, unit) in zip(axes, PANELS):
        bg = [(p[i], p[j]) for p in train if p[i] is not None and p[j] is not None]
        if bg:
            ax.scatter(*zip(*bg), s=3, c="#d0d0d0", linewidths=0, alpha=0.6, rasterized=True, zorder=1,
                       label=f"train programs of {d.split} ({len(bg):,} drawn)")
        key = ("s1", "s2") if coord == "syn" else ("c1", "c2")
        for role in roles:
            for passed, color, word in ((False, UNSOLVED, "unsolved"), (True, SOLVED, "solved")):
                pts = [(p[key[0]], p[key[1]]) for p in points if p["role"] == role and bool(p["passed"]) == passed
                       and p[key[0]] is not None and p[key[1]] is not None]
                if pts:  # solved ones larger, outlined and on top: they are few
                    ax.scatter(*zip(*pts), s=46 if passed else 12, c=color, marker=markers[role], alpha=0.9 if passed else 0.7,
                               edgecolors="black" if passed else "none", linewidths=0.6 if passed else 0,
                               zorder=4 if passed else 2, label=f"{role} {word} ({len(pts):,})")
        ax.set_title(f"{name}")
        _label_axes(ax, coord, unit)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2, fontsize=8, frameon=False)
        below(ax, fit_axes(ax, limits.get(coord)) or "", y=-0.24)
    solved = sum(bool(p["passed"]) for p in points)
    fig.suptitle(f"Where run {run['run_id']} ({run['size']}, {run['max_steps']} steps, seed {run['seed']}: the best "
                 f"on {d.split}) solves its test programs: {solved:,} of {len(points):,} solved", fontsize=12)
    save(fig, path)
    return None


# ------------------------------------------------------------------ density, search


def figure_density(d: ReportData, path: Path) -> str | None:
    """Figure 2: density matrix heatmap with row spreads."""
    import numpy as np

    pyplot = plt()
    cfg = d.q["density_cells"].variables if "density_cells" in d.q else None
    if cfg is None:
        fig, ax = pyplot.subplots(figsize=(9, 5.5))
        placeholder(ax, "Density generalisation: train × test strategy",
                     "No finished runs on density_* splits yet.\nRun `gensynth sweep density`.")
        fig.savefig(path, dpi=110)
        pyplot.close(fig)
        return "density matrix: no finished density_* runs"
    cells = d.rows("density_cells")

    def order(names):
        return [s for s in STRATEGY_ORDER if s in names] + sorted(set(names) - set(STRATEGY_ORDER))

    trains = order({c["train_strategy"] for c in cells})
    tests = order({c["test_strategy"] for c in cells})
    grid = np.full((len(trains), len(tests)), np.nan)
    sd = np.full_like(grid, np.nan)
    spread = {}
    for c in cells:
        i, j = trains.index(c["train_strategy"]), tests.index(c["test_strategy"])
        grid[i, j], sd[i, j] = c["pass_at_1"], c["pass_at_1_sd"] if c["pass_at_1_sd"] is not None else np.nan
        spread[c["train_strategy"]] = c["row_spread"]
    fig, (ax, axs) = pyplot.subplots(1, 2, figsize=(11, 1.3 + 1.1 * len(trains)), width_ratios=[len(tests), 1.6])
    vmax = max(0.05, float(np.nanmax(grid)) if np.isfinite(grid).any() else 0.05)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
    for i in range(len(trains)):
        for j in range(len(tests)):
            if np.isfinite(grid[i, j]):
                text = f"{grid[i, j]:.3f}" + (f"\n± {sd[i, j]:.3f}" if np.isfinite(sd[i, j]) else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=10,
                        color="white" if grid[i, j] < 0.6 * vmax else "black")
    ax.set_xticks(range(len(tests)), [f"test_{t}" for t in tests])
    ax.set_yticks(range(len(trains)), [f"density_{t}" for t in trains])
    ax.set_xlabel("test role (sampling strategy of the test programs)")
    ax.set_ylabel("training split (sampling strategy of the training set)")
    cb = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    cb.set_label("greedy pass@1 (mean over seeds)")
    vals = [spread.get(t) or 0.0 for t in trains]
    axs.barh(range(len(trains)), vals, color="#d62728", alpha=0.8)
    for i, v in enumerate(vals):
        axs.text(v, i, f" {v:.3f}", va="center", fontsize=9)
    axs.set_yticks(range(len(trains)), [""] * len(trains))
    axs.set_ylim(len(trains) - 0.5, -0.5)
    axs.set_xlim(0, max(0.05, max(vals) * 1.5))
    axs.set_xlabel("row spread\n(max − min pass@1)")
    axs.set_title("robustness\n(lower = steadier)", fontsize=10)
    n_runs = d.rows("density_runs")[0]["runs"]
    ax.set_title(f"Density generalisation: {cfg['method']}, size {cfg['size']}, {cfg['max_steps']} steps ({n_runs} runs)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot.close(fig)
    return None


def figure_methods(d: ReportData, path: Path) -> str | None:
    """Figure 5: solve rate vs budget per search method, one panel per split and test role.

    The transformer's best pass@1 on the same split and role is drawn as a reference line.
    """
    pyplot = plt()
    rows = d.rows("method_runs")
    costs: dict[tuple, list] = {}
    for c in d.rows("method_costs"):
        costs.setdefault((c["run_id"], c["view"], c["role"]), []).append(c)
    search = [r for r in rows if r["method"] != "transformer" and r["pass_at_1"] is not None]
    if not search:
        fig, ax = pyplot.subplots(figsize=(9, 5.5))
        placeholder(ax, "Search methods: solve rate vs budget",
                     "No finished search runs yet (runs whose config records a method).\n"
                     "Run `gensynth solve --method ...` on a split.")
        fig.savefig(path, dpi=110)
        pyplot.close(fig)
        return "methods: no finished search runs"
    panels = sorted({(r["view"], r["role"]) for r in search})
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = pyplot.subplots(nrow, ncol, figsize=(6.2 * ncol, 5.2 * nrow), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (view, role) in zip(axes.flat, panels):
        mine = [r for r in search if r["view"] == view and r["role"] == role]
        for i, m in enumerate(sorted({r["method"] for r in mine})):
            # Anytime curve: the search is deterministic and stops at its first answer, so a
            # task solved after c candidates is solved under any budget >= c.
            for j, r in enumerate(r for r in mine if r["method"] == m):
                cost = costs.get((r["run_id"], view, role), [])
                if not cost:
                    continue
                solved = sorted(max(int(c["candidates"]), 1) for c in cost if c["passed"])
                xs = [1] + solved + [max(r["budget"] or 1, solved[-1] if solved else 1)]
                ys = [0.0] + [(k + 1) / len(cost) for k in range(len(solved))] + [len(solved) / len(cost)]
                ax.step(xs, ys, where="post", color=TEST_PALETTE[i % len(TEST_PALETTE)],
                        label=f"{m} (n={len(cost)})" if j == 0 else None)
        trans = [r["pass_at_1"] for r in rows if r["method"] == "transformer" and r["view"] == view
                 and r["role"] == role and r["pass_at_1"] is not None]
        if trans:
            ax.axhline(max(trans), color="#1f77b4", ls="--", label=f"transformer, best of {len(trans)} run(s)")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{view} · {role}")
        ax.set_xlabel("budget per task (candidate programs evaluated; log scale)")
        ax.set_ylabel("solve rate (pass@1 of the answer)")
        ax.grid(alpha=0.25, which="both")
        ax.legend(fontsize=8, loc="best")
    fig.suptitle("Search methods: solve rate vs budget (transformer runs on the same role for reference)", fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot.close(fig)
    return None
