"""How the second architecture and the trainer's defaults were chosen (``python -m benchmarks.arch_search``).

Each candidate trains for the same budget of *process CPU seconds* at one thread (on a
machine shared with other jobs, CPU time is what both sides of a comparison really
get; wall-clock would measure the neighbours), on ``split_support_syntactic`` of a
max-ops-3 warehouse, with AdamW, warmup and the schedule over the budget, gradient
clipping 1.0; then greedy constrained decoding scores test_id / test_ood / train
pass@1 on a seeded subset. One JSON line per candidate is printed (and appended to
``--out``). Candidates:

* registered architectures by name (``grid64``, ``lines``) and size;
* ``set``: a set / perceiver-style encoder over (x, y, value) triples: a per-point MLP
  over value and coordinate features, K latents cross-attending to the points once, then
  self-attention among the latents (defined here; it lost, so it is not registered);
* ``flat``: every point's features flattened through an MLP into M memory slots (here too).

Example (the measured sweep in the README)::

    nice -n 10 python -m benchmarks.arch_search --warehouse w3.duckdb --arch lines --size micro --lr 1e-3
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.blocks import MLP, N_SPECIAL, N_VALUE_FEATURES, PAD, Attention, EncoderBlock, value_features
from models.decoder import PrefixDecoder


# --------------------------------------------------------------- unregistered candidates


def gpt2_init(model: nn.Module, n_branches: int) -> None:
    """N(0, 0.02) weights, zero biases, residual output projections scaled by 1/sqrt(#branches) (as the registered ones)."""
    from models.lines import LinesTransformer

    model.apply(LinesTransformer._init_weights)
    for name, p in model.named_parameters():
        if name.endswith(".proj.weight"):
            nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(n_branches))


def coordinate_features(c: torch.Tensor) -> torch.Tensor:
    """(..., D) coordinates in [-2, 2] -> raw / 2 and sin / cos at 4 frequencies, (..., 9 D)."""
    ws = [math.pi * 2.0 ** k for k in range(-2, 2)]
    return torch.cat([c / 2, *[f(c * w) for w in ws for f in (torch.sin, torch.cos)]], dim=-1)


class SetEncoder(PrefixDecoder, nn.Module):
    """Per-point MLP over (value features, coordinate features); K latents cross-attend; latent self-attention."""

    def __init__(self, vocab: int, grid, d_model=64, n_heads=4, n_enc=2, n_dec=2, d_ff=256, latents=8, max_len=12):
        super().__init__()
        self.register_buffer("coords", torch.tensor(grid, dtype=torch.float32))
        C = d_model
        self.point_in = nn.Linear(N_VALUE_FEATURES + coordinate_features(self.coords[:1]).shape[-1], C)
        self.point_mlp = MLP(C, 2 * C)
        self.ln_points = nn.LayerNorm(C)
        self.latents = nn.Parameter(torch.randn(1, latents, C) * 0.02)
        self.cross = Attention(C, n_heads)
        self.ln_q = nn.LayerNorm(C)
        self.encoder = nn.ModuleList(EncoderBlock(C, n_heads, d_ff) for _ in range(n_enc))
        self.ln_enc = nn.LayerNorm(C)
        self._init_decoder(vocab, C, n_heads, n_dec, d_ff, max_len, 0.0)
        gpt2_init(self, 2 * n_enc + 3 * n_dec + 2)
        nn.init.normal_(self.latents, std=0.02)

    def encode(self, values, shown):
        B, P = values.shape
        shown = shown.bool()
        h = self.point_in(torch.cat([value_features(values.masked_fill(~shown, 0.0)).float(),
                                     coordinate_features(self.coords).expand(B, P, -1)], dim=-1))
        h = self.ln_points(h + self.point_mlp(h))  # (B, P, C)
        lat = self.latents.expand(B, -1, -1)
        x = lat + self.cross(self.ln_q(lat), h, keep=shown)  # (B, K, C): each latent pools the points once
        for block in self.encoder:
            x = block(x, None)
        return self.ln_enc(x), None


class FlatEncoder(PrefixDecoder, nn.Module):
    """All points' features flattened -> MLP -> M memory slots."""

    def __init__(self, vocab: int, grid, d_model=64, n_heads=4, n_dec=2, d_ff=256, slots=8, hidden=256, max_len=12):
        super().__init__()
        self.slots, self.d_model = slots, d_model
        self.fc1 = nn.Linear(len(grid) * (N_VALUE_FEATURES + 1), hidden)
        self.fc2 = nn.Linear(hidden, slots * d_model)
        self.ln_enc = nn.LayerNorm(d_model)
        self._init_decoder(vocab, d_model, n_heads, n_dec, d_ff, max_len, 0.0)
        gpt2_init(self, 3 * n_dec)

    def encode(self, values, shown):
        shown = shown.bool()
        f = torch.cat([value_features(values.masked_fill(~shown, 0.0)).float(), shown.float()[..., None]], -1)
        x = self.fc2(F.gelu(self.fc1(f.flatten(1)))).view(len(values), self.slots, self.d_model)
        return self.ln_enc(x), None


def build(arch: str, size: str, vocab: int, grid, kw: dict):
    if arch == "set":
        return SetEncoder(vocab, grid, **kw)
    if arch == "flat":
        return FlatEncoder(vocab, grid, **kw)
    from models import registry

    entry = registry.get(arch)
    extra = {"grid": grid} if entry.grid_input else {}
    return entry.build(entry.config(size, vocab_size=vocab, n_points=len(grid), max_len=12, **extra, **kw))


# ------------------------------------------------------------------------- the loop


def schedule(step: int, frac: float, warmup: int, kind: str) -> float:
    w = min(1.0, (step + 1) / warmup)
    if kind == "cosine":
        return w * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
    if kind == "linear":
        return w * max(0.0, 1 - frac)
    return w


def train(model, snap, args) -> dict:
    """Train until ``args.seconds`` of process CPU time; returns steps, examples/s, last loss."""
    tr = snap.role_slice("train")
    values = torch.from_numpy(np.asarray(snap.values))
    fidx = np.asarray(snap.function_index[tr])
    source = snap.smallest_tokens if args.targets == "canonical" else snap.tokens
    tokens = torch.from_numpy(np.asarray(source, dtype=np.int64))
    tokens = tokens[fidx] if args.targets == "canonical" else tokens[tr]
    params = list(model.parameters())
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.01},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    rng = np.random.default_rng(args.seed)
    shown = torch.ones(args.batch, values.shape[1], dtype=torch.bool)
    perm, pos, step, losses = rng.permutation(len(fidx)), 0, 0, []
    start = time.process_time()
    while (frac := (time.process_time() - start) / args.seconds) < 1:
        if pos + args.batch > len(fidx):
            perm, pos = rng.permutation(len(fidx)), 0
        idx = perm[pos: pos + args.batch]
        pos += args.batch
        for g in opt.param_groups:
            g["lr"] = args.lr * schedule(step, frac, args.warmup, args.schedule)
        model.train()
        t = tokens[idx]
        logits = model(values[fidx[idx]], shown[: len(idx)], t[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), t[:, 1:].flatten(), ignore_index=PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        losses.append(loss.item())
    seconds = time.process_time() - start
    return {"steps": step, "cpu_s": round(seconds, 1), "examples_per_cpu_s": round(step * args.batch / seconds),
            "final_loss": round(float(np.mean(losses[-50:])), 4)}


def score(model, snap, grammar, role: str, limit: int) -> tuple[float, float]:
    """Greedy constrained pass@1 on a seeded subset of ``role``: per program, and per function (each once)."""
    from gensynth.learning.predictions import Checker, offgrid_points, tokens_to_text

    sl = snap.role_slice(role)
    rows = np.arange(sl.start, sl.stop)
    if len(rows) > limit:
        rows = np.sort(np.random.default_rng([0, 0x5EB]).choice(rows, limit, replace=False))
    funcs, inv = np.unique(np.asarray(snap.function_index[rows]), return_inverse=True)
    values = torch.from_numpy(np.asarray(snap.values[funcs]))
    arity = torch.tensor([-1] * N_SPECIAL + list(grammar.arities))
    model.eval()
    tok, _ = model.generate(values, torch.ones_like(values, dtype=torch.bool), max_len=snap.seq_len, arity=arity)
    texts, closed = tokens_to_text(tok[:, 0].numpy(), grammar)
    checker = Checker(grammar, offgrid_points(grammar, 8, 0))
    _, passed, _ = checker.check(texts, closed, np.asarray(snap.value_hash[funcs]), np.zeros((len(funcs), 8)))
    return round(float(passed[inv].mean()), 4), round(float(passed.mean()), 4)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--warehouse", type=Path, required=True, help="a max-ops-3 warehouse")
    p.add_argument("--view", default="split_support_syntactic")
    p.add_argument("--arch", default="lines", help="a registered architecture, or set / flat")
    p.add_argument("--size", default="micro")
    p.add_argument("--kw", default="{}", help="JSON: config overrides (registered) or constructor arguments")
    p.add_argument("--seconds", type=float, default=200, help="process CPU seconds of training")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--schedule", default="cosine", choices=("cosine", "linear", "constant"))
    p.add_argument("--targets", default="programs", choices=("programs", "canonical"))
    p.add_argument("--eval-limit", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="append the JSON line here too")
    args = p.parse_args(argv)

    import tempfile

    from gensynth.learning.snapshot import Snapshot, check_split, read_snapshot
    from gensynth.universe.grammar import grammar_from_meta
    from gensynth.warehouse import connect

    torch.set_num_threads(1)
    con = connect(args.warehouse, read_only=True)
    grammar = grammar_from_meta(con)
    snap_dir = Path(tempfile.mkdtemp(prefix="arch-search-")) / "snapshot"
    read_snapshot(con, check_split(con, args.view)).write(snap_dir)
    con.close()
    snap = Snapshot.load(snap_dir, mmap=False)
    grid = tuple(tuple(float(c) for c in point) for point in grammar.grid_points)
    torch.manual_seed(args.seed)
    model = build(args.arch, args.size, 3 + len(grammar.symbols), grid, json.loads(args.kw))
    result = {"arch": args.arch, "size": args.size, "kw": json.loads(args.kw), "params": sum(q.numel() for q in model.parameters()),
              "lr": args.lr, "batch": args.batch, "schedule": args.schedule, "targets": args.targets,
              **train(model, snap, args)}
    for role in ("test_id", "test_ood", "train"):
        if role in snap.roles:
            result[role], result[f"{role}_fn"] = score(model, snap, grammar, role, args.eval_limit)
    print(json.dumps(result), flush=True)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
