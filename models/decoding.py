"""Search over programs: greedy, sampling and beam search, grammar-constrained, KV-cached.

``generate`` works for any model built on ``models.decoder.PrefixDecoder``. A *stepper*
gives the next-token logits of every row: ``CachedStepper`` runs one position per step
against the KV cache (the default); ``FullStepper`` recomputes the whole prefix each step
with the memory repeated per row, as decoding did before the cache (kept as the
reference the tests compare against, and for the decode benchmark). Both do the same
arithmetic, so they choose the same tokens.

Constrained decoding (``arity`` given) always yields one complete prefix tree: a counter
of open argument slots starts at 1 and a symbol of arity a changes it by a - 1; EOS is
allowed only when it is 0, symbols only while it is > 0 and while the tree can still
close in the positions left.

Shapes: B tasks, R rows per task (samples or beams), N = B * R, T = max_len, V vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.blocks import BOS, EOS, N_SPECIAL, PAD
from models.errors import ModelError


# ------------------------------------------------------------------- steppers


class CachedStepper:
    """Next-token logits from the KV cache: each position is computed once."""

    def __init__(self, model, memory: torch.Tensor, keep: torch.Tensor | None, rows_per_task: int, max_len: int):
        self.model = model
        self.state = model.start_decoding(memory, keep, rows_per_task, max_len)

    def logits(self, tokens: torch.Tensor, i: int) -> torch.Tensor:
        """tokens (N, T) with positions < i filled -> logits (N, V) for position i."""
        return self.model.step(tokens[:, i - 1], i - 1, self.state)

    def reorder(self, rows: torch.Tensor) -> None:
        self.model.reorder(self.state, rows)


class FullStepper:
    """Next-token logits by recomputing the prefix with the memory repeated per row (no cache)."""

    def __init__(self, model, memory: torch.Tensor, keep: torch.Tensor | None, rows_per_task: int, max_len: int):
        self.model = model
        self.memory = memory.repeat_interleave(rows_per_task, dim=0)  # (N, S, C)
        self.keep = None if keep is None else keep.repeat_interleave(rows_per_task, dim=0)

    def logits(self, tokens: torch.Tensor, i: int) -> torch.Tensor:
        return self.model.decode(tokens[:, :i], self.memory, self.keep)[:, -1]

    def reorder(self, rows: torch.Tensor) -> None:
        pass  # rows move within their task, and a task's memory rows are all alike


# ----------------------------------------------------------------- constraints


def check_arity(arity: torch.Tensor, vocab_size: int, max_len: int) -> torch.Tensor:
    """Validate a (V,) arity table: every grammar symbol >= 0, at least one leaf, room for a program."""
    arity = torch.as_tensor(arity, dtype=torch.long)
    if arity.shape != (vocab_size,):
        raise ModelError(f"arity must have shape (vocab_size={vocab_size},), got {tuple(arity.shape)}")
    symbols = arity[N_SPECIAL:]
    if (symbols < 0).any():
        raise ModelError(f"arity of every grammar symbol (ids >= {N_SPECIAL}) must be >= 0, got {arity.tolist()}")
    if not (symbols == 0).any():
        raise ModelError("arity has no leaf (arity-0 symbol), so no program can be completed")
    if max_len < 3:
        raise ModelError(f"constrained decoding needs max_len >= 3 (BOS, leaf, EOS), got {max_len}")
    return arity


def allowed_tokens(open_slots: torch.Tensor, arity: torch.Tensor, left: int) -> torch.Tensor:
    """Tokens allowed next, (N, V) bool, given open slots (N,) and ``left`` positions after it.

    A symbol of arity a leaves open' = open + a - 1 slots. Each later position closes at
    most one slot (a leaf) and one more is needed for EOS, so the symbol is allowed only
    if open' + 1 <= left. By induction open <= left + 1 before every step, so a leaf or
    EOS is always allowed and decoding never gets stuck.
    """
    V = arity.shape[0]
    is_symbol = torch.arange(V, device=arity.device) >= N_SPECIAL  # (V,)
    new_open = open_slots[:, None] + arity.clamp(min=0)[None, :] - 1  # (N, V)
    allowed = is_symbol[None, :] & (open_slots[:, None] > 0) & (new_open + 1 <= left)
    allowed[:, EOS] = open_slots == 0
    return allowed


class Constraint:
    """The tokens each row may emit next (grammar-constrained when an arity table is given)."""

    def __init__(self, arity: torch.Tensor | None, n_rows: int, vocab_size: int, max_len: int, device):
        self.arity, self.max_len = arity, max_len
        self.open_slots = torch.ones(n_rows, dtype=torch.long, device=device)
        never = torch.zeros(vocab_size, dtype=torch.bool, device=device)
        never[[PAD, BOS]] = True
        self.free = ~never  # unconstrained: anything but PAD and BOS

    def allowed(self, i: int) -> torch.Tensor:
        """(N, V) bool for position i."""
        if self.arity is None:
            return self.free.expand(len(self.open_slots), -1)
        return allowed_tokens(self.open_slots, self.arity, left=self.max_len - 1 - i)

    def advance(self, nxt: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Record the tokens emitted (N,), after keeping rows ``rows`` (beam search)."""
        if rows is not None:
            self.open_slots = self.open_slots[rows]
        if self.arity is not None:
            is_symbol = nxt >= N_SPECIAL
            self.open_slots = self.open_slots + torch.where(is_symbol, self.arity[nxt] - 1, torch.zeros_like(nxt))


# -------------------------------------------------------------------- generate


def generate(model, values: torch.Tensor, shown: torch.Tensor, max_len: int | None = None, num_samples: int = 1,
             temperature: float = 0.0, arity: torch.Tensor | None = None, generator: torch.Generator | None = None,
             beam_width: int = 0, use_cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode programs: returns tokens (B, S, max_len) and log-probs (B, S).

    Each row of tokens has the target layout ``BOS t1 ... tn EOS PAD ...``; a row that
    reaches max_len without EOS is cut there (only possible unconstrained). PAD and BOS
    are never emitted. Call model.eval() first, or dropout stays on.

    * ``beam_width`` 0: S = num_samples. temperature 0 is greedy (decoded once per task,
      so all samples agree); > 0 samples from softmax(logits / temperature), seeded by
      ``generator`` (on the model's device).
    * ``beam_width`` W > 0: beam search, S = W beams per task, best first (num_samples
      must be 1 or W). Beams that do not exist (fewer complete programs than W) have
      log-prob -inf.

    The log-prob of a sequence is the sum over its emitted tokens, up to and including
    EOS, of log softmax(logits) at temperature 1 over the allowed tokens (beam search
    ranks by it). ``arity`` (V,) long, optional: each grammar symbol's arity (ids < 3 are
    ignored; -1 by convention); with it decoding is grammar-constrained.
    """
    max_len = model.max_len if max_len is None else max_len
    V = model.tok_emb.num_embeddings
    if not 2 <= max_len <= model.max_len:
        raise ModelError(f"max_len must be in [2, {model.max_len}] (the config's max_len), got {max_len}")
    if num_samples < 1:
        raise ModelError(f"num_samples must be >= 1, got {num_samples}")
    if not temperature >= 0:  # NaN fails too
        raise ModelError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if beam_width < 0 or (beam_width and num_samples not in (1, beam_width)):
        raise ModelError(f"beam_width must be >= 0 and num_samples 1 or beam_width with beam search, "
                         f"got beam_width {beam_width}, num_samples {num_samples}")
    if arity is not None:
        arity = check_arity(arity, V, max_len).to(values.device)
    memory, keep = model.encode(values, shown)  # (B, S, C), (B, S) or None: once per task
    stepper_class = CachedStepper if use_cache else FullStepper
    if beam_width:
        stepper = stepper_class(model, memory, keep, beam_width, max_len)
        return _beam(stepper, values.shape[0], beam_width, V, max_len, arity, values.device)
    rows = 1 if temperature == 0.0 else num_samples  # greedy: every sample would be the same
    stepper = stepper_class(model, memory, keep, rows, max_len)
    tokens, logprob = _sample(stepper, values.shape[0] * rows, V, max_len, temperature, arity, generator, values.device)
    B = values.shape[0]
    tokens, logprob = tokens.view(B, rows, max_len), logprob.view(B, rows)
    if rows != num_samples:
        tokens, logprob = tokens.expand(B, num_samples, max_len).clone(), logprob.expand(B, num_samples).clone()
    return tokens, logprob


def _sample(stepper, N: int, V: int, max_len: int, temperature: float, arity, generator, device):
    """Greedy (temperature 0) or sampled decoding of N rows: tokens (N, T), log-probs (N,)."""
    tokens = torch.full((N, max_len), PAD, dtype=torch.long, device=device)
    tokens[:, 0] = BOS
    logprob = torch.zeros(N, device=device)
    done = torch.zeros(N, dtype=torch.bool, device=device)
    constraint = Constraint(arity, N, V, max_len, device)
    for i in range(1, max_len):
        logits = stepper.logits(tokens, i).float()  # (N, V)
        logits = logits.masked_fill(~constraint.allowed(i), float("-inf"))
        logp = F.log_softmax(logits, dim=-1)  # (N, V)
        if temperature == 0.0:
            nxt = logits.argmax(dim=-1)  # (N,)
        else:
            probs = F.softmax(logits / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (N,)
        # Finished rows get PAD and add nothing to their log-prob.
        step_logp = logp.gather(1, nxt[:, None]).squeeze(1)
        logprob += torch.where(done, torch.zeros_like(step_logp), step_logp)
        nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
        tokens[:, i] = nxt
        constraint.advance(nxt)
        done |= nxt == EOS
        if bool(done.all()):
            break
    return tokens, logprob


def _beam(stepper, B: int, W: int, V: int, max_len: int, arity, device):
    """Beam search, W beams per task: tokens (B, W, T) and log-probs (B, W), best first.

    Every step extends each live beam by every allowed token and keeps each task's W
    best; a finished beam has exactly one continuation, PAD at no cost, so finished and
    live beams compete on their log-prob. All beams start as BOS; only the first counts
    at the start (the others at -inf), so no program is found twice.
    """
    N = B * W
    tokens = torch.full((N, max_len), PAD, dtype=torch.long, device=device)
    tokens[:, 0] = BOS
    score = torch.full((B, W), float("-inf"), device=device)
    score[:, 0] = 0.0
    done = torch.zeros(N, dtype=torch.bool, device=device)
    constraint = Constraint(arity, N, V, max_len, device)
    pad_only = torch.full((V,), float("-inf"), device=device)
    pad_only[PAD] = 0.0
    base = (torch.arange(B, device=device) * W)[:, None]  # (B, 1): first row of each task
    for i in range(1, max_len):
        logits = stepper.logits(tokens, i).float()  # (N, V)
        logp = F.log_softmax(logits.masked_fill(~constraint.allowed(i), float("-inf")), dim=-1)
        logp = torch.where(done[:, None], pad_only, logp)  # (N, V)
        logp = logp.masked_fill(logp.isnan(), float("-inf"))  # a beam that does not exist may allow nothing: NaN rows
        cand = (score.view(N, 1) + logp).view(B, W * V)
        score, idx = cand.topk(W, dim=1)  # (B, W), sorted best first
        rows = (base + idx // V).view(N)  # each kept candidate's parent row
        nxt = (idx % V).view(N)
        tokens = tokens[rows]
        tokens[:, i] = nxt
        stepper.reorder(rows)
        constraint.advance(nxt, rows)
        done = done[rows] | (nxt == EOS)
        if bool(done.all()):
            break
    tokens[score.view(N) == float("-inf"), 1:] = PAD  # beams that do not exist: BOS alone, never a program
    return tokens.view(B, W, max_len), score
