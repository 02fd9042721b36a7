"""Evaluation: decode programs for a split's roles and check them by execution.

For every program of a role the model reads its function's outputs (the shown grid
points) and writes a program. Programs of one function give the model the same input,
so each function is decoded once per role and its predictions recorded for each of its
programs (greedy decoding is deterministic; samples of one input are exchangeable).

A prediction

* ``parsed``: is a well-formed prefix program of the grammar (constrained decoding makes
  this nearly certain; the flag stays honest for unconstrained decoding);
* ``passed``: parsed, and its exact values on the grid equal the target function's
  (both halves ``functions.value_hash``, ``value_hash2`` of the exact outputs, the same test that built the semantic
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

from dataclasses import dataclass, field

import numpy as np
import torch

from gensynth.learning.config import EvalSettings  # noqa: F401 (re-exported: it lived here)
from gensynth.learning.snapshot import BOS, EOS, N_SPECIAL, Snapshot, shown_mask
from gensynth.universe.functions import row_hashes
from gensynth.universe.grammar import Grammar
from gensynth.universe.syntax import ParseError, evaluate_float, evaluate_trees, parse_prefix

RTOL, ATOL = 1e-9, 1e-12


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

        ``target_hash`` (n, 2) int64 is each pair's (functions.value_hash, value_hash2): both
        halves must match; ``target_offgrid`` (n, Q) the target's float64 values at the off-grid points.
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
        hashes = np.zeros((len(uniq), 2), np.int64)
        off = np.full((len(uniq), len(self.points)), np.nan)
        if len(good):
            h1, h2 = row_hashes(evaluate_trees([trees[j] for j in good], self.grammar))
            hashes[good] = np.stack([h1.view(np.int64), h2.view(np.int64)], axis=1)
            for j in good:
                off[j] = evaluate_float(trees[j], self.grammar, self.points)
        parsed = ok[inverse] & closed
        passed = parsed & (hashes[inverse] == np.asarray(target_hash).reshape(-1, 2)).all(axis=1)
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
           batch_size: int, device: torch.device, beam_width: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Decode each row of ``values`` (F, P): tokens (F, S, T) int64 and log-probs (F, S).

    S is ``num_samples`` (greedy at temperature 0, else sampled), or ``beam_width`` beams
    per task, best first, when beam_width > 0. ``model`` is any registered architecture
    (``models.registry``): its ``generate`` decodes with the KV cache.
    """
    model.eval()
    F_, S = len(values), (beam_width or max(num_samples, 1))
    tokens = np.zeros((F_, S, max_len), np.int64)
    logprob = np.zeros((F_, S), np.float64)
    for start in range(0, F_, batch_size):
        sl = slice(start, min(start + batch_size, F_))
        v = torch.from_numpy(np.ascontiguousarray(values[sl])).to(device)
        m = (torch.ones_like(v, dtype=torch.bool) if shown is None
             else torch.from_numpy(np.ascontiguousarray(shown[sl])).to(device))
        t, lp = model.generate(v, m, max_len=max_len, num_samples=1 if beam_width else S, temperature=temperature,
                               arity=arity, generator=generator, beam_width=beam_width)
        tokens[sl, :, : t.shape[2]] = t.cpu().numpy()
        logprob[sl] = lp.double().cpu().numpy()
    return tokens, logprob


@dataclass
class RoleTargets:
    """What one role's programs are checked against: rows, their functions (decoded once each), references."""

    rows: np.ndarray  # (n,) snapshot rows of the programs evaluated
    funcs: np.ndarray  # (F,) snapshot function rows, each decoded once
    inv: np.ndarray  # (n,) index into funcs of each program's function
    values: np.ndarray  # (F, P) the functions' outputs
    shown: np.ndarray | None  # (F, P) the points shown to the model (None: all)
    target_hash: np.ndarray  # (F, 2) functions.value_hash, value_hash2
    target_off: np.ndarray  # (F, Q) the smallest program's values off the grid
    prog_tokens: np.ndarray  # (n, T) each program's own tokens (exact_match)
    checker: Checker


def role_targets(snapshot: Snapshot, role: str, grammar: Grammar, settings: EvalSettings, n_examples: int | None,
                 data_seed: int) -> RoleTargets:
    """The programs of ``role`` (a seeded subset of ``settings.limit``) and their references."""
    sl = snapshot.role_slice(role)
    rows = np.arange(sl.start, sl.stop)
    if settings.limit is not None and len(rows) > settings.limit:
        rows = np.sort(np.random.default_rng([settings.seed, 0x5EB]).choice(rows, settings.limit, replace=False))
    funcs, inv = np.unique(np.asarray(snapshot.function_index[rows]), return_inverse=True)  # decode each function once
    fids = np.asarray(snapshot.function_id)[funcs]
    checker = Checker(grammar, offgrid_points(grammar, settings.offgrid_points, settings.seed))
    return RoleTargets(
        rows=rows, funcs=funcs, inv=inv, values=np.asarray(snapshot.values[funcs]),
        shown=shown_mask(fids, snapshot.n_points, n_examples, data_seed),  # the mask training used
        target_hash=np.stack([np.asarray(snapshot.value_hash[funcs]), np.asarray(snapshot.value_hash2[funcs])], axis=1),
        target_off=checker.offgrid_values(np.asarray(snapshot.smallest_tokens[funcs], dtype=np.int64)),
        prog_tokens=np.asarray(snapshot.tokens[rows], dtype=np.int64), checker=checker)


def score_role(model, snapshot: Snapshot, role: str, grammar: Grammar, settings: EvalSettings,
                  n_examples: int | None, data_seed: int, device: torch.device | str = "cpu",
                  run_id: str = "", view: str = "") -> RoleResult:
    """Decode and check every program of ``role`` (or a seeded subset of ``settings.limit``).

    Greedy decoding always (pass@1); ``settings.samples`` sampled programs per task
    (sample_pass@k); ``settings.beam`` beams per task (beam_pass@1, beam_pass@W).
    """
    device = torch.device(device)
    targets = role_targets(snapshot, role, grammar, settings, n_examples, data_seed)
    T = snapshot.seq_len
    arity = torch.tensor([-1] * N_SPECIAL + list(grammar.arities), dtype=torch.long)
    passes = [("greedy", 1, 0.0)]
    if settings.samples:
        passes.append(("sampled", settings.samples, settings.temperature))
    if getattr(settings, "beam", 0):
        passes.append(("beam", settings.beam, 0.0))
    cols: dict[str, list[np.ndarray]] = {k: [] for k in
                                         ("decoding", "sample_index", "program_id", "predicted", "parsed", "passed",
                                          "exact_match", "offgrid_passed", "logprob")}
    scores: dict[str, float | None] = {"n_programs": float(len(targets.rows)), "n_functions": float(len(targets.funcs))}
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    for decoding, S, temp in passes:
        tok, lp = decode(model, targets.values, targets.shown, arity, T, S if decoding == "sampled" else 1, temp,
                         generator if decoding == "sampled" else None, settings.batch_size, device,
                         beam_width=S if decoding == "beam" else 0)
        per_program = _check_predictions(tok, lp, targets, grammar)
        for name, value in _prediction_columns(decoding, per_program, snapshot.program_id[targets.rows]).items():
            cols[name].append(value)
        scores.update(_scores(decoding, per_program, settings))
    columns = {k: np.concatenate(v) for k, v in cols.items()}
    m = len(columns["program_id"])
    columns = {"run_id": np.full(m, run_id, dtype=object), "view": np.full(m, view, dtype=object),
               "role": np.full(m, role, dtype=object), **columns}
    return RoleResult(role, columns, scores)


def _check_predictions(tok: np.ndarray, lp: np.ndarray, targets: RoleTargets, grammar: Grammar) -> dict[str, np.ndarray]:
    """Check each function's S predictions (tok (F, S, T)) and broadcast them to its programs: (n, S) arrays."""
    F_, S, T = tok.shape
    texts, closed = tokens_to_text(tok.reshape(-1, T), grammar)  # function-major
    f_of = np.repeat(np.arange(F_), S)
    parsed, passed, offgrid = targets.checker.check(texts, closed, targets.target_hash[f_of], targets.target_off[f_of])
    per_f = lambda a: np.asarray(a).reshape(F_, S)[targets.inv]  # noqa: E731
    return {"text": per_f(np.asarray(texts, dtype=object)), "parsed": per_f(parsed), "passed": per_f(passed),
            "offgrid": per_f(offgrid), "logprob": per_f(lp.reshape(-1)),
            "exact": (tok[targets.inv] == targets.prog_tokens[:, None, :]).all(axis=2)}


def _prediction_columns(decoding: str, p: dict[str, np.ndarray], program_id: np.ndarray) -> dict[str, np.ndarray]:
    """The `predictions` columns of one decoding pass: one row per program and sample."""
    n, S = p["passed"].shape
    return {
        "decoding": np.full(n * S, decoding, dtype=object),
        "sample_index": np.tile(np.arange(S, dtype=np.int32), n),
        "program_id": np.repeat(np.asarray(program_id, dtype=np.int32), S),
        "predicted": p["text"].reshape(-1),
        "parsed": p["parsed"].reshape(-1),
        "passed": p["passed"].reshape(-1),
        "exact_match": p["exact"].reshape(-1),
        "offgrid_passed": p["offgrid"].reshape(-1),
        "logprob": p["logprob"].reshape(-1).astype(np.float64),
    }


def _scores(decoding: str, p: dict[str, np.ndarray], settings: EvalSettings) -> dict[str, float | None]:
    """A decoding pass's scores: pass@1 and friends (greedy), sample_pass@k (sampled), beam_pass@1/@W (beam)."""
    from models.pass_at_k import pass_at_k

    n, S = p["passed"].shape
    mean = (lambda a: float(np.mean(a)) if n else None)  # noqa: E731
    if decoding == "greedy":
        return {"pass@1": mean(p["passed"][:, 0]), "parse_rate": mean(p["parsed"][:, 0]),
                "exact_match": mean(p["exact"][:, 0]), "offgrid_pass@1": mean(p["passed"][:, 0] & p["offgrid"][:, 0]),
                "aliased": mean(p["passed"][:, 0] & ~p["offgrid"][:, 0])}
    if decoding == "beam":
        return {"beam_pass@1": mean(p["passed"][:, 0]), f"beam_pass@{S}": mean(p["passed"].any(axis=1))}
    c = p["passed"].sum(axis=1)
    out = {f"sample_pass@{k}": float(np.mean(pass_at_k(S, c, k))) if n else None for k in settings.k}
    out["sample_parse_rate"] = mean(p["parsed"])
    return out


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
