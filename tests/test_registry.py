"""Tests for models/registry.py: the architectures, their size ladders and FLOPs, and adding one.

A toy architecture defined in this file (one config, one encoder, the shared decoder)
is registered and trained through `gensynth train --arch toy`: adding an architecture
is one file plus its test.
"""

import itertools
import json
import shutil
from dataclasses import dataclass

import duckdb
import pytest
import torch
import torch.nn as nn
from typer.testing import CliRunner

from helpers import add_split, make_split_warehouse
from models import registry
from models.decoder import PrefixDecoder, decoder_macs
from models.flops import training_flops

GRID = tuple(itertools.product([-2 + 4 * i / 7 for i in range(8)], repeat=2))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def config_of(arch: str, size: str, vocab: int = 12, max_len: int = 9):
    entry = registry.get(arch)
    extra = {"grid": GRID} if entry.grid_input else {}
    return entry.config(size, vocab_size=vocab, n_points=64, max_len=max_len, **extra)


# ------------------------------------------------------------------------ registry


def test_both_architectures_are_registered_with_ladders_of_at_least_300x():
    assert {"grid64", "lines"} <= set(registry.names())
    for name in ("grid64", "lines"):
        entry = registry.get(name)
        assert entry.default_size in entry.sizes
        params = [entry.build(config_of(name, s)).num_params() for s in entry.sizes]
        assert params == sorted(params), (name, params)  # smallest to largest
        assert params[-1] / params[0] >= 300, (name, params)


def test_unknown_architecture_and_size_name_the_known_ones():
    from gensynth.errors import GensynthError
    from gensynth.learning.config import ModelSpec

    with pytest.raises(GensynthError, match="Unknown --arch 'grid65'.*known:") as err:
        ModelSpec(arch="grid65")
    assert "grid64 (" in str(err.value) and "lines (" in str(err.value)
    with pytest.raises(GensynthError, match="Unknown --size 'xl' for --arch grid64"):
        ModelSpec(arch="grid64", size="xl")
    assert ModelSpec(arch="lines").size == registry.get("lines").default_size  # recorded resolved


def test_the_size_help_lists_every_registered_size():
    """--size's help is a docstring in gensynth.learning.config: it must name each architecture's sizes."""
    from gensynth.learning.options import train_options

    text = next(o.help for o in train_options() if o.name == "size")
    for name in registry.names():
        assert f"{name}: {', '.join(registry.get(name).sizes)}" in text, name


@pytest.mark.parametrize("arch, size, B, T", [("grid64", "nano", 4, 16), ("grid64", "micro", 2, 23),
                                              ("lines", "nano", 4, 8), ("lines", "micro", 3, 10),
                                              ("lines", "small", 2, 8)])
def test_training_flops_match_flop_counter(arch, size, B, T):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    cfg = config_of(arch, size, max_len=max(T, 9))
    model = registry.get(arch).build(cfg)
    g = torch.Generator().manual_seed(0)
    values, shown = torch.randn(B, 64, generator=g) * 5, torch.rand(B, 64, generator=g) > 0.2
    tokens = torch.randint(3, 12, (B, T), generator=g)
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        model(values, shown, tokens).logsumexp(-1).sum().backward()
    estimate = training_flops(cfg, n_sequences=B, dec_len=T)
    assert abs(estimate / counter.get_total_flops() - 1) < 0.10, (estimate, counter.get_total_flops())
    assert training_flops(cfg, 10 * B, T) == 10 * estimate


# -------------------------------------------------------------- a new architecture


@dataclass(frozen=True, kw_only=True)
class ToyConfig:
    vocab_size: int
    n_points: int
    max_len: int = 24
    d_model: int = 16
    n_heads: int = 2
    n_dec_layers: int = 1
    d_ff: int = 32
    dropout: float = 0.0


class Toy(PrefixDecoder, nn.Module):
    """One memory slot: a linear map of the shown values (clipped) and the shown flags."""

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        self.inp = nn.Linear(2 * config.n_points, config.d_model)
        self._init_decoder(config.vocab_size, config.d_model, config.n_heads, config.n_dec_layers, config.d_ff,
                           config.max_len, config.dropout)

    def encode(self, values, shown):
        v = torch.nan_to_num(values.masked_fill(~shown.bool(), 0.0), posinf=0.0, neginf=0.0).clamp(-10, 10)
        return self.inp(torch.cat([v.float(), shown.float()], dim=-1))[:, None, :], None

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def toy_flops(config: ToyConfig, n_sequences: int, dec_len: int) -> int:
    weights, attention = decoder_macs(config.d_model, config.d_ff, config.vocab_size, config.n_dec_layers, dec_len, 1)
    return n_sequences * 6 * (2 * config.n_points * config.d_model + weights + attention)


@pytest.fixture
def toy():
    entry = registry.register(registry.Architecture(
        name="toy", description="a test architecture", config_class=ToyConfig, sizes={"s": {}, "m": {"d_model": 32}},
        default_size="s", build=Toy, training_flops=toy_flops))
    yield entry
    registry._REGISTRY.pop("toy", None)


def test_a_new_architecture_is_one_file_and_trains_through_the_cli(toy, tmp_path_factory):
    from gensynth.cli.main import app
    from gensynth.results.ingest import runs_root
    from gensynth.warehouse import connect

    wh = make_split_warehouse(tmp_path_factory.mktemp("toy") / "w.duckdb")
    con = connect(wh)
    add_split(con, "small", roles=(("train", 20), ("val", 5), ("test_id", 10)), seed=3)
    con.close()
    result = CliRunner().invoke(app, ["train", "--view", "split_small", "--arch", "toy", "--max-steps", "5",
                                      "--batch-size", "16", "-q", "-w", str(wh)])
    assert result.exit_code == 0, (result.output, result.exception)
    con = duckdb.connect(str(wh), read_only=True)
    [(run_id, arch, size, n_params, status)] = con.execute("SELECT run_id, arch, size, n_params, status FROM runs").fetchall()
    n_pred = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    con.close()
    assert (arch, size, status) == ("toy", "s", "finished") and n_pred > 0
    cfg = json.loads((runs_root(wh) / run_id / "config.json").read_text())
    assert n_params == Toy(ToyConfig(**cfg["resolved"]["model"])).num_params()
    assert cfg["model"]["arch"] == "toy" and cfg["resolved"]["arch"] == "toy"
    from gensynth.learning.rundirs import load_model

    model, grammar, arity = load_model(runs_root(wh) / run_id)
    assert isinstance(model, Toy) and arity.shape == (3 + len(grammar.symbols),)
    shutil.rmtree(wh.parent)
