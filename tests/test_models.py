"""Tests for models/: the PBE transformer, its FLOP estimate, Lightning wrapper and pass@k."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# Until the project is installed (or pytest's pythonpath is set), make the repository
# root importable so `pytest tests/test_models.py` finds the models package.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from models import (BOS, EOS, PAD, SIZES, ModelConfig, ModelError, PBELitModule, PBETransformer,
                    config_for, pass_at_k, training_flops)
from models.lit import warmup_cosine

V = 12  # the default grammar: 3 specials + 5 leaves + 4 binary operators
P = 64
ARITY = torch.tensor([-1, -1, -1, 0, 0, 0, 0, 0, 2, 2, 2, 2])


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These tensors are tiny: with two threads on a busy 2-core machine torch spends
    # its time waiting for the second thread (tests ran 5x slower); one is steady.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model(**overrides) -> PBETransformer:
    torch.manual_seed(0)
    return PBETransformer(config_for("nano", vocab_size=V, **overrides)).eval()


def random_batch(B=3, T=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(B, P, generator=g, dtype=torch.float64) * 10
    shown = torch.rand(B, P, generator=g) > 0.3
    tokens = torch.randint(3, V, (B, T), generator=g)
    tokens[:, 0] = BOS
    return values, shown, tokens


def well_formed(row: list[int], arity: list[int]) -> bool:
    """BOS, one complete prefix tree of grammar symbols, EOS, then only PAD."""
    if row[0] != BOS or EOS not in row:
        return False
    end = row.index(EOS)
    body, tail = row[1:end], row[end + 1:]
    open_slots = 1
    for t in body:
        if t < 3 or open_slots == 0:
            return False
        open_slots += arity[t] - 1
    return open_slots == 0 and all(t == PAD for t in tail)


# ------------------------------------------------------------------------- model


def test_forward_shapes():
    model = tiny_model()
    values, shown, tokens = random_batch(B=3, T=10)
    assert model(values, shown, tokens).shape == (3, 10, V)
    assert model(values.float(), shown, tokens[:, :1]).shape == (3, 1, V)


def test_non_finite_and_huge_values_give_finite_logits():
    model = tiny_model()
    values, shown, tokens = random_batch(B=4)
    values[0, :8] = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e300, -1e300,
                                  1e-300, 0.0, torch.finfo(torch.float64).max])
    values[1] = float("nan")  # undefined everywhere
    values[2] = 1e6 * torch.arange(P)
    shown[:2] = True
    shown[3] = False  # every point hidden: the summary slot keeps attention defined
    for v in (values, values.float()):  # float32 turns 1e300 into inf: still fine
        logits = model(v, shown, tokens)
        assert torch.isfinite(logits).all()
    # Gradients stay finite too, so one bad function cannot poison training.
    model.train()
    model(values, shown, tokens).logsumexp(-1).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_hidden_points_do_not_change_the_output():
    model = tiny_model()
    values, shown, tokens = random_batch()
    before = model(values, shown, tokens)
    perturbed = values.clone()
    perturbed[~shown] = torch.tensor([float("nan"), 1e9, -3.0]).repeat(100)[: int((~shown).sum())].double()
    assert torch.equal(model(perturbed, shown, tokens), before)
    # ...while a shown point does change it.
    perturbed = values.clone()
    perturbed[shown] += 1.0
    assert not torch.allclose(model(perturbed, shown, tokens), before)


def test_hidden_points_are_masked_not_only_zeroed():
    # The zeroing in encode() is belt and braces; the attention mask alone must hide them.
    model = tiny_model()
    values, shown, tokens = random_batch()
    memory, keep = model.encode(values, shown)
    before = model.decode(tokens, memory, keep)
    memory = memory.clone()
    memory[:, 1:][~shown] = 1e3  # garbage in the hidden memory slots
    assert torch.allclose(model.decode(tokens, memory, keep), before, atol=1e-6)


def test_decoder_is_causal():
    model = tiny_model()
    values, shown, tokens = random_batch(T=10)
    before = model(values, shown, tokens)
    changed = tokens.clone()
    changed[:, 6] = (changed[:, 6] + 1 - 3) % (V - 3) + 3
    after = model(values, shown, changed)
    assert torch.allclose(after[:, :6], before[:, :6], atol=1e-6)
    assert not torch.allclose(after[:, 6:], before[:, 6:])


def test_sizes_span_100x_and_build():
    counts = {name: PBETransformer(config_for(name, vocab_size=V)).num_params() for name in SIZES}
    assert list(counts.values()) == sorted(counts.values())
    assert 30_000 <= counts["nano"] <= 60_000
    assert max(counts.values()) >= 5_000_000
    assert max(counts.values()) / min(counts.values()) >= 100


def test_unknown_size_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown model size 'huge'.*nano, micro"):
        config_for("huge", vocab_size=V)
    with pytest.raises(ModelError, match="vocab_size"):
        config_for("nano")
    with pytest.raises(ModelError, match="d_modle"):
        config_for("nano", vocab_size=V, d_modle=64)


def test_config_validation_names_every_bad_field():
    with pytest.raises(ValueError) as err:
        ModelConfig(vocab_size=V, d_model=30, n_heads=4, dropout=1.5, max_len=2)
    message = str(err.value)
    assert "d_model (30) must be divisible by n_heads (4)" in message
    assert "dropout" in message and "max_len" in message
    with pytest.raises(ModelError, match="vocab_size must be >= 4"):
        ModelConfig(vocab_size=3)
    with pytest.raises(ModelError, match="n_heads must be an integer"):
        ModelConfig(vocab_size=V, n_heads=2.0)
    with pytest.raises(dataclass_frozen_error()):
        ModelConfig(vocab_size=V).d_model = 8  # frozen


def dataclass_frozen_error():
    from dataclasses import FrozenInstanceError
    return FrozenInstanceError


def test_wrong_input_shapes_are_reported():
    model = tiny_model()
    values, shown, tokens = random_batch()
    with pytest.raises(ModelError, match="n_points=64"):
        model(values[:, :10], shown[:, :10], tokens)
    with pytest.raises(ModelError, match="max_len"):
        model(values, shown, torch.ones(3, 30, dtype=torch.long))


# ------------------------------------------------------------------------- FLOPs


@pytest.mark.parametrize("size, B, T", [("nano", 4, 16), ("micro", 2, 23)])
def test_training_flops_match_flop_counter(size, B, T):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model = PBETransformer(config_for(size, vocab_size=V))
    values, shown, tokens = random_batch(B=B, T=T)
    counter = FlopCounterMode(display=False)
    # FlopCounterMode has no formula for the fused CPU attention kernel; the math
    # backend spells attention out as matmuls, which it does count.
    with sdpa_kernel(SDPBackend.MATH), counter:
        model(values, shown, tokens).logsumexp(-1).sum().backward()
    measured = counter.get_total_flops()
    estimate = training_flops(model.config, n_sequences=B, dec_len=T, enc_len=P)
    assert abs(estimate / measured - 1) < 0.10, (estimate, measured)
    assert training_flops(model.config, 10 * B, T) == 10 * estimate  # linear in sequences


# ---------------------------------------------------------------------- generation


def test_greedy_generation_layout():
    model = tiny_model()
    values, shown, _ = random_batch(B=2)
    tokens, logprob = model.generate(values, shown, max_len=12, num_samples=3)
    assert tokens.shape == (2, 3, 12) and logprob.shape == (2, 3)
    assert (tokens[..., 0] == BOS).all()
    assert not (tokens[..., 1:] == BOS).any()
    assert (tokens == tokens[:, :1]).all()  # greedy: every sample is the same
    assert (logprob <= 0).all() and torch.isfinite(logprob).all()
    for row in tokens.flatten(0, 1).tolist():
        if EOS in row:
            assert all(t == PAD for t in row[row.index(EOS) + 1:])


@pytest.mark.parametrize("seed", range(4))
def test_constrained_generation_is_always_a_well_formed_tree(seed):
    g = torch.Generator().manual_seed(seed)
    model = tiny_model()
    # A random grammar: leaves, unary, binary and ternary symbols, at least one leaf.
    arity = torch.randint(0, 4, (V,), generator=g)
    arity[:3] = -1
    arity[3] = 0
    values, shown, _ = random_batch(B=4, seed=seed)
    for max_len in (3, 5, 9, 24):
        for temperature in (0.0, 1.0, 3.0):
            tokens, logprob = model.generate(values, shown, max_len=max_len, num_samples=8,
                                             temperature=temperature, arity=arity, generator=g)
            assert tokens.shape == (4, 8, max_len)
            for row in tokens.flatten(0, 1).tolist():
                assert well_formed(row, arity.tolist()), (row, arity.tolist())
            assert torch.isfinite(logprob).all() and (logprob <= 1e-6).all()


def test_generation_rejects_bad_arguments():
    model = tiny_model()
    values, shown, _ = random_batch()
    with pytest.raises(ModelError, match="no leaf"):
        model.generate(values, shown, arity=torch.tensor([-1, -1, -1] + [2] * (V - 3)))
    with pytest.raises(ModelError, match="shape"):
        model.generate(values, shown, arity=ARITY[:5])
    with pytest.raises(ModelError, match="max_len"):
        model.generate(values, shown, max_len=99)


# -------------------------------------------------------------------- overfitting


def random_tree(rng: np.random.Generator, max_symbols: int) -> list[int]:
    """A random prefix tree over the default grammar's ids, at most max_symbols long."""
    out, open_slots = [], 1
    while open_slots:
        room = max_symbols - len(out) - open_slots  # symbols we can add beyond closing leaves
        if room >= 2 and rng.random() < 0.45:
            out.append(int(rng.integers(8, 12)))  # binary operator
            open_slots += 1
        else:
            out.append(int(rng.integers(3, 8)))  # leaf
            open_slots -= 1
    return out


def test_tiny_model_overfits_eight_examples():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    programs = []
    while len(programs) < 8:  # distinct programs
        p = random_tree(rng, max_symbols=9)
        if p not in programs:
            programs.append(p)
    T = 12
    tokens = torch.full((8, T), PAD)
    for i, p in enumerate(programs):
        tokens[i, : len(p) + 2] = torch.tensor([BOS, *p, EOS])
    values = torch.tensor(rng.normal(size=(8, P)) * 100)
    values[0, :5] = float("nan")
    shown = torch.ones(8, P, dtype=torch.bool)

    model = PBETransformer(config_for("nano", vocab_size=V, max_len=T))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(400):
        logits = model(values, shown, tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    model.eval()
    out, _ = model.generate(values, shown, max_len=T)
    assert torch.equal(out[:, 0], tokens), (loss.item(), out[:, 0], tokens)


# ------------------------------------------------------------------------ Lightning


def test_lightning_module_trains_and_validates():
    import lightning as L
    from torch.utils.data import DataLoader

    _, _, tokens = random_batch(B=16, T=8)
    tokens[:, -2:] = PAD
    tokens[:, 5] = EOS
    data = [{"values": torch.randn(P) * 5, "shown": torch.rand(P) > 0.2, "tokens": t} for t in tokens]
    module = PBELitModule(config_for("nano", vocab_size=V, max_len=8), lr=1e-3, weight_decay=0.1,
                          warmup_steps=2, max_steps=5, label_smoothing=0.1)
    trainer = L.Trainer(max_steps=5, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, DataLoader(data, batch_size=4), DataLoader(data, batch_size=8))
    assert trainer.global_step == 5
    metrics = trainer.callback_metrics
    assert {"train/loss", "val/loss", "val/token_acc"} <= set(metrics)
    assert all(math.isfinite(float(metrics[k])) for k in metrics)
    # Hyperparameters are plain data and rebuild the same module.
    again = PBELitModule(**module.hparams)
    assert again.model.config == module.model.config


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(55, 10, 100, 0.1) == pytest.approx(0.55)
    assert warmup_cosine(100, 10, 100, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(500, 10, 100, 0.1) == pytest.approx(0.1)


# -------------------------------------------------------------------------- pass@k


def test_pass_at_k_hand_computed_values():
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 4, 2) == 1.0  # n - c < k
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - math.comb(7, 5) / math.comb(10, 5))
    # Large n, where the binomials themselves would overflow a float.
    assert pass_at_k(2000, 10, 100) == pytest.approx(1 - math.comb(1990, 100) / math.comb(2000, 100))


def test_pass_at_k_vectorised():
    n = np.array([5, 5, 10, 200, 2])
    c = np.array([2, 0, 3, 50, 1])
    got = pass_at_k(n, c, 2)
    want = [1 - math.comb(a - b, 2) / math.comb(a, 2) if a - b >= 2 else 1.0 for a, b in zip(n, c)]
    assert isinstance(got, np.ndarray) and got.shape == (5,)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(pass_at_k(10, 3, np.array([1, 2, 10])),
                               [1 - math.comb(7, k) / math.comb(10, k) for k in (1, 2)] + [1.0])


@pytest.mark.parametrize("n, c, k, match", [
    (5, 2, 6, "k must be <= n"),
    (5, 6, 1, "c .* must be <= n"),
    (-1, 0, 1, "n .* must be >= 0"),
    (5, -1, 1, "c .* must be >= 0"),
    (5, 2, 0, "k must be >= 1"),
    (5, 2.5, 1, "whole numbers"),
])
def test_pass_at_k_rejects_bad_input(n, c, k, match):
    with pytest.raises(ValueError, match=match):
        pass_at_k(n, c, k)
