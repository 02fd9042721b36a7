"""`gensynth report`: figures (PNG) and a Markdown report from the analysis views.

Reads only the views of sql/analysis/ (and ``manifold`` / the split views for the map),
so every number in the report is a query a researcher can rerun in the DuckDB shell;
each table in the report says which. Figures:

1. ``manifolds.png`` — the syntactic and semantic manifolds (first two coordinates),
   programs coloured by their role in one split (the paper's Figures 1–2);
2. ``density_matrix.png`` — train strategy × test strategy pass@1 with each row's spread;
3. ``scaling.png`` — pass@1 against training FLOPs (log axis) per split and role, with
   the fitted log-linear lines and R² (Figure 3);
4. ``proximity.png`` — distance to the nearest training program, solved vs unsolved, on
   both manifolds and by pq-gram distance (Figure 4);
5. ``methods.png`` — solve rate against budget for search methods (runs with config.method).

Every figure file is written even when its data is missing: the panel then says what is
missing and which command produces it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

STRATEGY_ORDER = ("natural", "syntactic", "semantic", "diverse")
MAX_POINTS = 50_000  # points drawn in the manifold figure
FIGURES = ("manifolds.png", "density_matrix.png", "scaling.png", "proximity.png", "methods.png")
ROLE_COLORS = {"train": "#1f77b4", "val": "#8c8c8c"}
TEST_PALETTE = ("#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
DISTANCES = (("syntactic", "syn_nn_dist", "Syntactic manifold", "Euclidean distance in syn coordinates (unitless)"),
             ("semantic", "sem_nn_dist", "Semantic manifold", "Euclidean distance in sem coordinates (unitless)"),
             ("pqgram", "pqgram_nn_dist", "pq-gram distance", "normalised pq-gram distance (0 = same profile, 1 = disjoint)"))


@dataclass
class ReportSummary:
    """What `gensynth report` wrote."""

    out: Path
    markdown: Path
    figures: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # figures drawn as "no data yet" panels
    split: str | None = None


# ------------------------------------------------------------------------- helpers


def _rows(con, sql: str, params=None) -> list[dict]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


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


def _views(con) -> set[str]:
    return {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE schema_name = 'main'").fetchall()}


def choose_split(con, split: str | None) -> str | None:
    """The split view for figure 1: the one asked for, else the one with most finished runs, else any."""
    from gensynth.errors import GensynthError

    views = _views(con)
    splits = sorted(v for v in views if v.startswith("split_"))
    if split is not None:
        view = split if split.startswith("split_") else f"split_{split}"
        if view not in views:
            import difflib

            close = difflib.get_close_matches(view, splits, n=1)
            raise GensynthError(f"--split {split}: no split view '{view}' here" + (f" (did you mean '{close[0]}'?)" if close else "")
                                + f". Splits: {', '.join(splits) or 'none'}.")
        return view
    ranked = [r[0] for r in con.execute(
        "SELECT view FROM finished_runs GROUP BY view ORDER BY count(*) DESC, view").fetchall() if r[0] in views]
    if ranked:
        return ranked[0]
    for preferred in ("split_support_syntactic", "split_density_natural"):
        if preferred in views:
            return preferred
    return splits[0] if splits else None


# ------------------------------------------------------------------------- figures


def figure_manifolds(con, view: str | None, path: Path) -> str | None:
    """Figure 1: first two syn and sem coordinates, coloured by role in ``view``."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(14, 6.2))
    note = None
    if "manifold" not in _views(con) or view is None:
        msg = ("No manifolds in this warehouse.\nRun `gensynth embed` (or build without --skip-embed)."
               if "manifold" not in _views(con) else "No split views yet.\nRegister one with `gensynth split add`.")
        for ax, name in zip(axes, ("Syntactic manifold", "Semantic manifold")):
            _placeholder(ax, name, msg)
        note = "manifolds: " + msg.splitlines()[0]
    else:
        q = '"' + view.replace('"', '""') + '"'
        counts = dict(con.execute(f"SELECT role, count(*) FROM {q} GROUP BY role").fetchall())
        total = con.execute("SELECT count(*) FROM manifold").fetchone()[0]
        # Every non-train role in full (they are small), train and the rest sampled by hash.
        rows = con.execute(f"""
            WITH labelled AS (
                SELECT m.program_id, m.syn[1] AS s1, m.syn[2] AS s2, m.sem[1] AS c1, m.sem[2] AS c2,
                       coalesce(s.role, '(not in split)') AS role
                FROM manifold AS m LEFT JOIN {q} AS s USING (program_id)
            ),
            ranked AS (
                SELECT *, row_number() OVER (PARTITION BY role ORDER BY hash(program_id, 'report')) AS rn FROM labelled
            )
            SELECT role, s1, s2, c1, c2 FROM ranked
            WHERE rn <= CASE WHEN role = '(not in split)' THEN {MAX_POINTS // 4}
                             WHEN role = 'train' THEN {MAX_POINTS // 2} ELSE {MAX_POINTS // 16} END""").fetchall()
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
                n_role = counts.get(role, total - sum(counts.values()))
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


def density_config(con) -> dict | None:
    """The (method, size, max_steps) group of density_matrix drawn: most cells, then most runs, then most steps."""
    rows = _rows(con, """
        SELECT method, size, max_steps, count(*) AS cells, sum(n_runs) AS runs
        FROM density_matrix GROUP BY method, size, max_steps
        ORDER BY (method = 'transformer') DESC, cells DESC, runs DESC, max_steps DESC NULLS LAST, size""")
    return rows[0] if rows else None


def figure_density(con, path: Path) -> str | None:
    """Figure 2: density matrix heatmap with row spreads."""
    import numpy as np

    plt = _plt()
    cfg = density_config(con)
    if cfg is None:
        fig, ax = plt.subplots(figsize=(9, 5.5))
        _placeholder(ax, "Density generalisation: train × test strategy",
                     "No finished runs on density_* splits yet.\nRun `gensynth sweep density`.")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return "density matrix: no finished density_* runs"
    cells = _rows(con, """SELECT * FROM density_matrix WHERE method = ? AND size = ? AND max_steps IS NOT DISTINCT FROM ?""",
                  [cfg["method"], cfg["size"], cfg["max_steps"]])

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
    n_runs = con.execute("""SELECT count(DISTINCT run_id) FROM finished_runs WHERE view LIKE 'split\\_density\\_%' ESCAPE '\\'
                            AND method = ? AND size = ? AND max_steps IS NOT DISTINCT FROM ?""",
                         [cfg["method"], cfg["size"], cfg["max_steps"]]).fetchone()[0]
    ax.set_title(f"Density generalisation: {cfg['method']}, size {cfg['size']}, {cfg['max_steps']} steps ({n_runs} runs)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def figure_scaling(con, path: Path) -> str | None:
    """Figure 3: pass@1 vs FLOPs per split and test role, with fitted lines and R²."""
    import numpy as np

    plt = _plt()
    rows = _rows(con, """SELECT * FROM scaling WHERE role LIKE 'test\\_%' ESCAPE '\\' AND method = 'transformer'
                          ORDER BY view, role, training_flops""")
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


def figure_proximity(con, path: Path) -> str | None:
    """Figure 4: distance-to-nearest-training-program distributions (ECDFs), solved vs unsolved."""
    import numpy as np

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.4))
    n_runs = con.execute("SELECT count(DISTINCT run_id) FROM proximity WHERE passed IS NOT NULL").fetchone()[0]
    note = None
    for ax, (name, col, title, xlabel) in zip(axes, DISTANCES):
        data = con.execute(f"SELECT passed, {col} FROM proximity WHERE passed IS NOT NULL AND {col} IS NOT NULL").fetchall()
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
        auc = con.execute("SELECT avg(auc), count(auc) FROM proximity_summary WHERE role = 'all_test' AND distance = ?",
                          [name]).fetchone()
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


def figure_methods(con, path: Path) -> str | None:
    """Figure 5: solve rate vs budget per search method, one panel per split and test role.

    The transformer's best pass@1 on the same split and role is drawn as a reference line.
    """
    plt = _plt()
    rows = _rows(con, "SELECT method, view, role, run_id, budget, pass_at_1, n FROM method_comparison")
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
                cost = _rows(con, "SELECT candidates, passed FROM predictions WHERE run_id = ? AND view = ? AND role = ? "
                                  "AND candidates IS NOT NULL", [r["run_id"], view, role])
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


# ------------------------------------------------------------------------ markdown


def _claims(con) -> list[list]:
    """Paper claims next to the numbers this warehouse measures."""
    out = []
    cfg = density_config(con)
    if cfg:
        rows = _rows(con, "SELECT train_strategy, any_value(row_mean) AS mean, any_value(row_spread) AS spread, "
                          "max(pass_at_1) FILTER (WHERE test_strategy = train_strategy) AS in_domain "
                          "FROM density_matrix WHERE method = ? AND size = ? AND max_steps IS NOT DISTINCT FROM ? GROUP BY 1",
                     [cfg["method"], cfg["size"], cfg["max_steps"]])
        by = {r["train_strategy"]: r for r in rows}
        d, s = by.get("diverse"), by.get("semantic")
        out.append(["Diverse-trained models hold ~19% pass@1 steadily across density test sets",
                    f"diverse: mean {_fmt(d['mean'])}, spread {_fmt(d['spread'])}" if d else "no density_diverse runs",
                    "density_matrix"])
        out.append(["Semantic-trained model peaks at 30.5% in-domain but is brittle under shift",
                    f"semantic: in-domain {_fmt(s['in_domain'])}, spread {_fmt(s['spread'])}" if s else "no density_semantic runs",
                    "density_matrix"])
    else:
        out.append(["Density: diverse steady ~19%; semantic peaks 30.5% in-domain, brittle", "no density runs yet", "density_matrix"])
    drops = {r["split"]: r for r in _rows(con, "SELECT split, avg(rel_drop) AS rel, count(DISTINCT run_id) AS runs "
                                               "FROM ood_drop WHERE method = 'transformer' GROUP BY split")}
    for split, claim in (("support_syntactic", "> 30% relative pass@1 drop on the syntactic support split"),
                         ("support_semantic", "almost no drop on the semantic support split")):
        r = drops.get(split)
        out.append([claim, f"mean relative drop {_fmt(r['rel'])} over {r['runs']} run(s)" if r else f"no {split} runs yet",
                    "ood_drop"])
    fits = _rows(con, "SELECT split, role, any_value(slope) AS slope, any_value(r2) AS r2, any_value(n_fit) AS n "
                      "FROM scaling WHERE method = 'transformer' AND role LIKE 'test\\_%' ESCAPE '\\' AND slope IS NOT NULL "
                      "GROUP BY ALL ORDER BY ALL")
    out.append(["Log-linear gains in FLOPs for every split",
                "; ".join(f"{f['split']}/{f['role']}: {f['slope']:+.3f}/decade, R² {_fmt(f['r2'], 2)}" for f in fits)
                if fits else "no compute range yet (need runs at 2+ FLOPs levels)", "scaling"])
    prox = _rows(con, "SELECT distance, avg(auc) AS auc, count(auc) AS runs FROM proximity_summary "
                      "WHERE role = 'all_test' GROUP BY distance ORDER BY distance")
    out.append(["Solved test programs lie closer to training data than unsolved ones",
                "; ".join(f"{p['distance']}: mean AUC {_fmt(p['auc'])} ({p['runs']} runs)" for p in prox if p["runs"])
                or "no proximity data yet", "proximity_summary"])
    return out


def write_markdown(con, out: Path, summary: ReportSummary, warehouse: Path) -> Path:
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    status = dict(con.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    lines = [f"# gensynth report", "",
             f"Warehouse `{warehouse}` · grammar {meta.get('grammar_name', '?')} · max ops {meta.get('max_ops', '?')} · "
             f"data version `{meta.get('data_version', '?')}` · {int(meta.get('n_programs', 0)):,} programs · "
             f"generated {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}", "",
             f"Runs: {status.get('finished', 0)} finished, {status.get('running', 0)} running or killed, "
             f"{status.get('failed', 0)} failed (only finished runs are counted). Every table below is a view of "
             f"`sql/analysis/`; the query under each reproduces it in `gensynth shell`.", ""]
    if summary.notes:
        lines += ["Missing data (drawn as explanatory panels): " + "; ".join(summary.notes) + ".", ""]
    lines += ["## Paper claims and what this warehouse measures", "",
              _md_table(["paper (arXiv 2604.27551)", "measured here", "view"], _claims(con), "nothing measured yet"), ""]

    lines += ["## 1. The two manifolds", "", f"![manifolds](manifolds.png)", "",
              f"Split drawn: `{summary.split}`." if summary.split else "No split drawn.", ""]

    sql = ("SELECT split, ood_role, method, size, count(*) AS runs, avg(id_pass_at_1), avg(ood_pass_at_1), "
           "avg(abs_drop), avg(rel_drop) FROM ood_drop GROUP BY ALL ORDER BY ALL")
    rows = [list(r.values()) for r in _rows(con, sql)]
    lines += ["## 2. Support generalisation: out-of-distribution drop", "",
              _md_table(["split", "OOD role", "method", "size", "runs", "test_id pass@1", "OOD pass@1", "abs drop", "rel drop"],
                        rows, "No finished runs on splits with a test_id role yet (`gensynth sweep support`)."),
              f"```sql\n{sql};\n```", ""]

    cfg = density_config(con)
    lines += ["## 3. Density generalisation", "", "![density matrix](density_matrix.png)", ""]
    if cfg:
        steps = "IS NULL" if cfg["max_steps"] is None else f"= {cfg['max_steps']}"
        sql = (f"SELECT train_strategy, test_strategy, pass_at_1, pass_at_1_sd, n_runs, row_spread FROM density_matrix "
               f"WHERE method = '{cfg['method']}' AND size = '{cfg['size']}' AND max_steps {steps} ORDER BY ALL")
        cells = _rows(con, sql)
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
        others = con.execute("SELECT count(DISTINCT (method, size, max_steps)) FROM density_matrix").fetchone()[0]
        lines += [f"{cfg['method']}, size {cfg['size']}, {cfg['max_steps']} steps; pass@1 mean ± sd over seeds.", "",
                  _md_table(["trained on"] + [f"test_{u}" for u in tests] + ["row spread", "runs"], rows, ""),
                  f"```sql\n{sql};\n```", ""]
        if others > 1:
            lines += [f"{others - 1} other method/size/steps group(s) in `density_matrix`; the figure shows the most complete.", ""]
    else:
        lines += ["_No finished runs on density_* splits yet (`gensynth sweep density`)._", ""]

    sql = ("SELECT split, role, method, any_value(n_fit) AS runs, any_value(flops_span) AS flops_span, any_value(slope) AS slope, "
           "any_value(intercept) AS intercept, any_value(r2) AS r2 FROM scaling GROUP BY ALL ORDER BY ALL")
    rows = [list(r.values()) for r in _rows(con, sql)]
    lines += ["## 4. Scaling with compute", "", "![scaling](scaling.png)", "",
              _md_table(["split", "role", "method", "runs", "FLOPs span (max/min)", "slope (per 10× FLOPs)", "intercept", "R²"],
                        rows, "No finished training runs yet (`gensynth sweep scaling`)."),
              f"```sql\n{sql};\n```", ""]

    sql = ("SELECT train_view, distance, count(*) AS runs, avg(median_solved), avg(median_unsolved), avg(auc), "
           "count(*) FILTER (WHERE p_value < 0.05 AND z > 0) AS runs_significant FROM proximity_summary "
           "WHERE role = 'all_test' GROUP BY ALL ORDER BY ALL")
    rows = [list(r.values()) for r in _rows(con, sql)]
    lines += ["## 5. Proximity: are solved programs closer to the training data?", "", "![proximity](proximity.png)", "",
              _md_table(["trained on", "distance", "runs", "median dist. solved", "median dist. unsolved", "mean AUC",
                         "runs with p < 0.05 (solved closer)"], rows,
                        "No proximity data yet (finished runs, then `gensynth proximity`)."),
              "AUC is the probability that an unsolved test program lies farther from the training set than a solved one "
              "(Mann–Whitney U / n_solved·n_unsolved); 0.5 means no difference.", "",
              f"```sql\n{sql};\n```", ""]

    sql = ("SELECT method, split, budget, count(DISTINCT run_id) AS runs, sum(pass_at_1 * n) / sum(n) AS solve_rate, "
           "avg(wall_time_s) AS wall_s FROM method_comparison GROUP BY ALL ORDER BY ALL")
    rows = [list(r.values()) for r in _rows(con, sql)]
    has_search = any(r[0] != "transformer" for r in rows)
    lines += ["## 6. Search methods", "", "![methods](methods.png)", "",
              _md_table(["method", "split", "budget", "runs", "solve rate (test roles)", "wall time (s)"], rows,
                        "No finished runs yet.") if has_search else "_No finished search runs yet (runs with config.method)._\n",
              f"```sql\n{sql};\n```" if has_search else "", ""]

    sql = ("SELECT r.run_id, r.split, r.method, r.size, r.seed, r.steps, r.training_flops, k.role, k.n, k.pass_at_1, "
           "k.pass_at_1_lo, k.pass_at_1_hi FROM finished_runs r JOIN pass_at_k k ON k.run_id = r.run_id AND k.view = r.view "
           "WHERE k.role LIKE 'test\\_%' ESCAPE '\\' ORDER BY r.split, r.method, r.size, r.seed, r.run_id, k.role")
    rows = [list(r.values()) for r in _rows(con, sql)]
    shown = rows[:300]
    lines += ["## 7. Every finished run (test roles)", "",
              _md_table(["run", "split", "method", "size", "seed", "steps", "FLOPs", "role", "n", "pass@1", "95% lo", "95% hi"],
                        shown, "No finished runs yet."),
              (f"_{len(rows) - len(shown)} more rows: run the query._\n" if len(rows) > len(shown) else ""),
              f"```sql\n{sql};\n```", "",
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


def write_report(con: duckdb.DuckDBPyConnection, out: Path, warehouse: Path, split: str | None = None) -> ReportSummary:
    """Write every figure and report.md into ``out``; ``con`` has the analysis views installed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    view = choose_split(con, split)
    summary = ReportSummary(out=out, markdown=out / "report.md", split=view)
    makers = {
        "manifolds.png": lambda p: figure_manifolds(con, view, p),
        "density_matrix.png": lambda p: figure_density(con, p),
        "scaling.png": lambda p: figure_scaling(con, p),
        "proximity.png": lambda p: figure_proximity(con, p),
        "methods.png": lambda p: figure_methods(con, p),
    }
    for name in FIGURES:
        note = makers[name](out / name)
        summary.figures[name] = out / name
        if note:
            summary.notes.append(note)
    write_markdown(con, out, summary, warehouse)
    return summary
