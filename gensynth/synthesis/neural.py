"""Every model call of the synthesizers, in one place: load a trained run, sample, score.

The synthesizers use a trained model through two calls only, so that a model registry or
another architecture needs this module rewired and nothing else:

* ``gensynth.learning.predictions.decode(model, values, shown, arity, max_len, n, temperature,
  generator, batch_size, device)`` — sampled programs with their log-probabilities;
* ``model(values, shown, tokens) -> logits (B, T, V)`` — teacher-forced next-token scores.

Token ids: PAD=0, BOS=1, EOS=2, grammar symbols from 3 (``models.blocks``). The model is
loaded by ``gensynth.learning.rundirs.load_model``, so every registered architecture works.
torch is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from gensynth.errors import GensynthError

N_SPECIAL, BOS, EOS = 3, 1, 2


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def preorder(tree: tuple) -> list[int]:
    """Symbols of a tree in prefix (token) order."""
    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        out.append(int(node[0]))
        stack.extend(reversed(node[1:]))
    return out


class Proposer:
    """A trained run's model, ready to sample and score programs for the synthesizers."""

    def __init__(self, run_dir: Path, seed: int, temperature: float) -> None:
        import torch

        from gensynth.learning.records import run_row
        from gensynth.learning.rundirs import load_model

        started = time.perf_counter()
        self.run_id = run_dir.name
        self.model, self.grammar, self.arity = load_model(run_dir)  # any registered architecture
        self.max_len = int(self.model.config.max_len)
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.temperature = temperature
        row = run_row(run_dir)
        self.arch, self.size, self.n_params = str(row.get("arch") or "grid64"), str(row["size"]), int(row["n_params"])
        self.config = _read_json(run_dir / "config.json")
        self.load_seconds = time.perf_counter() - started

    def reseed(self, task_id: int) -> None:
        """Sampling depends on the run's seed and the task only, not on the tasks before it."""
        self.generator.manual_seed(int(self.seed) * 1_000_003 + int(task_id))

    @staticmethod
    def _inputs(outputs: np.ndarray, shown: np.ndarray):
        # NaN marks an undefined point (the model has a feature for it); hidden points are masked out.
        values = np.where(shown, outputs, 0.0).astype(np.float32)[None, :]
        return values, shown[None, :].astype(bool)

    def sample(self, outputs: np.ndarray, shown: np.ndarray, n: int) -> tuple[list[tuple | None], np.ndarray]:
        """``n`` sampled programs in sampling order, duplicates kept (None: not a program), and their log-probs."""
        from gensynth.learning.predictions import decode, tokens_to_text
        from gensynth.universe.syntax import ParseError, parse_prefix

        values, mask = self._inputs(outputs, shown)
        tokens, logprob = decode(self.model, values, mask, self.arity, self.max_len, n, self.temperature,
                                 self.generator, 1, "cpu")
        texts, closed = tokens_to_text(tokens[0], self.grammar)
        trees: list[tuple | None] = []
        for text, ok in zip(texts, closed):
            try:
                trees.append(parse_prefix(text, self.grammar) if ok else None)
            except ParseError:
                trees.append(None)
        return trees[:n], logprob[0][:n]

    def token_logprobs(self, outputs: np.ndarray, shown: np.ndarray, trees: list[tuple]) -> list[np.ndarray]:
        """log P(token | examples, tokens before it) of each tree's prefix tokens (teacher forcing, one forward pass)."""
        import torch

        if not trees:
            return []
        seqs = [[sym + N_SPECIAL for sym in preorder(tree)] for tree in trees]
        width = min(max(len(q) for q in seqs) + 1, self.max_len)
        tokens = np.zeros((len(seqs), width), np.int64)  # BOS, symbols..., PAD
        for i, q in enumerate(seqs):
            q = q[: width - 1]
            tokens[i, 0] = BOS
            tokens[i, 1: 1 + len(q)] = q
        values, mask = self._inputs(outputs, shown)
        with torch.no_grad():
            v = torch.from_numpy(values).expand(len(seqs), -1)
            m = torch.from_numpy(mask).expand(len(seqs), -1)
            logits = self.model(v, m, torch.from_numpy(tokens))  # (B, T, V): position t predicts token t + 1
            logp = torch.log_softmax(logits.float(), dim=-1).numpy()
        out = []
        for i, q in enumerate(seqs):
            n = min(len(q), width - 1)
            out.append(np.array([logp[i, t, tokens[i, t + 1]] for t in range(n)], np.float64))
        return out


def load_proposer(warehouse_runs: Path, run_id: str, seed: int, temperature: float) -> Proposer:
    """The model of training run ``run_id`` under the warehouse's runs directory."""
    run_dir = Path(warehouse_runs) / run_id
    if not (run_dir / "config.json").is_file():
        raise GensynthError(f"No training run '{run_id}' in '{warehouse_runs}'; see `gensynth runs list`.")
    if "data" not in _read_json(run_dir / "config.json"):
        raise GensynthError(f"Run {run_id} is not a training run (it has no model); pass a run of `gensynth train`.")
    return Proposer(run_dir, seed, temperature)
