"""What every figure of `gensynth report` shares: matplotlib set up headless, panels that
explain missing data, one colour per role and per run configuration, labels for runs.

No function here opens the warehouse.
"""

from __future__ import annotations

import math
from pathlib import Path

ROLE_COLORS = {"train": "#1f77b4", "val": "#8c8c8c"}
TEST_PALETTE = ("#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
CONFIG_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                  "#bcbd22", "#17becf", "#393b79", "#ad494a")
SOLVED, UNSOLVED = "#2ca02c", "#d62728"
DPI = 110


def plt():
    """matplotlib.pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def placeholder(ax, title: str, message: str) -> None:
    """A panel that says what is missing and which command produces it."""
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_color("#cccccc")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11, color="#444444",
            transform=ax.transAxes)


def placeholder_figure(path: Path, title: str, message: str, size=(9, 5.5)) -> None:
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=size)
    placeholder(ax, title, message)
    save(fig, path)


def save(fig, path: Path, tight: bool = True) -> None:
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt().close(fig)


def role_colors(roles) -> dict[str, str]:
    """train blue, val grey, each test role its own colour (the same role, the same colour, in every figure)."""
    colors = dict(ROLE_COLORS)
    tests = sorted(r for r in set(roles) if r not in colors)
    for i, r in enumerate(tests):
        colors[r] = TEST_PALETTE[i % len(TEST_PALETTE)]
    return colors


def role_order(roles) -> list[str]:
    roles = set(roles)
    return [r for r in ("train", "val") if r in roles] + sorted(r for r in roles if r not in ("train", "val"))


def config_label(row: dict) -> str:
    """A run configuration: 'transformer nano · 240 steps' or the search method."""
    if row.get("method") not in (None, "transformer"):
        return str(row["method"])
    steps = row.get("max_steps")
    return f"{row.get('size')}" + (f" · {steps} steps" if steps is not None else "")


def config_colors(rows) -> dict[str, str]:
    """One colour per configuration label, from the least training compute to the most."""
    out: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: (r.get("training_flops") is None, r.get("training_flops") or 0)):
        label = config_label(r)
        if label not in out:
            out[label] = CONFIG_PALETTE[len(out) % len(CONFIG_PALETTE)]
    return out


def run_label(row: dict) -> str:
    """A run, short: 'support_syntactic · nano · 240 steps · seed 1 (…3fa9)'."""
    seed = f" · seed {row['seed']}" if row.get("seed") is not None else ""
    return f"{row.get('split', '')} · {config_label(row)}{seed} (…{str(row['run_id'])[-4:]})"


def grid(n: int, ncol_max: int = 3, w: float = 6.2, h: float = 5.0, **kw):
    """A figure with n panels in rows of at most ncol_max; unused panels hidden."""
    ncol = max(1, min(ncol_max, n))
    nrow = max(1, math.ceil(n / ncol))
    fig, axes = plt().subplots(nrow, ncol, figsize=(w * ncol, h * nrow), squeeze=False, **kw)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def below(ax, text: str, y: float = -0.13) -> None:
    """A small grey note under a panel (outside the data, so it hides nothing)."""
    import textwrap

    if text:
        lines = [w for line in text.splitlines() for w in textwrap.wrap(line, 100)]
        ax.text(0.0, y, "\n".join(lines), transform=ax.transAxes, fontsize=8, color="#555555", va="top", ha="left")


def padded(lo: float, hi: float, pad: float = 0.06) -> tuple[float, float]:
    span = (hi - lo) or max(abs(hi), 1.0)
    return lo - pad * span, hi + pad * span
