"""grid64: the paper's programming-by-example transformer, one encoder position per grid point.

An encoder reads a function's outputs on a fixed grid of P input points (one position
per point, the point identified by a learned index embedding, plus a summary slot); the
shared decoder (``models.decoder``) writes a program as prefix tokens, cross-attending
to the encoded points. Read it top down: config, the model, the size ladder, the FLOPs
formula, the registry entry. Kept as the study's architecture and for comparison.

Shapes in comments: B batch, P grid points, S = P + 1 encoder positions (the grid plus
one summary slot), T decoder positions, C = d_model, H heads, V vocabulary.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

import torch
import torch.nn as nn

from models.blocks import (BOS, EOS, N_SPECIAL, N_VALUE_FEATURES, PAD, EncoderBlock, init_weights,  # noqa: F401 (re-exported)
                           value_features)
from models.decoder import PrefixDecoder, decoder_macs
from models.errors import ModelError
from models.registry import Architecture, register


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Architecture of a PBETransformer. Build presets with ``config_for``."""

    vocab_size: int
    """Output vocabulary: 3 special tokens (PAD, BOS, EOS) + the grammar's symbols."""
    n_points: int = 64
    """P, the number of grid points whose values the encoder reads."""
    max_len: int = 24
    """Longest decoder sequence, counting BOS and EOS; sizes the position table."""
    d_model: int = 128
    """Width C of the residual stream in encoder and decoder."""
    n_heads: int = 4
    """Attention heads per layer; must divide d_model."""
    n_enc_layers: int = 3
    """Encoder blocks (self-attention over the grid points)."""
    n_dec_layers: int = 3
    """Decoder blocks (causal self-attention, cross-attention, MLP)."""
    d_ff: int = 512
    """Hidden width of each block's MLP (usually 4 * d_model)."""
    dropout: float = 0.0
    """Dropout on the embeddings, attention weights and residual branches, in [0, 1)."""

    def __post_init__(self):
        # Collect every problem so one run reports them all, each naming its field.
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            kind = numbers.Real if f.name == "dropout" else numbers.Integral
            if isinstance(value, bool) or not isinstance(value, kind):
                problems.append(f"{f.name} must be {'a number' if f.name == 'dropout' else 'an integer'}, "
                                f"got {value!r}")
        if problems:  # the range checks below would fail on non-numbers
            raise ModelError("invalid ModelConfig: " + "; ".join(problems))
        lowest = {
            "vocab_size": (N_SPECIAL + 1, " (3 special tokens + at least one grammar symbol)"),
            "n_points": (1, ""),
            "max_len": (3, " (BOS, one symbol, EOS)"),
            "d_model": (1, ""),
            "n_heads": (1, ""),
            "n_enc_layers": (1, ""),
            "n_dec_layers": (1, ""),
            "d_ff": (1, ""),
        }
        for name, (low, why) in lowest.items():
            if getattr(self, name) < low:
                problems.append(f"{name} must be >= {low}{why}, got {getattr(self, name)}")
        if self.n_heads >= 1 and self.d_model % self.n_heads != 0:
            problems.append(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if problems:
            raise ModelError("invalid ModelConfig: " + "; ".join(problems))


# ------------------------------------------------------------------------- the model


class PBETransformer(PrefixDecoder, nn.Module):
    """Encoder over the shown grid values (one position per point), the shared prefix decoder."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        C = config.d_model
        # Encoder input: featurised value + which grid point it is (the grid is fixed,
        # so a learned embedding per index stands in for the point's coordinates).
        self.value_proj = nn.Linear(N_VALUE_FEATURES, C)
        self.grid_emb = nn.Embedding(config.n_points, C)
        # One learned summary slot, always visible, prepended to the grid. It gives the
        # decoder something to attend to even when every point is hidden (an all-False
        # mask would make softmax produce NaN), and a place to pool the whole function.
        self.summary = nn.Parameter(torch.zeros(1, 1, C))
        self.encoder = nn.ModuleList(EncoderBlock(C, config.n_heads, config.d_ff, config.dropout)
                                     for _ in range(config.n_enc_layers))
        self.ln_enc = nn.LayerNorm(C)
        # The decoder: token + position embeddings, blocks, tied head (registered after the
        # encoder, so parameter init draws in the same order as before the decoder was shared).
        self._init_decoder(config.vocab_size, C, config.n_heads, config.n_dec_layers, config.d_ff, config.max_len,
                           config.dropout)

        self.apply(init_weights)
        # GPT-2 init: scale each residual-branch output projection by 1/sqrt(#branches)
        # so the residual stream's variance does not grow with depth.
        n_branches = 2 * config.n_enc_layers + 3 * config.n_dec_layers
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") and name != "value_proj.weight":
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(n_branches))
        nn.init.normal_(self.summary, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (the tied token table counted once).

        non_embedding=True leaves out the lookup tables that do no arithmetic: grid
        and decoder position embeddings (the token table stays: it is the output head).
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.grid_emb.weight.numel() + self.pos_emb.weight.numel()
        return n

    def encode(self, values: torch.Tensor, shown: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """values (B, P) float, shown (B, P) bool -> memory (B, S, C), memory_keep (B, S) bool."""
        B, P = values.shape
        if P != self.config.n_points or shown.shape != values.shape:
            raise ModelError(f"values and shown must both be (B, n_points={self.config.n_points}), "
                             f"got {tuple(values.shape)} and {tuple(shown.shape)}")
        shown = shown.bool()
        # Hidden values are zeroed too; the mask alone already keeps them out of every
        # shown point's and every token's view, this just keeps them out of arithmetic.
        values = values.masked_fill(~shown, 0.0)
        feats = value_features(values).to(self.value_proj.weight.dtype)  # (B, P, N_VALUE_FEATURES)
        grid = torch.arange(P, device=values.device)  # (P,)
        x = self.value_proj(feats) + self.grid_emb(grid)  # (B, P, C)
        x = torch.cat([self.summary.expand(B, 1, -1), x], dim=1)  # (B, S, C)
        x = self.drop(x)
        keep = torch.cat([shown.new_ones(B, 1), shown], dim=1)  # (B, S); summary always kept
        for block in self.encoder:
            x = block(x, keep)
        return self.ln_enc(x), keep

    # decode, forward, generate: models.decoder.PrefixDecoder (with the KV cache).


# ---------------------------------------------------------------------- size ladder

# Named sizes, smallest to largest (2.5x to 7x apart); the comment gives the parameter
# count at vocab_size=12, n_points=64, max_len=24 (the default grammar), 400x in all.
# Heads are 16 to 32 wide and d_ff = 4 * d_model, as in GPT-2; the larger decoders
# are deeper than their encoders because the decoder does the writing.
SIZES: dict[str, dict] = {
    "nano": dict(d_model=32, n_heads=2, n_enc_layers=1, n_dec_layers=1, d_ff=128),  # 34k
    "micro": dict(d_model=64, n_heads=4, n_enc_layers=2, n_dec_layers=2, d_ff=256),  # 242k
    "tiny": dict(d_model=96, n_heads=4, n_enc_layers=2, n_dec_layers=3, d_ff=384),  # 685k
    "small": dict(d_model=128, n_heads=4, n_enc_layers=3, n_dec_layers=4, d_ff=512),  # 1.67M
    "medium": dict(d_model=192, n_heads=6, n_enc_layers=4, n_dec_layers=6, d_ff=768),  # 5.37M
    "large": dict(d_model=256, n_heads=8, n_enc_layers=6, n_dec_layers=8, d_ff=1024),  # 13.2M
}


def config_for(size: str, **overrides) -> ModelConfig:
    """The ModelConfig of a named size, with fields overridden (vocab_size is required).

    Example: ``config_for("tiny", vocab_size=12, dropout=0.1)``.
    """
    if size not in SIZES:
        raise ModelError(f"unknown model size {size!r}; known sizes: {', '.join(SIZES)}")
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ModelError(f"unknown ModelConfig field(s) {', '.join(unknown)}; fields: {', '.join(sorted(known))}")
    if "vocab_size" not in overrides:
        raise ModelError("config_for needs vocab_size= (3 + the grammar's number of symbols)")
    return ModelConfig(**{**SIZES[size], **overrides})



def training_flops(config: ModelConfig, n_sequences: int, dec_len: int, enc_len: int | None = None) -> int:
    """FLOPs to train grid64 on n_sequences examples (forward + backward), one multiply-add = 2 FLOPs.

    Arguments:
        n_sequences: examples processed (batch size x steps, summed over epochs).
        dec_len: decoder input length T per example (under teacher forcing the target
            length minus one; padded length if batches are padded to a fixed length).
        enc_len: grid points P per example (default config.n_points). The encoder
            runs on S = P + 1 positions: the grid plus the learned summary slot.

    What is counted, per example (C = d_model, F = d_ff, V = vocab_size):
      * Matrix multiplies by weights, 6 FLOPs per weight per token it acts on (2 forward,
        4 backward: input grad and weight grad), each weight paired with the tokens it
        really acts on:
          - value projection (31 x C) on P grid points;
          - encoder layers, 4C^2 (q, k, v, out) + 2CF (MLP) on S encoder positions;
          - the decoder (``models.decoder.decoder_macs``): per layer 4C^2 + 2C^2 + 2CF on
            T positions and 2C^2 (cross-attention k and v) on the S memory positions;
            the tied head C x V on T positions.
      * Attention scores (Q K^T) and weighted values (A V): 2 x 2 x T_q x T_k x C
        forward per layer, x3 for forward + backward: encoder self-attention S x S,
        decoder self-attention T x T (counted dense: the causal mask saves no work in
        the kernels, and FlopCounterMode counts it dense too), cross-attention T x S.

    Not counted: embedding lookups, biases, layer norms, GELU, softmax, dropout, the
    loss, and the optimizer step; all are O(C) per token, a few percent at most. The
    value projection's input needs no gradient, so the estimate overcounts it by 2
    FLOPs per weight per point, a negligible amount.
    """
    P = config.n_points if enc_len is None else enc_len
    S, T = P + 1, dec_len
    C, Ff = config.d_model, config.d_ff
    dec_weights, dec_attention = decoder_macs(C, Ff, config.vocab_size, config.n_dec_layers, T, S)
    macs = N_VALUE_FEATURES * C * P + config.n_enc_layers * (4 * C * C + 2 * C * Ff) * S + dec_weights
    attn_macs = config.n_enc_layers * 2 * S * S * C + dec_attention
    return n_sequences * (6 * macs + 3 * 2 * attn_macs)  # backward is about twice the forward


# ------------------------------------------------------------------------ registry

ARCH = register(Architecture(
    name="grid64",
    description="the paper's transformer: one encoder position per grid point (65 for the 8x8 grid)",
    config_class=ModelConfig,
    sizes=SIZES,
    default_size="micro",
    build=lambda config: PBETransformer(config),
    training_flops=training_flops,
))

__all__ = ["PAD", "BOS", "EOS", "N_SPECIAL", "ModelConfig", "value_features", "PBETransformer",
           "SIZES", "config_for", "training_flops", "ARCH"]
