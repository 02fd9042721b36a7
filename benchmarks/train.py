"""Benchmark: loader throughput vs training throughput per model size (``python -m benchmarks.train``).

Measures, on this machine:

* snapshot: examples/s reading a split view out of the warehouse into a run snapshot;
* loader: examples/s of the training DataLoader (shuffled, batched, from the snapshot);
* training: examples/s (and target tokens/s) of full optimizer steps for each size.

The loader must be at least 20x faster than the smallest model consumes examples, so
it is never what limits training. Numbers are printed, never asserted (they depend on
the machine and its load); copy them into the README with the machine's description.

Run from the repository root: ``python -m benchmarks.train``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tests.helpers import make_split_warehouse  # noqa: E402 (shared with the tests)


# -------------------------------------------------------------------------- benchmark


def _measure_loader(dm, seconds: float = 2.0) -> float:
    n = 0
    start = time.perf_counter()
    epoch = 0
    while time.perf_counter() - start < seconds:
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            n += len(batch["tokens"])
        epoch += 1
    return n / (time.perf_counter() - start)


def _measure_training(snapshot, size: str, batch_size: int, steps: int, seconds: float, warmup: int = 2,
                      arch: str = "grid64") -> tuple[float, float, int]:
    """Examples/s and target tokens/s of forward + backward + AdamW steps (at least ``steps`` and ``seconds``)."""
    import torch

    from gensynth.learning.snapshot import PAD, EpochBatchSampler, ExampleBatches
    from gensynth.universe.grammar import load_grammar
    from models import registry
    from models.lit import PBELitModule

    torch.manual_seed(0)
    grammar = load_grammar()
    entry = registry.get(arch)
    grid = {"grid": tuple(tuple(float(c) for c in p) for p in grammar.grid_points)} if entry.grid_input else {}
    cfg = entry.config(size, vocab_size=3 + len(grammar.symbols), n_points=snapshot.n_points, max_len=snapshot.seq_len,
                       **grid)
    module = PBELitModule(cfg, arch=arch, lr=1e-3, weight_decay=0.01, warmup_steps=1, max_steps=10_000)
    opt = module.configure_optimizers()["optimizer"]
    data = ExampleBatches(snapshot, "train")
    sampler = EpochBatchSampler(len(data), batch_size, seed=0)
    batches = [data[idx] for idx in sampler]

    def step(b):
        loss, _, _ = module._step(b, 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(warmup):
        step(batches[i % len(batches)])
    n_ex = tokens = done = 0
    start = time.perf_counter()
    while done < steps or time.perf_counter() - start < seconds:
        b = batches[done % len(batches)]
        step(b)
        done += 1
        n_ex += len(b["tokens"])
        tokens += int((b["tokens"][:, 1:] != PAD).sum())
    elapsed = time.perf_counter() - start
    return n_ex / elapsed, tokens / elapsed, module.model.num_params()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-ops", type=int, default=2, help="universe size (2: 4,105 programs; 3: 204,105)")
    parser.add_argument("--arch", default="grid64", help="an architecture of models/ (grid64, lines, ...)")
    parser.add_argument("--sizes", default="nano,micro,tiny,small,medium,large")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per size, at least")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per size, at least")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)

    import tempfile

    import torch

    from gensynth.learning.snapshot import SplitDataModule, check_split, read_snapshot
    from gensynth.results.ingest import connect_retrying

    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="gensynth-bench-"))
    wh = make_split_warehouse(work / "bench.duckdb", max_ops=args.max_ops, split="bench", roles=(("train", 100),))
    t0 = time.perf_counter()
    con = connect_retrying(wh, read_only=True)
    snap = read_snapshot(con, check_split(con, "split_bench"))
    con.close()
    snap.write(work / "snapshot")
    snap_rate = snap.meta["n_examples"] / (time.perf_counter() - t0)
    dm = SplitDataModule(work / "snapshot", batch_size=args.batch_size, seed=0)
    loader_rate = _measure_loader(dm)
    print(f"machine: {torch.get_num_threads()} torch threads; universe max-ops {args.max_ops}: "
          f"{snap.meta['n_examples']:,} train examples; batch {args.batch_size}")
    print(f"snapshot (warehouse -> run dir): {snap_rate:12,.0f} examples/s")
    print(f"loader   (snapshot -> batches):  {loader_rate:12,.0f} examples/s")
    print(f"architecture {args.arch}")
    print(f"{'size':>8} {'params':>12} {'train ex/s':>12} {'tokens/s':>12} {'loader / train':>15}")
    from gensynth.learning.snapshot import Snapshot

    snapshot = Snapshot.load(work / "snapshot")
    rates = {}
    for size in args.sizes.split(","):
        ex_s, tok_s, n = _measure_training(snapshot, size, args.batch_size, args.steps, args.seconds, arch=args.arch)
        rates[size] = ex_s
        print(f"{size:>8} {n:12,} {ex_s:12,.1f} {tok_s:12,.0f} {loader_rate / ex_s:14,.0f}x")
    smallest = args.sizes.split(",")[0]
    ratio = loader_rate / rates[smallest]
    print(f"loader / {smallest} training = {ratio:,.0f}x (requirement: >= 20x) -> {'OK' if ratio >= 20 else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
