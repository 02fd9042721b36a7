"""Evaluation: decode programs for a split's roles and check them by execution.

For every program of a role the model reads its function's outputs (the shown grid
points) and writes a program. Programs of one function give the model the same input,
so each function is decoded once per role and its predictions recorded for each of its
programs (greedy decoding is deterministic; samples of one input are exchangeable).

A prediction

* ``parsed``: is a well-formed prefix program of the grammar (constrained decoding makes
  this nearly certain; the flag stays honest for unconstrained decoding);
* ``passed``: parsed, and its exact values on the grid equal the target function's
  (``functions.value_hash`` of the exact outputs, the same test that built the semantic
  classes: no tolerance; undefined where the target is undefined);
* ``exact_match``: is the target program's text;
* ``offgrid_passed``: parsed, and agrees with the target function's smallest program at
  ``offgrid_points`` random points off the grid (float64, relative tolerance 1e-9 with
  an absolute floor of 1e-12; two non-finite values agree, a finite and a non-finite do
  not). ``passed and not offgrid_passed`` flags grid aliasing: right on the grid,
  another function elsewhere.

Greedy decoding gives pass@1; ``samples`` draws at a temperature give the unbiased
pass@k of Chen et al. 2021 (``models.pass_at_k``) for each requested k <= samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from gensynth.learning.snapshot import BOS, EOS, N_SPECIAL, Snapshot, shown_mask
from gensynth.errors import GensynthError
from gensynth.universe.functions import row_hashes
from gensynth.universe.grammar import Grammar
from gensynth.universe.syntax import ParseError, evaluate_float, evaluate_trees, parse_prefix

RTOL, ATOL = 1e-9, 1e-12


@dataclass(frozen=True)
class EvalSettings:
    """How a trained model is evaluated (recorded in the run's config)."""

    roles: tuple[str, ...] | None = None
    """Roles to evaluate; None = every role of the view."""
    samples: int = 0
    """Sampled programs per task (0 = greedy only). Needed for pass@k with k > 1."""
    k: tuple[int, ...] = (1,)
    """k values for sampled pass@k (each <= samples); greedy always gives pass@1."""
    temperature: float = 1.0
    """Sampling temperature (> 0)."""
    offgrid_points: int = 32
    """Random points off the grid for the aliasing check."""
    seed: int = 0
    """Seeds the samples and the off-grid points."""
    batch_size: int = 256
    """Functions decoded at once."""
    limit: int | None = None
    """At most this many programs per role (a seeded random subset); None = all."""

    def __post_init__(self):
        problems = []
        if self.samples < 0:
            problems.append(f"--samples must be >= 0, got {self.samples}")
        if any(k < 1 for k in self.k):
            problems.append(f"--k values must be >= 1, got {list(self.k)}")
        elif self.samples and max(self.k) > self.samples:
            problems.append(f"--k {max(self.k)} needs at least that many --samples (got {self.samples})")
        elif not self.samples and any(k > 1 for k in self.k):
            problems.append(f"--k {max(self.k)} needs --samples N with N >= {max(self.k)} (greedy decoding gives pass@1 only)")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            problems.append(f"--temperature must be a finite number > 0, got {self.temperature}")
        if not 0 <= self.seed <= 2**32 - 1:
            problems.append(f"the evaluation seed must be in [0, 2**32 - 1], got {self.seed}")
        if self.offgrid_points < 1:
            problems.append(f"offgrid_points must be >= 1, got {self.offgrid_points}")
        if self.batch_size < 1:
            problems.append(f"eval batch size must be >= 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            problems.append(f"--eval-limit must be >= 1, got {self.limit}")
        if problems:
            raise GensynthError("Invalid evaluation settings: " + "; ".join(problems) + ".")


@dataclass
class RoleResult:
    """Predictions (column arrays, one row per program and sample) and scores of one role."""

    role: str
    columns: dict[str, np.ndarray]
    scores: dict[str, float | None] = field(default_factory=dict)


# ------------------------------------------------------------------------ checking


def offgrid_points(grammar: Grammar, n: int, seed: int) -> np.ndarray:
    """(n, n_vars) float64 points drawn uniformly from the grid's bounding box (seeded)."""
    rng = np.random.default_rng([seed, 0x0FF6])
    lo = [float(min(a)) for a in grammar.grid_axes]
    hi = [float(max(a)) for a in grammar.grid_axes]
    return rng.uniform(lo, hi, size=(n, len(lo)))


def tokens_to_text(tokens: np.ndarray, grammar: Grammar) -> tuple[list[str], np.ndarray]:
    """Prefix text of generated token rows (B, T), and whether each closed with EOS.

    The text is the symbols between BOS and the first EOS (special tokens elsewhere make
    a text the parser rejects).
    """
    symbols = grammar.symbols
    texts, closed = [], np.zeros(len(tokens), bool)
    for i, row in enumerate(tokens.tolist()):
        body = row[1:] if row and row[0] == BOS else row
        if EOS in body:
            body = body[: body.index(EOS)]
            closed[i] = True
        texts.append(" ".join(symbols[t - N_SPECIAL] if t >= N_SPECIAL else "<special>" for t in body))
    return texts, closed


class Checker:
    """Checks predicted texts against target functions, exactly on the grid and off it."""

    def __init__(self, grammar: Grammar, points: np.ndarray):
        self.grammar, self.points = grammar, points

    def check(self, texts: list[str], closed: np.ndarray, target_hash: np.ndarray,
              target_offgrid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """parsed, passed, offgrid_passed for each (text, target) pair.

        ``target_hash`` (n,) int64 is each pair's functions.value_hash; ``target_offgrid``
        (n, Q) the target's float64 values at the off-grid points.
        """
        n = len(texts)
        uniq, inverse = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True) if n else ([], np.zeros(0, int))
        trees, ok = [], np.zeros(len(uniq), bool)
        for j, t in enumerate(uniq):
            try:
                trees.append(parse_prefix(t, self.grammar))
                ok[j] = True
            except ParseError:
                trees.append(None)
        good = np.flatnonzero(ok)
        hashes = np.zeros(len(uniq), np.int64)
        off = np.full((len(uniq), len(self.points)), np.nan)
        if len(good):
            h1, _ = row_hashes(evaluate_trees([trees[j] for j in good], self.grammar))
            hashes[good] = h1.view(np.int64)
            for j in good:
                off[j] = evaluate_float(trees[j], self.grammar, self.points)
        parsed = ok[inverse] & closed
        passed = parsed & (hashes[inverse] == target_hash)
        offgrid = parsed & agree(off[inverse], target_offgrid)
        return parsed, passed, offgrid

    def offgrid_values(self, token_rows: np.ndarray) -> np.ndarray:
        """Float64 values at the off-grid points of well-formed programs given as token rows."""
        texts, _ = tokens_to_text(token_rows, self.grammar)
        return np.stack([evaluate_float(parse_prefix(t, self.grammar), self.grammar, self.points) for t in texts]) \
            if texts else np.zeros((0, len(self.points)))


def agree(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise: every column equal within RTOL (ATOL near 0), non-finite matching non-finite."""
    with np.errstate(invalid="ignore", over="ignore"):
        fa, fb = np.isfinite(a), np.isfinite(b)
        close = np.abs(a - b) <= np.maximum(RTOL * np.maximum(np.abs(a), np.abs(b)), ATOL)
    return np.where(fa & fb, close, ~fa & ~fb).all(axis=1)


# ------------------------------------------------------------------------ decoding


@torch.no_grad()
def decode(model, values: np.ndarray, shown: np.ndarray | None, arity: torch.Tensor, max_len: int,
           num_samples: int, temperature: float, generator: torch.Generator | None,
           batch_size: int, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Decode each row of ``values`` (F, P): tokens (F, S, T) int64 and log-probs (F, S)."""
    model.eval()
    F_, S = len(values), max(num_samples, 1)
    tokens = np.zeros((F_, S, max_len), np.int64)
    logprob = np.zeros((F_, S), np.float64)
    for start in range(0, F_, batch_size):
        sl = slice(start, min(start + batch_size, F_))
        v = torch.from_numpy(np.ascontiguousarray(values[sl])).to(device)
        m = (torch.ones_like(v, dtype=torch.bool) if shown is None
             else torch.from_numpy(np.ascontiguousarray(shown[sl])).to(device))
        t, lp = model.generate(v, m, max_len=max_len, num_samples=S, temperature=temperature,
                               arity=arity, generator=generator)
        tokens[sl, :, : t.shape[2]] = t.cpu().numpy()
        logprob[sl] = lp.double().cpu().numpy()
    return tokens, logprob


def evaluate_role(model, snapshot: Snapshot, role: str, grammar: Grammar, settings: EvalSettings,
                  n_examples: int | None, data_seed: int, device: torch.device | str = "cpu",
                  run_id: str = "", view: str = "") -> RoleResult:
    """Decode and check every program of ``role`` (or a seeded subset of ``settings.limit``)."""
    from models.pass_at_k import pass_at_k

    device = torch.device(device)
    sl = snapshot.role_slice(role)
    rows = np.arange(sl.start, sl.stop)
    if settings.limit is not None and len(rows) > settings.limit:
        rows = np.sort(np.random.default_rng([settings.seed, 0x5EB]).choice(rows, settings.limit, replace=False))
    fidx = np.asarray(snapshot.function_index[rows])
    funcs, inv = np.unique(fidx, return_inverse=True)  # decode each function once
    fids = np.asarray(snapshot.function_id)[funcs]
    values = np.asarray(snapshot.values[funcs])
    shown = shown_mask(fids, snapshot.n_points, n_examples, data_seed)  # the mask training used
    T = snapshot.seq_len
    arity = torch.tensor([-1] * N_SPECIAL + list(grammar.arities), dtype=torch.long)
    checker = Checker(grammar, offgrid_points(grammar, settings.offgrid_points, settings.seed))
    target_off = checker.offgrid_values(np.asarray(snapshot.smallest_tokens[funcs], dtype=np.int64))
    target_hash = np.asarray(snapshot.value_hash[funcs])
    prog_tokens = np.asarray(snapshot.tokens[rows], dtype=np.int64)

    passes = [("greedy", 1, 0.0)]
    if settings.samples:
        passes.append(("sampled", settings.samples, settings.temperature))
    cols: dict[str, list[np.ndarray]] = {k: [] for k in
                                         ("decoding", "sample_index", "program_id", "predicted", "parsed", "passed",
                                          "exact_match", "offgrid_passed", "logprob")}
    scores: dict[str, float | None] = {"n_programs": float(len(rows)), "n_functions": float(len(funcs))}
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    for decoding, S, temp in passes:
        tok, lp = decode(model, values, shown, arity, T, S if decoding == "sampled" else 1, temp,
                         generator if decoding == "sampled" else None, settings.batch_size, device)
        flat = tok.reshape(-1, T)  # (F * S, T), function-major
        texts, closed = tokens_to_text(flat, grammar)
        f_of = np.repeat(np.arange(len(funcs)), S)
        parsed, passed, offgrid = checker.check(texts, closed, target_hash[f_of], target_off[f_of])
        # Broadcast each function's S predictions to its programs: (n_programs, S).
        per_f = lambda a: np.asarray(a).reshape(len(funcs), S)[inv]  # noqa: E731
        pred_tok = tok[inv]  # (n, S, T)
        exact = (pred_tok == prog_tokens[:, None, :]).all(axis=2)
        text_arr = per_f(np.asarray(texts, dtype=object))
        p_parsed, p_passed, p_off, p_lp = per_f(parsed), per_f(passed), per_f(offgrid), per_f(lp.reshape(-1))
        n = len(rows)
        cols["decoding"].append(np.full(n * S, decoding, dtype=object))
        cols["sample_index"].append(np.tile(np.arange(S, dtype=np.int32), n))
        cols["program_id"].append(np.repeat(np.asarray(snapshot.program_id[rows], dtype=np.int32), S))
        cols["predicted"].append(text_arr.reshape(-1))
        cols["parsed"].append(p_parsed.reshape(-1))
        cols["passed"].append(p_passed.reshape(-1))
        cols["exact_match"].append(exact.reshape(-1))
        cols["offgrid_passed"].append(p_off.reshape(-1))
        cols["logprob"].append(p_lp.reshape(-1).astype(np.float64))
        mean = (lambda a: float(np.mean(a)) if n else None)  # noqa: E731
        if decoding == "greedy":
            scores.update({
                "pass@1": mean(p_passed[:, 0]),
                "parse_rate": mean(p_parsed[:, 0]),
                "exact_match": mean(exact[:, 0]),
                "offgrid_pass@1": mean(p_passed[:, 0] & p_off[:, 0]),
                "aliased": mean(p_passed[:, 0] & ~p_off[:, 0]),
            })
        else:
            c = p_passed.sum(axis=1)
            for k in settings.k:
                scores[f"sample_pass@{k}"] = float(np.mean(pass_at_k(S, c, k))) if n else None
            scores["sample_parse_rate"] = mean(p_parsed)
    columns = {k: np.concatenate(v) for k, v in cols.items()}
    m = len(columns["program_id"])
    columns = {"run_id": np.full(m, run_id, dtype=object), "view": np.full(m, view, dtype=object),
               "role": np.full(m, role, dtype=object), **columns}
    return RoleResult(role, columns, scores)


def write_predictions(results: list[RoleResult], path) -> int:
    """Write the roles' predictions to one parquet file with the `predictions` columns; returns rows."""
    import duckdb

    from gensynth.results.ingest import migrate

    con = duckdb.connect()
    try:
        migrate(con)  # the predictions table as the warehouse has it
        total = 0
        for r in results:
            cols = {k: (v.astype(str) if v.dtype == object else v) for k, v in r.columns.items()}
            if not len(cols["program_id"]):
                continue
            con.register("pred_in", cols)
            con.execute("INSERT INTO predictions BY NAME SELECT run_id::VARCHAR AS run_id, view::VARCHAR AS view, "
                        "role::VARCHAR AS role, program_id, decoding::VARCHAR AS decoding, sample_index, "
                        "predicted::VARCHAR AS predicted, parsed, passed, exact_match, offgrid_passed, logprob FROM pred_in")
            con.unregister("pred_in")
            total += len(cols["program_id"])
        path_s = str(path).replace("'", "''")
        con.execute(f"COPY predictions TO '{path_s}' (FORMAT parquet)")
        return total
    finally:
        con.close()
