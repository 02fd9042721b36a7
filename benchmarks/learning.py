"""Benchmark: what each architecture learns per CPU-minute, and how fast it decodes (``python -m benchmarks.learning``).

Three parts, each printing a table (numbers are printed, never asserted: they depend on
the machine and its load; copy them into the README with the machine's description):

* ``curves``: on a max-ops-3 warehouse (built in the run, or ``--warehouse``), train each
  ``ARCH:SIZE`` of ``--configs`` on ``split_support_syntactic`` for each budget of
  ``--minutes`` (``gensynth train --max-time M --threads 1``, same seed, ``--eval-limit``),
  then report test_id / test_ood pass@1, training examples/s and greedy decode tasks/s,
  and draw pass@1 against minutes (``--png``). ``--parallel 2`` runs two at a time
  (side by side, so load affects them alike).
* ``decode``: tasks/s decoding 256 tasks x 8 samples (temperature 1, grammar-constrained)
  with the KV cache and without it (the pre-cache algorithm, ``use_cache=False``), and,
  with ``--baseline DIR``, with the code checked out in DIR (today's decoder), for the
  same weights.
* ``compare``: the floor of issue 13. Run today's best per CPU-minute (``nano``, 3,500
  steps at batch 256, 1 thread) with the code in ``--baseline DIR`` (its own venv and
  warehouse) to measure its training time M; then run it again side by side with the
  new default (``gensynth train --view V --max-time M --threads 1``) and compare test_id
  pass@1 (``--eval-limit 2000``).

Run from the repository root, e.g. ``nice -n 10 python -m benchmarks.learning decode``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIEW = "split_support_syntactic"


# ------------------------------------------------------------------------ helpers


def machine() -> str:
    cpu = "cpu"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"


def build_warehouse(path: Path) -> Path:
    """A max-ops-3 warehouse of the default grammar with the built-in splits (about a minute)."""
    if not path.exists():
        subprocess.run([sys.executable, "-m", "gensynth", "build", "--max-ops", "3", "--warehouse", str(path)],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return path


def train_once(warehouse: Path, view: str, arch: str, size: str | None, minutes: float, eval_limit: int,
               extra: list[str] | None = None) -> dict:
    """One `gensynth train --max-time` run in a subprocess (1 thread); its summary from the run directory."""
    args = [sys.executable, "-m", "gensynth", "train", "--view", view, "--max-time", str(minutes), "--threads", "1",
            "--eval-limit", str(eval_limit), "-q", "-w", str(warehouse)]
    if arch:
        args += ["--arch", arch]
    if size:
        args += ["--size", size]
    args += extra or []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    before = set((warehouse.parent / "runs").glob("*")) if (warehouse.parent / "runs").exists() else set()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return run_summary(new_run_dir(warehouse, before, view))


def new_run_dir(warehouse: Path, before: set, view: str) -> Path:
    """The run directory a training process just created for ``view`` (others may be training beside it)."""
    new = [d for d in (warehouse.parent / "runs").glob("*") if d not in before and (d / "config.json").exists()
           and json.loads((d / "config.json").read_text())["data"]["view"] in (view, f"split_{view}")]
    if len(new) != 1:
        raise RuntimeError(f"expected one new run of {view} under {warehouse.parent / 'runs'}, found {len(new)}")
    return new[0]


def run_summary(run_dir: Path) -> dict:
    """pass@1 by role (per program, and per function: each function once), steps, training seconds, examples/s."""
    cfg = json.loads((run_dir / "config.json").read_text())
    state = json.loads((run_dir / "state.json").read_text())
    scores = json.loads((run_dir / "evals" / cfg["data"]["view"] / "scores.json").read_text())["scores"]
    steps, seconds = int(state["steps"]), float(state.get("train_time_s") or state["wall_time_s"])
    return {"run_id": run_dir.name, "arch": cfg["model"].get("arch", "grid64"), "size": cfg["model"]["size"],
            "steps": steps, "train_s": seconds, "train_cpu_s": state.get("train_cpu_s"),
            "examples_per_s": steps * cfg["data"]["batch_size"] / seconds,
            **{f"{role}_pass@1": sc.get("pass@1") for role, sc in scores.items()},
            **{f"{role}_fn_pass@1": v for role, v in function_pass_at_1(run_dir, cfg["data"]["view"]).items()},
            "run_dir": str(run_dir)}


def function_pass_at_1(run_dir: Path, view: str) -> dict[str, float]:
    """Greedy pass@1 averaged over each role's distinct functions (a common function counts once)."""
    import duckdb
    import numpy as np

    snap = run_dir / "snapshot"
    fid = np.load(snap / "function_id.npy")[np.load(snap / "function_index.npy")]
    pid = np.load(snap / "program_id.npy")
    con = duckdb.connect()
    try:
        con.register("fn", {"program_id": pid.astype(np.int64), "function_id": fid.astype(np.int64)})
        rows = con.execute(
            "SELECT role, avg(p) FROM (SELECT role, function_id, avg(passed::INT) AS p FROM read_parquet(?) "
            "JOIN fn USING (program_id) WHERE decoding = 'greedy' GROUP BY ALL) GROUP BY role",
            [str(run_dir / "evals" / view / "predictions.parquet")]).fetchall()
    finally:
        con.close()
    return {role: round(float(v), 4) for role, v in rows}


def decode_rate(model, values, shown, arity, samples: int, use_cache: bool, repeats: int = 1) -> float:
    """Tasks/s of sampled, constrained decoding of ``values`` (B tasks) x ``samples``."""
    import torch

    best = float("inf")
    for _ in range(repeats):
        g = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        model.generate(values, shown, num_samples=samples, temperature=1.0, arity=arity, generator=g,
                       use_cache=use_cache)
        best = min(best, time.perf_counter() - start)
    return len(values) / best


# ------------------------------------------------------------------------- curves


def curves(args) -> list[dict]:
    warehouse = build_warehouse(args.warehouse or Path(tempfile.mkdtemp(prefix="gensynth-learning-")) / "w3.duckdb")
    jobs = [(c.split(":")[0], c.split(":")[1] if ":" in c else None, float(m))
            for c in args.configs.split(",") for m in args.minutes.split(",")]
    results, running = [], []
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        for arch, size, minutes in jobs:
            running.append(((arch, size, minutes), pool.submit(train_once, warehouse, args.view, arch, size, minutes,
                                                                args.eval_limit)))
        for (arch, size, minutes), future in running:
            r = {**future.result(), "minutes": minutes}
            r["decode_tasks_per_s"] = decode_tasks_per_s(Path(r["run_dir"]))
            results.append(r)
            print(json.dumps(r), flush=True)
    print_curves(results)
    if args.png:
        draw_curves(results, args.png)
    return results


def decode_tasks_per_s(run_dir: Path, tasks: int = 256) -> float:
    """Greedy constrained decoding tasks/s of a run's model on its test_id functions (1 thread)."""
    import numpy as np
    import torch

    from gensynth.learning.rundirs import load_model
    from gensynth.learning.snapshot import Snapshot

    torch.set_num_threads(1)
    model, _, arity = load_model(run_dir)
    snap = Snapshot.load(run_dir / "snapshot")
    role = "test_id" if "test_id" in snap.roles else "train"
    funcs = np.unique(np.asarray(snap.function_index[snap.role_slice(role)]))[:tasks]
    values = torch.from_numpy(np.asarray(snap.values[funcs]))
    shown = torch.ones_like(values, dtype=torch.bool)
    start = time.perf_counter()
    model.generate(values, shown, arity=arity)
    return len(funcs) / (time.perf_counter() - start)


def print_curves(results: list[dict]) -> None:
    print(f"\nmachine: {machine()}; view {VIEW}")
    print(f"{'arch':>7} {'size':>6} {'min':>5} {'steps':>7} {'ex/s':>7} {'test_id':>8} {'test_ood':>9} {'decode t/s':>11}")
    for r in sorted(results, key=lambda r: (r["arch"], r["size"], r["minutes"])):
        print(f"{r['arch']:>7} {r['size']:>6} {r['minutes']:>5g} {r['steps']:>7} {r['examples_per_s']:>7.0f} "
              f"{r.get('test_id_pass@1') or 0:>8.3f} {r.get('test_ood_pass@1') or 0:>9.3f} {r['decode_tasks_per_s']:>11.0f}")


def draw_curves(results: list[dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, role in zip(axes, ("test_id", "test_ood")):
        for key in sorted({(r["arch"], r["size"]) for r in results}):
            pts = sorted((r["minutes"], r.get(f"{role}_pass@1") or 0) for r in results if (r["arch"], r["size"]) == key)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{key[0]} {key[1]}")
        ax.set_title(f"{role} pass@1, {VIEW}")
        ax.set_xlabel("training minutes (1 thread)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("pass@1")
    axes[0].legend()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    print(f"wrote {png}")


# ------------------------------------------------------------------------- decode


def decode(args) -> None:
    import itertools

    import torch

    from models import registry

    torch.set_num_threads(1)
    grid = tuple(itertools.product([-2 + 4 * i / 7 for i in range(8)], repeat=2))
    g = torch.Generator().manual_seed(0)
    values = torch.randn(args.tasks, 64, generator=g) * 3
    shown = torch.ones_like(values, dtype=torch.bool)
    arity = torch.tensor([-1, -1, -1, 0, 0, 0, 0, 0, 2, 2, 2, 2])
    print(f"machine: {machine()}; {args.tasks} tasks x {args.samples} samples, 1 thread, max_len 9")
    print(f"{'arch':>7} {'size':>6} {'params':>10} {'cached t/s':>11} {'uncached t/s':>13} {'today t/s':>10} {'speed-up':>9}")
    for config in args.configs.split(","):
        arch, size = config.split(":")
        entry = registry.get(arch)
        torch.manual_seed(0)
        cfg = entry.config(size, vocab_size=12, n_points=64, max_len=9, **({"grid": grid} if entry.grid_input else {}))
        model = entry.build(cfg).eval()
        cached = decode_rate(model, values, shown, arity, args.samples, True, args.repeats)
        uncached = decode_rate(model, values, shown, arity, args.samples, False, args.repeats)
        today = baseline_decode_rate(args, model, values, shown) if (args.baseline and arch == "grid64") else None
        ref = today or uncached
        print(f"{arch:>7} {size:>6} {model.num_params():>10,} {cached:>11.0f} {uncached:>13.0f} "
              f"{'-' if today is None else f'{today:.0f}':>10} {cached / ref:>8.1f}x")


def baseline_decode_rate(args, model, values, shown) -> float:
    """Tasks/s of the same grid64 weights decoded by the code in ``args.baseline`` (its own venv)."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        torch.save({"state": model.state_dict(), "config": model.config.__dict__, "values": values,
                    "shown": shown}, Path(tmp) / "m.pt")
        code = f"""
import sys, time, json, torch
sys.path.insert(0, {str(args.baseline)!r})
torch.set_num_threads(1)
from models.pbe_transformer import PBETransformer, ModelConfig
d = torch.load({str(Path(tmp) / 'm.pt')!r}, weights_only=False)
m = PBETransformer(ModelConfig(**d["config"])); m.load_state_dict(d["state"]); m.eval()
arity = torch.tensor([-1, -1, -1, 0, 0, 0, 0, 0, 2, 2, 2, 2])
best = 1e9
for _ in range({args.repeats}):
    g = torch.Generator().manual_seed(0); t = time.perf_counter()
    m.generate(d["values"], d["shown"], num_samples={args.samples}, temperature=1.0, arity=arity, generator=g)
    best = min(best, time.perf_counter() - t)
print(json.dumps(len(d["values"]) / best))
"""
        python = Path(args.baseline) / ".venv" / "bin" / "python"
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        return float(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------ compare

BASELINE_TIMER = """
import json, sys, time
import lightning.pytorch as pl
from lightning.pytorch.callbacks import Timer
fit = pl.Trainer.fit
def timed(self, *a, **k):
    timer = Timer(None)
    self.callbacks.append(timer)
    cpu = time.process_time()
    try:
        return fit(self, *a, **k)
    finally:
        print("BASELINE_TRAIN_SECONDS " + json.dumps(timer.time_elapsed("train")), file=sys.stderr, flush=True)
        print("BASELINE_TRAIN_CPU_SECONDS " + json.dumps(time.process_time() - cpu), file=sys.stderr, flush=True)
pl.Trainer.fit = timed
sys.argv = ["gensynth"] + sys.argv[1:]
from gensynth.cli import run
run()
"""


def baseline_once(args, view: str) -> dict:
    """nano, 3,500 steps at batch 256, 1 thread, with the baseline's code and warehouse; its training seconds."""
    python = Path(args.baseline) / ".venv" / "bin" / "python"
    wh = Path(args.baseline_warehouse)
    before = set((wh.parent / "runs").glob("*")) if (wh.parent / "runs").exists() else set()
    proc = subprocess.run([str(python), "-c", BASELINE_TIMER, "train", "--view", view, "--size", "nano",
                           "--max-steps", "3500", "--batch-size", "256", "--eval-limit", "2000", "-q", "-w", str(wh)],
                          cwd=args.baseline, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"baseline run failed:\n{proc.stderr[-2000:]}")
    marks = {line.split()[0]: float(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("BASELINE_TRAIN")}
    seconds = marks["BASELINE_TRAIN_SECONDS"]
    run_dir = new_run_dir(wh, before, view)
    return {**run_summary(run_dir), "train_s": seconds, "train_cpu_s": marks.get("BASELINE_TRAIN_CPU_SECONDS"),
            "examples_per_s": 3500 * 256 / seconds, "arch": "today nano"}


def compare(args) -> None:
    from concurrent.futures import ThreadPoolExecutor

    views = args.views.split(",")
    warehouse = Path(args.warehouse)
    minutes = {v: args.minutes for v in views} if args.minutes else {}
    todo = [v for v in views if v not in minutes]
    with ThreadPoolExecutor(max_workers=2) as pool:  # step 1: today's run (one per view, two at a time), to learn M
        for view, first in zip(todo, pool.map(lambda v: baseline_once(args, v), todo)):
            minutes[view] = first["train_s"] / 60
            print(f"{view}: today's nano (step 1): {json.dumps(first)}", flush=True)
    for view in views:  # step 2: side by side, one thread each
        with ThreadPoolExecutor(max_workers=2) as pool:
            old = pool.submit(baseline_once, args, view)
            new = pool.submit(train_once, warehouse, view, None, None, round(minutes[view], 3), 2000)
            old, new = old.result(), new.result()
        ratio = (new["test_id_pass@1"] or 0) / max(old["test_id_pass@1"] or 1e-9, 1e-9)
        print(f"\n{view}: M = {minutes[view]:.2f} min; machine: {machine()}")
        for r in (old, new):
            print(f"  {r['arch']:>10} {r['size']:>6}: {r['steps']:>6} steps in {r['train_s']:6.0f} s "
                  f"(CPU {r.get('train_cpu_s') or 0:6.0f} s) "
                  f"({r['examples_per_s']:5.0f} ex/s), test_id {r['test_id_pass@1']:.3f} "
                  f"(per function {r.get('test_id_fn_pass@1') or 0:.3f}), test_ood {r.get('test_ood_pass@1') or 0:.3f} "
                  f"(per function {r.get('test_ood_fn_pass@1') or 0:.3f})  ({r['run_id']})")
        print(f"  new / today test_id pass@1: {ratio:.2f}x (floor 1.5x, goal 2x)", flush=True)


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    c = sub.add_parser("curves", help="pass@1 after each time budget, per architecture and size")
    c.add_argument("--configs", default="grid64:nano,grid64:micro,lines:nano,lines:micro,lines:tiny")
    c.add_argument("--minutes", default="2,5,10")
    c.add_argument("--view", default=VIEW)
    c.add_argument("--eval-limit", type=int, default=2000)
    c.add_argument("--parallel", type=int, default=1)
    c.add_argument("--warehouse", type=Path, default=None, help="a max-ops-3 warehouse (default: build one)")
    c.add_argument("--png", type=Path, default=ROOT / "reports" / "learning" / "pass_at_1_vs_minutes.png")
    d = sub.add_parser("decode", help="decode tasks/s with and without the KV cache")
    d.add_argument("--configs", default="grid64:nano,grid64:micro,grid64:small,lines:nano,lines:micro,lines:small")
    d.add_argument("--tasks", type=int, default=256)
    d.add_argument("--samples", type=int, default=8)
    d.add_argument("--repeats", type=int, default=2)
    d.add_argument("--baseline", type=Path, default=None, help="a checkout of today's code with its .venv")
    m = sub.add_parser("compare", help="the new default vs today's nano at equal wall-clock, side by side")
    m.add_argument("--baseline", type=Path, required=True)
    m.add_argument("--baseline-warehouse", type=Path, required=True, help="a max-ops-3 warehouse built by the baseline")
    m.add_argument("--warehouse", type=Path, required=True, help="the same universe built by this code")
    m.add_argument("--views", default=VIEW)
    m.add_argument("--minutes", type=float, default=None, help="M, if already measured (skips the first baseline run)")
    args = parser.parse_args(argv)
    {"curves": curves, "decode": decode, "compare": compare}[args.part](args)


if __name__ == "__main__":
    main()
