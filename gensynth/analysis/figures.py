"""The figures of `gensynth report`, drawn from its gathered data (gensynth.analysis.report_data).

1. ``manifolds.png`` — the syntactic and semantic manifolds (first two coordinates),
   programs coloured by their role in one split (the paper's Figures 1–2);
2. ``density_matrix.png`` — train strategy × test strategy pass@1 with each row's spread;
3. ``scaling.png`` — pass@1 against training FLOPs (log axis) per split and role, with
   the fitted log-linear lines and R² (Figure 3);
4. ``proximity.png`` — distance to the nearest training program, solved vs unsolved, on
   both manifolds and by pq-gram distance (Figure 4);
5. ``methods.png`` — solve rate against budget for search methods (runs with config.method).

Every figure file is written even when its data is missing: the panel then says what is
missing and which command produces it. No function here opens the warehouse.
"""

from __future__ import annotations

import math
from pathlib import Path

from gensynth.analysis.report_data import MAX_POINTS, ReportData

STRATEGY_ORDER = ("natural", "syntactic", "semantic", "diverse")
FIGURES = ("manifolds.png", "density_matrix.png", "scaling.png", "proximity.png", "methods.png")
ROLE_COLORS = {"train": "#1f77b4", "val": "#8c8c8c"}
TEST_PALETTE = ("#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
DISTANCES = (("syntactic", "syn_nn_dist", "Syntactic manifold", "Euclidean distance in syn coordinates (unitless)"),
             ("semantic", "sem_nn_dist", "Semantic manifold", "Euclidean distance in sem coordinates (unitless)"),
             ("pqgram", "pqgram_nn_dist", "pq-gram distance", "normalised pq-gram distance (0 = same profile, 1 = disjoint)"))


def _placeholder(ax, title: str, message: str) -> None:
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_color("#cccccc")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11, color="#444444",
            transform=ax.transAxes)


def _role_colors(roles: list[str]) -> dict[str, str]:
    colors = dict(ROLE_COLORS)
    tests = [r for r in roles if r not in colors]
    for i, r in enumerate(sorted(tests)):
        colors[r] = TEST_PALETTE[i % len(TEST_PALETTE)]
    return colors


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_figures(d: ReportData, out: Path) -> tuple[dict[str, Path], list[str]]:
    """Write every figure into ``out``; returns (name -> path, notes for figures drawn as 'no data' panels)."""
    makers = {"manifolds.png": figure_manifolds, "density_matrix.png": figure_density, "scaling.png": figure_scaling,
              "proximity.png": figure_proximity, "methods.png": figure_methods}
    paths, notes = {}, []
    for name in FIGURES:
        note = makers[name](d, out / name)
        paths[name] = out / name
        if note:
            notes.append(note)
    return paths, notes


def figure_manifolds(d: ReportData, path: Path) -> str | None:
    """Figure 1: first two syn and sem coordinates, coloured by role in the split drawn."""
    plt = _plt()
    view = d.split
    fig, axes = plt.subplots(1, 2, figsize=(14, 6.2))
    note = None
    if not d.has_manifold or view is None:
        msg = ("No manifolds in this warehouse.\nRun `gensynth embed` (or build without --skip-embed)."
               if not d.has_manifold else "No split views yet.\nRegister one with `gensynth split add`.")
        for ax, name in zip(axes, ("Syntactic manifold", "Semantic manifold")):
            _placeholder(ax, name, msg)
        note = "manifolds: " + msg.splitlines()[0]
    else:
        counts = {r["role"]: r["n"] for r in d.rows("manifold_roles")}
        rows = [(r["role"], r["s1"], r["s2"], r["c1"], r["c2"]) for r in d.rows("manifold_points")]
        by_role: dict[str, list] = {}
        for role, *xy in rows:
            by_role.setdefault(role, []).append(xy)
        roles = [r for r in by_role if r != "(not in split)"]
        colors = _role_colors(roles)
        order = ["(not in split)", "train", "val"] + sorted(r for r in roles if r not in ("train", "val"))
        for ax, (i, j), name, unit in ((axes[0], (0, 1), "Syntactic manifold", "pq-gram SVD"),
                                       (axes[1], (2, 3), "Semantic manifold", "PCA of z-scored outputs")):
            for role in order:
                pts = [(p[i], p[j]) for p in by_role.get(role, []) if p[i] is not None and p[j] is not None]
                if not pts:
                    continue
                xs, ys = zip(*pts)
                bg = role == "(not in split)"
                n_role = counts.get(role, 0)
                label = f"{role} (n={n_role:,}" + ("" if len(pts) >= n_role else f", {len(pts):,} shown") + ")"
                ax.scatter(xs, ys, s=3 if bg or role == "train" else 7, c="#d0d0d0" if bg else colors[role],
                           alpha=0.5 if bg else 0.8, linewidths=0, label=label, rasterized=True, zorder=1 if bg else 2)
            drawn = {(p[i], p[j]) for pts_ in by_role.values() for p in pts_ if p[i] is not None and p[j] is not None}
            n_drawn = sum(1 for pts_ in by_role.values() for p in pts_ if p[i] is not None and p[j] is not None)
            if n_drawn and len(drawn) < 0.5 * n_drawn:  # say so when points hide each other
                ax.text(0.01, 0.01 if i == 0 else 0.045, f"{n_drawn:,} programs drawn at only {len(drawn):,} distinct "
                        "positions: points overlap (later roles on top)", transform=ax.transAxes, fontsize=8,
                        color="#666666", va="bottom")
            ax.set_title(f"{name} — programs of {view}")
            coord = "syn" if i == 0 else "sem"
            ax.set_xlabel(f"{coord}[1]: coordinate 1 ({unit}, unitless)")
            ax.set_ylabel(f"{coord}[2]: coordinate 2 ({unit}, unitless)")
            ax.legend(loc="best", fontsize=8, markerscale=3, framealpha=0.9)
            ax.grid(alpha=0.2)
        axes[1].text(0.01, 0.01, "non-finite functions have no semantic coordinates", transform=axes[1].transAxes,
                     fontsize=8, color="#666666")
    fig.suptitle(f"The two manifolds{' coloured by role in ' + view if view else ''} (≤ {MAX_POINTS:,} programs drawn)",
                 fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return note


def figure_density(d: ReportData, path: Path) -> str | None:
    """Figure 2: density matrix heatmap with row spreads."""
    import numpy as np

    plt = _plt()
    cfg = d.q["density_cells"].variables if "density_cells" in d.q else None
    if cfg is None:
        fig, ax = plt.subplots(figsize=(9, 5.5))
        _placeholder(ax, "Density generalisation: train × test strategy",
                     "No finished runs on density_* splits yet.\nRun `gensynth sweep density`.")
        fig.savefig(path, dpi=110)
        plt.close(fig)
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
    fig, (ax, axs) = plt.subplots(1, 2, figsize=(11, 1.3 + 1.1 * len(trains)), width_ratios=[len(tests), 1.6])
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
    plt.close(fig)
    return None


def figure_scaling(d: ReportData, path: Path) -> str | None:
    """Figure 3: pass@1 vs FLOPs per split and test role, with fitted lines and R²."""
    import numpy as np

    plt = _plt()
    rows = d.rows("scaling_points")
    views = sorted({r["view"] for r in rows})
    if not views:
        fig, ax = plt.subplots(figsize=(9, 5.5))
        _placeholder(ax, "pass@1 vs training compute", "No finished training runs with a test role yet.\n"
                     "Run `gensynth sweep scaling`.")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return "scaling: no finished training runs"
    ncol = min(3, len(views))
    nrow = math.ceil(len(views) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.2 * ncol, 6.0 * nrow), squeeze=False)
    for ax in axes.flat[len(views):]:
        ax.axis("off")
    for ax, view in zip(axes.flat, views):
        mine = [r for r in rows if r["view"] == view]
        roles = sorted({r["role"] for r in mine})
        colors = _role_colors(roles)
        for n_role, role in enumerate(roles):
            pts = [r for r in mine if r["role"] == role]
            x = np.array([p["training_flops"] for p in pts], dtype=float)
            # roles share compute levels: nudge each role's markers sideways (±6%) so they do not hide each other
            nudge = 1.06 ** (n_role - (len(roles) - 1) / 2)
            y = np.array([p["pass_at_1"] for p in pts], dtype=float)
            fit = pts[0]
            label = role
            if fit["slope"] is not None:
                r2 = "n/a (pass@1 constant)" if fit["r2"] is None else f"{fit['r2']:.2f}"
                label += f": {fit['slope']:+.3f} per 10× FLOPs, R² {r2} (n={fit['n_fit']})"
                xs = np.logspace(np.log10(x.min()), np.log10(x.max()), 50)
                ax.plot(xs, fit["intercept"] + fit["slope"] * np.log10(xs), color=colors[role], lw=1.5, alpha=0.9)
            else:
                label += f" (n={len(pts)}; a fit needs 2+ compute levels)"
            ax.scatter(x * nudge, y, color=colors[role], s=30, label=label, zorder=3, edgecolors="white", linewidths=0.5)
        ax.set_xscale("log")
        top = max(r["pass_at_1"] for r in mine)
        ax.set_ylim(0, min(1.05, top * 1.15 + 0.05))
        lo, hi = min(r["training_flops"] for r in mine), max(r["training_flops"] for r in mine)
        ax.set_xlim(lo / 2, hi * 2)
        ax.set_title(view)
        ax.set_xlabel("training compute (FLOPs, analytic; log scale)")
        ax.set_ylabel("greedy pass@1")
        ax.grid(alpha=0.25, which="both")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    fig.suptitle("Scaling: pass@1 = a + b·log10(FLOPs), one fit per split and test role", fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def figure_proximity(d: ReportData, path: Path) -> str | None:
    """Figure 4: distance-to-nearest-training-program distributions (ECDFs), solved vs unsolved."""
    import numpy as np

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.4))
    auc_by = {r["distance"]: r for r in d.rows("proximity_auc")}
    n_runs = next(iter(auc_by.values()))["evaluated_runs"] if auc_by else 0
    points = d.rows("proximity_points")
    note = None
    for ax, (name, _col, title, xlabel) in zip(axes, DISTANCES):
        data = [(p["passed"], p["dist"]) for p in points if p["distance"] == name]
        if not data:
            msg = ("No finished runs evaluated on test roles yet.\nTrain one (`gensynth sweep support`)."
                   if n_runs == 0 else "No distances computed yet.\nRun `gensynth proximity`.")
            _placeholder(ax, title, msg)
            note = "proximity: " + msg.splitlines()[0]
            continue
        # Empirical CDFs: heavy ties (many test programs at distance 0) stay readable, unlike histograms.
        for passed, label, color in ((True, "solved", "#2ca02c"), (False, "unsolved", "#d62728")):
            vals = np.sort(np.array([d for p, d in data if p == passed], dtype=float))
            if len(vals) == 0:
                continue
            med = float(np.median(vals))
            ax.step(np.concatenate([[vals[0]], vals]), np.arange(len(vals) + 1) / len(vals), where="post", color=color,
                    lw=2, label=f"{label}: n={len(vals):,}, median {med:.3g}")
            ax.axvline(med, color=color, ls="--", lw=1)
        a = auc_by.get(name, {"auc": None, "runs": 0})
        auc = (a["auc"], a["runs"])
        sub = f"mean AUC over {auc[1]} run(s): {auc[0]:.2f}" if auc[1] else "AUC needs solved and unsolved programs"
        ax.set_title(f"{title}\n{sub} (> 0.5: solved lie closer)", fontsize=11)
        ax.set_xlabel(f"distance to nearest training program\n({xlabel})")
        ax.set_ylabel("share of test programs within this distance")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.25)
        ax.legend(fontsize=9, loc="lower right")
    fig.suptitle(f"Distance to the nearest training program: cumulative distributions, test programs of {n_runs} "
                 "finished run(s) pooled (dashed: medians)", fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return note


def figure_methods(d: ReportData, path: Path) -> str | None:
    """Figure 5: solve rate vs budget per search method, one panel per split and test role.

    The transformer's best pass@1 on the same split and role is drawn as a reference line.
    """
    plt = _plt()
    rows = d.rows("method_runs")
    costs: dict[tuple, list] = {}
    for c in d.rows("method_costs"):
        costs.setdefault((c["run_id"], c["view"], c["role"]), []).append(c)
    search = [r for r in rows if r["method"] != "transformer" and r["pass_at_1"] is not None]
    if not search:
        fig, ax = plt.subplots(figsize=(9, 5.5))
        _placeholder(ax, "Search methods: solve rate vs budget",
                     "No finished search runs yet (runs whose config records a method).\n"
                     "Run `gensynth solve --method ...` on a split.")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return "methods: no finished search runs"
    panels = sorted({(r["view"], r["role"]) for r in search})
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.2 * ncol, 5.2 * nrow), squeeze=False)
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
    plt.close(fig)
    return None
