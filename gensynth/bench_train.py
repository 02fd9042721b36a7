"""Benchmark: loader throughput vs training throughput per model size (``python -m gensynth.bench_train``).

Measures, on this machine:

* snapshot: examples/s reading a split view out of the warehouse into a run snapshot;
* loader: examples/s of the training DataLoader (shuffled, batched, from the snapshot);
* training: examples/s (and target tokens/s) of full optimizer steps for each size.

The loader must be at least 20x faster than the smallest model consumes examples, so
it is never what limits training. Numbers are printed, never asserted (they depend on
the machine and its load); copy them into the README with the machine's description.

Also home of ``make_split_warehouse``: a small warehouse with a registered random split,
used by this benchmark and by the training tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import time
from pathlib import Path

SPLIT_ROLES = (("train", 70), ("val", 10), ("test_id", 20))  # role, percent of programs


def make_split_warehouse(path: Path, max_ops: int = 2, split: str = "tiny", roles=SPLIT_ROLES, seed: int = 7,
                         with_embeddings: bool = True) -> Path:
    """Build a warehouse (no manifolds) and add a registered split ``split_<split>``.

    Programs go to roles by ``hash(program_id, seed) % 100`` in the given percentages.
    Without real manifolds the table ``syn_coords`` is created empty (training only
    checks that embeddings exist), unless ``with_embeddings`` is False.
    """
    from gensynth.build import build_warehouse
    from gensynth.grammar import load_grammar
    from gensynth.warehouse import connect

    path = Path(path)
    build_warehouse(load_grammar(), max_ops, path, quiet=True)
    con = connect(path)
    try:
        has = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
        if with_embeddings and "syn_coords" not in has:
            con.execute("CREATE TABLE syn_coords (program_id INTEGER, syn FLOAT[16])")
        add_split(con, split, roles, seed)
    finally:
        con.close()
    return path


def add_split(con, name: str, roles=SPLIT_ROLES, seed: int = 7, where: str = "TRUE") -> str:
    """Create view split_<name> over programs (roles by hashed percentages) and register it."""
    cases, low = [], 0
    for role, pct in roles:
        cases.append(f"WHEN hash(program_id, {seed}) % 100 < {low + pct} THEN '{role}'")
        low += pct
    sql = f"SELECT program_id, CASE {' '.join(cases)} END AS role FROM programs WHERE {where}"
    con.execute(f"CREATE OR REPLACE VIEW split_{name} AS SELECT * FROM ({sql}) WHERE role IS NOT NULL")
    register_split(con, name, sql)
    return f"split_{name}"


def register_split(con, name: str, sql: str) -> None:
    """Add a row to ``splits`` (created with minimal columns if missing; other NOT NULL columns get neutral values)."""
    has = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'splits'").fetchone()[0]
    if not has:
        con.execute("CREATE TABLE splits (name VARCHAR PRIMARY KEY, kind VARCHAR, sql VARCHAR, sql_hash VARCHAR, created_at TIMESTAMPTZ)")
    given = {"name": name, "kind": "density", "sql": sql, "sql_text": sql,
             "sql_hash": hashlib.sha256(sql.encode()).hexdigest(), "created_at": dt.datetime.now(dt.timezone.utc),
             "description": f"test split {name}", "source": "test", "roles": "{}", "notes": ""}
    cols = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'splits'").fetchall()
    values = [given.get(c, "" if "CHAR" in t else None) for c, t in cols]
    con.execute("DELETE FROM splits WHERE name = ?", [name])
    con.execute(f"INSERT INTO splits ({', '.join(c for c, _ in cols)}) VALUES ({', '.join('?' * len(cols))})", values)


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


def _measure_training(snapshot, size: str, batch_size: int, steps: int, seconds: float, warmup: int = 2) -> tuple[float, float, int]:
    """Examples/s and target tokens/s of forward + backward + AdamW steps (at least ``steps`` and ``seconds``)."""
    import torch

    from gensynth.data import PAD, EpochBatchSampler, ExampleBatches
    from gensynth.grammar import load_grammar
    from models.lit import PBELitModule
    from models.pbe_transformer import config_for

    torch.manual_seed(0)
    cfg = config_for(size, vocab_size=3 + len(load_grammar().symbols), n_points=snapshot.n_points, max_len=snapshot.seq_len)
    module = PBELitModule(cfg, lr=1e-3, weight_decay=0.01, warmup_steps=1, max_steps=10_000)
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
    parser.add_argument("--sizes", default="nano,micro,tiny,small,medium,large")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per size, at least")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per size, at least")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)

    import tempfile

    import torch

    from gensynth.data import SplitDataModule, check_split, read_snapshot
    from gensynth.results import connect_retrying

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
    print(f"{'size':>8} {'params':>12} {'train ex/s':>12} {'tokens/s':>12} {'loader / train':>15}")
    from gensynth.data import Snapshot

    snapshot = Snapshot.load(work / "snapshot")
    rates = {}
    for size in args.sizes.split(","):
        ex_s, tok_s, n = _measure_training(snapshot, size, args.batch_size, args.steps, args.seconds)
        rates[size] = ex_s
        print(f"{size:>8} {n:12,} {ex_s:12,.1f} {tok_s:12,.0f} {loader_rate / ex_s:14,.0f}x")
    smallest = args.sizes.split(",")[0]
    ratio = loader_rate / rates[smallest]
    print(f"loader / {smallest} training = {ratio:,.0f}x (requirement: >= 20x) -> {'OK' if ratio >= 20 else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
