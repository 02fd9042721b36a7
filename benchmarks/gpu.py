#!/usr/bin/env python
"""GPU training benchmark: tokens/s and model FLOPs utilisation (MFU) per architecture and size, in bf16.

Run it whenever a GPU machine is available (one GPU)::

    python benchmarks/gpu.py                      # every size of every architecture, bf16 autocast, batch 256
    python benchmarks/gpu.py --configs grid64:nano,lines:xl --batch-size 512 --json out.json
    python benchmarks/gpu.py --dry-run            # no GPU: a quick self-check on CPU (fp32, two small sizes)

For each architecture and size it times full optimizer steps (forward, backward, AdamW) on real batches
of a split, already on the GPU, and reports

* examples/s and target tokens/s (program symbols + EOS, no padding);
* achieved FLOP/s = models.flops.training_flops (each architecture's analytic formula, padded lengths) / time,
  and MFU = achieved / the card's dense bf16 peak (``--peak-tflops``, else looked up);
* the loader's examples/s (``gensynth.learning.snapshot``, from a run snapshot on the CPU) divided by
  the training examples/s: above 1 the loader keeps up, so the GPU numbers are the
  1-GPU throughput floor of a real run; end-to-end examples/s (loader feeding the GPU)
  is measured too.

Copy the table and the card's name into the README. ``--dry-run`` runs the same code on
CPU in float32 with two small sizes and a few steps, and checks that every number is
finite and positive: use it to check the script before spending GPU time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, matched against the device name.
PEAK_BF16_TFLOPS = {
    "H200": 989.0, "H100 SXM": 989.0, "H100 80GB HBM3": 989.0, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H100": 756.0,
    "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10G": 70.0, "RTX 4090": 165.0,
}


def peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    for key, value in PEAK_BF16_TFLOPS.items():  # most specific first
        if key in name:
            return value
    return None


def build_snapshot(work: Path, max_ops: int):
    """A warehouse of the default grammar with a split of every program as train, snapshotted."""
    from tests.helpers import make_split_warehouse
    from gensynth.learning.snapshot import Snapshot, check_split, read_snapshot
    from gensynth.results.ingest import connect_retrying

    wh = make_split_warehouse(work / "bench.duckdb", max_ops=max_ops, split="gpu", roles=(("train", 100),))
    con = connect_retrying(wh, read_only=True)
    try:
        snap = read_snapshot(con, check_split(con, "split_gpu"))
    finally:
        con.close()
    snap.write(work / "snapshot")
    return Snapshot.load(work / "snapshot")


def loader_rate(snapshot, batch_size: int, workers: int, seconds: float) -> float:
    from gensynth.learning.snapshot import SplitDataModule

    dm = SplitDataModule(Path("unused"), batch_size=batch_size, seed=0, num_workers=workers)
    dm.snapshot = snapshot
    n, epoch, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        loader = dm._loader("train", dm.train_sampler())
        loader.sampler.set_epoch(epoch)
        for b in loader:
            n += len(b["tokens"])
            if time.perf_counter() - start >= seconds:
                break
        epoch += 1
    return n / (time.perf_counter() - start)


def model_config(arch: str, size: str, vocab: int, snapshot, grid):
    from models import registry

    entry = registry.get(arch)
    return entry.config(size, vocab_size=vocab, n_points=snapshot.n_points, max_len=snapshot.seq_len,
                        **({"grid": grid} if entry.grid_input else {}))


def bench_size(arch: str, size: str, snapshot, vocab: int, grid, args, device, dtype, sync) -> dict:
    import torch

    from gensynth.learning.snapshot import PAD, EpochBatchSampler, ExampleBatches, SplitDataModule
    from models.flops import training_flops
    from models.lit import PBELitModule

    torch.manual_seed(0)
    cfg = model_config(arch, size, vocab, snapshot, grid)
    module = PBELitModule(cfg, arch=arch, lr=1e-3, weight_decay=0.01, warmup_steps=1, max_steps=10_000).to(device)
    opt = module.configure_optimizers()["optimizer"]
    model_step = torch.compile(module._step) if args.compile else module._step
    data = ExampleBatches(snapshot, "train")
    sampler = EpochBatchSampler(len(data), args.batch_size, seed=0)
    batches = []
    for epoch in range(10_000):
        sampler.set_epoch(epoch)
        for idx in sampler:
            batches.append({k: v.to(device, non_blocking=True) for k, v in data[idx].items()})
            if len(batches) == args.warmup + args.steps:
                break
        if len(batches) == args.warmup + args.steps:
            break

    def step(b):
        with torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss, _, _ = model_step(b, 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for b in batches[: args.warmup]:
        step(b)
    sync()
    start = time.perf_counter()
    for b in batches[args.warmup:]:
        loss = step(b)
    sync()
    elapsed = time.perf_counter() - start
    timed = batches[args.warmup:]
    examples = sum(len(b["tokens"]) for b in timed)
    tokens = sum(int((b["tokens"][:, 1:] != PAD).sum()) for b in timed)
    flops = training_flops(cfg, examples, dec_len=snapshot.seq_len - 1)

    # End to end: the real DataLoader (CPU workers) feeding the device.
    dm = SplitDataModule(Path("unused"), batch_size=args.batch_size, seed=0, num_workers=args.workers,
                         pin_memory=device.type == "cuda")
    dm.snapshot = snapshot
    loader = dm._loader("train", dm.train_sampler())
    n_e2e, it = 0, iter(loader)
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        b = {k: v.to(device, non_blocking=True) for k, v in b.items()}
        step(b)
        n_e2e += len(b["tokens"])
    sync()
    e2e = n_e2e / (time.perf_counter() - start)
    return {
        "arch": arch, "size": size, "params": module.model.num_params(), "examples_per_s": examples / elapsed,
        "tokens_per_s": tokens / elapsed, "tflops_per_s": flops / elapsed / 1e12, "e2e_examples_per_s": e2e,
        "final_loss": float(loss.detach().float().cpu()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tokens/s and MFU per architecture and size on one GPU (bf16).")
    parser.add_argument("--configs", default=None, help="ARCH:SIZE,... (default: every size of every architecture)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps per size")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--max-ops", type=int, default=3, help="universe of the benchmark split (3: 204,105 programs)")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers for the loader / end-to-end numbers")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the card's dense bf16 peak (default: looked up by name)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training step")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--dry-run", action="store_true",
                        help="no GPU: run on CPU in fp32 (grid64 and lines nano + micro, 3 steps, max-ops 2) and say so")
    args = parser.parse_args(argv)

    import torch

    from models import registry

    if args.configs is None:
        args.configs = ",".join(f"{a}:{s}" for a in registry.names() for s in registry.get(a).sizes)
    if args.dry_run:
        args.configs, args.steps, args.warmup, args.max_ops = "grid64:nano,grid64:micro,lines:nano,lines:micro", 3, 1, 2
        args.precision, args.batch_size, args.workers = "fp32", min(args.batch_size, 32), 0
        device = torch.device("cpu")
    else:
        if not torch.cuda.is_available():
            print("No CUDA device: run on a GPU machine, or use --dry-run to check the script on CPU.", file=sys.stderr)
            return 2
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = True
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    peak = peak_tflops(name, args.peak_tflops) if device.type == "cuda" else args.peak_tflops

    from gensynth.universe.grammar import load_grammar

    work = Path(tempfile.mkdtemp(prefix="gensynth-gpu-bench-"))
    snapshot = build_snapshot(work, args.max_ops)
    grammar = load_grammar()
    vocab = 3 + len(grammar.symbols)
    grid = tuple(tuple(float(c) for c in p) for p in grammar.grid_points)
    loader = loader_rate(snapshot, args.batch_size, args.workers, seconds=1.0 if args.dry_run else 5.0)
    if args.dry_run:
        print("DRY RUN ON CPU (no GPU): fp32, a few steps; these numbers say nothing about a GPU")
    print(f"device: {name}; precision {args.precision}; batch {args.batch_size}; peak {peak or '?'} TFLOP/s; "
          f"split: {snapshot.meta['n_examples']:,} examples (max-ops {args.max_ops})")
    print(f"loader ({args.workers} workers): {loader:,.0f} examples/s")
    header = f"{'arch':>7} {'size':>7} {'params':>11} {'ex/s':>10} {'tokens/s':>11} {'TFLOP/s':>8} {'MFU':>6} {'e2e ex/s':>10} {'loader/train':>12}"
    print(header)
    results = []
    for config in args.configs.split(","):
        arch, size = config.strip().split(":")
        r = bench_size(arch, size, snapshot, vocab, grid, args, device, dtype, sync)
        r["mfu"] = r["tflops_per_s"] / peak if peak else None
        r["loader_over_train"] = loader / r["examples_per_s"]
        results.append(r)
        mfu = f"{100 * r['mfu']:5.1f}%" if r["mfu"] is not None else "    ?"
        print(f"{r['arch']:>7} {r['size']:>7} {r['params']:>11,} {r['examples_per_s']:>10,.0f} {r['tokens_per_s']:>11,.0f} "
              f"{r['tflops_per_s']:>8.2f} {mfu:>6} {r['e2e_examples_per_s']:>10,.0f} {r['loader_over_train']:>11.1f}x")
    bound = [f"{r['arch']}:{r['size']}" for r in results if r["loader_over_train"] < 1]
    print("loader-bound sizes (the loader is slower than the GPU): " + (", ".join(bound) if bound else "none"))
    if args.json:
        args.json.write_text(json.dumps({"device": name, "precision": args.precision, "batch_size": args.batch_size,
                                         "peak_tflops": peak, "loader_examples_per_s": loader, "sizes": results}, indent=2))
    problems = [f"{r['arch']}:{r['size']}: {k}={r[k]}" for r in results for k in ("examples_per_s", "tokens_per_s", "tflops_per_s",
                                                                     "e2e_examples_per_s", "final_loss")
                if not (isinstance(r[k], float) and math.isfinite(r[k]) and r[k] > 0)]
    if problems:
        print("SELF-CHECK FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    if args.dry_run:
        print("dry run OK (CPU, not a GPU measurement): every number finite and positive")
    return 0


if __name__ == "__main__":
    sys.exit(main())
