"""Tests for models/decoder.py and models/decoding.py: KV-cached decoding and beam search, every architecture."""

import itertools

import pytest
import torch

from models import registry
from models.blocks import BOS, EOS, PAD
from models.decoding import allowed_tokens

V = 12  # the default grammar: 3 specials + 5 leaves + 4 binary operators
ARITY = torch.tensor([-1, -1, -1, 0, 0, 0, 0, 0, 2, 2, 2, 2])
GRID = tuple(itertools.product([-2 + 4 * i / 7 for i in range(8)], repeat=2))
ARCHS = ["grid64", "lines"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build(arch: str, size: str = "nano", vocab: int = V, max_len: int = 12, seed: int = 0):
    entry = registry.get(arch)
    extra = {"grid": GRID} if entry.grid_input else {}
    torch.manual_seed(seed)
    return entry.build(entry.config(size, vocab_size=vocab, n_points=64, max_len=max_len, **extra)).eval()


def inputs(B=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(B, 64, generator=g) * 4
    values[0, :5] = float("nan")
    shown = torch.rand(B, 64, generator=g) > 0.25
    return values, shown


# ----------------------------------------------------------------- cached == uncached


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("temperature", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("constrained", [True, False])
def test_cached_decoding_returns_the_tokens_and_log_probs_of_uncached_decoding(arch, temperature, constrained):
    model = build(arch, "micro")
    values, shown = inputs()
    arity = ARITY if constrained else None
    runs = []
    for use_cache in (True, False):
        g = torch.Generator().manual_seed(7)
        runs.append(model.generate(values, shown, max_len=12, num_samples=6, temperature=temperature, arity=arity,
                                   generator=g, use_cache=use_cache))
    (tok_c, lp_c), (tok_u, lp_u) = runs
    assert torch.equal(tok_c, tok_u)  # the same tokens, every one (sampling draws from the same distribution)
    # Same log-probs up to float summation order (a one-token matmul vs a whole-prefix one).
    assert torch.allclose(lp_c, lp_u, rtol=0, atol=1e-4), (lp_c - lp_u).abs().max()
    assert torch.isfinite(lp_c).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_the_cache_step_matches_teacher_forcing_at_every_position(arch):
    model = build(arch, "micro")
    values, shown = inputs(B=3)
    tokens = torch.randint(3, V, (3, 10), generator=torch.Generator().manual_seed(1))
    tokens[:, 0] = BOS
    full = model(values, shown, tokens)  # (B, T, V)
    memory, keep = model.encode(values, shown)
    state = model.start_decoding(memory, keep, rows_per_task=1, max_len=10)
    for pos in range(10):
        step = model.step(tokens[:, pos], pos, state)
        assert torch.allclose(step, full[:, pos], atol=1e-5), pos


# ---------------------------------------------------------------------- beam search


def all_programs(arity: list[int], max_symbols: int) -> list[list[int]]:
    """Every complete prefix tree of at most max_symbols symbols."""
    symbols = [t for t in range(3, len(arity))]
    out = []
    for n in range(1, max_symbols + 1):
        for seq in itertools.product(symbols, repeat=n):
            open_slots, ok = 1, True
            for i, t in enumerate(seq):
                if open_slots == 0:
                    ok = False
                    break
                open_slots += arity[t] - 1
            if ok and open_slots == 0:
                out.append(list(seq))
    return out


def sequence_logprob(model, values, shown, program, arity, max_len) -> float:
    """The constrained log-prob generate assigns to one program (teacher forcing, masked per step)."""
    tokens = torch.tensor([[BOS, *program, EOS] + [PAD] * (max_len - len(program) - 2)])
    logits = model(values, shown, tokens[:, :-1])[0].float()  # (T-1, V)
    total, open_slots = 0.0, torch.ones(1, dtype=torch.long)
    for i in range(1, len(program) + 2):
        allowed = allowed_tokens(open_slots, arity, left=max_len - 1 - i)[0]
        logp = torch.log_softmax(logits[i - 1].masked_fill(~allowed, float("-inf")), dim=-1)
        t = int(tokens[0, i])
        total += float(logp[t].detach())
        if t >= 3:
            open_slots = open_slots + arity[t] - 1
    return total


@pytest.mark.parametrize("arch", ARCHS)
def test_beam_search_as_wide_as_the_language_is_exhaustive(arch):
    """A grammar of 2 leaves and 1 binary operator, at most 5 symbols: 2 + 4 + 16 = 22 programs."""
    arity = torch.tensor([-1, -1, -1, 0, 0, 2])
    max_len = 7  # BOS + 5 symbols + EOS
    model = build(arch, vocab=6, max_len=max_len)
    values, shown = inputs(B=2, seed=3)
    programs = all_programs(arity.tolist(), 5)
    assert len(programs) == 22
    tokens, scores = model.generate(values, shown, max_len=max_len, arity=arity, beam_width=32)
    for b in range(2):
        exhaustive = sorted(((sequence_logprob(model, values[b:b + 1], shown[b:b + 1], p, arity, max_len), p)
                             for p in programs), reverse=True)
        found = [(float(s), row[1:row.index(EOS)]) for s, row in zip(scores[b], tokens[b].tolist()) if s > -float("inf")]
        assert len(found) == 22  # every program once; the other 10 beams do not exist (-inf)
        assert [p for _, p in found] == [p for _, p in exhaustive]
        assert [s for s, _ in found] == pytest.approx([s for s, _ in exhaustive], abs=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_beam_search_is_best_first_and_its_top_beam_beats_greedy(arch):
    model = build(arch, "micro")
    values, shown = inputs()
    tokens, scores = model.generate(values, shown, max_len=12, arity=ARITY, beam_width=5)
    assert tokens.shape == (6, 5, 12) and scores.shape == (6, 5)
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    _, greedy = model.generate(values, shown, max_len=12, arity=ARITY)
    assert (scores[:, 0] >= greedy[:, 0] - 1e-5).all()
    for row in tokens.flatten(0, 1).tolist():
        end = row.index(EOS)
        assert row[0] == BOS and all(t == PAD for t in row[end + 1:])
    with pytest.raises(ValueError, match="beam_width"):
        model.generate(values, shown, beam_width=4, num_samples=3)
