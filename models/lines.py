"""lines: the grid read as its lines (rows and columns), coordinates as inputs; the shared decoder.

grid64 gives the encoder one position per grid point (65 for the 8x8 grid) and learns
each point's place through an index embedding. ``lines`` gives it one position per
*line* of the grid (every row and every column, 16 for 8x8, plus a summary slot): a
line's token is a linear map of its points' value features laid side by side, so the
token sees how the function changes along x (a row) or along y (a column) — it also
gets the features of the line's consecutive differences, the slope along the line,
which raised per-function test_id pass@1 by two thirds at equal CPU time — and the
line's fixed coordinate (the y of a row, the x of a column) enters as Fourier features
of its value, not as an index. Self-attention over 17 positions instead of 65 makes
the encoder about 4x cheaper per layer and the memory the decoder reads 4x smaller, so
at equal CPU time the model can be wider and see more examples (measured in
``benchmarks/learning.py``). For a grid of D variables the lines run along each axis
(P / n_a lines along axis a of n_a points); a 1-D grid is one line.

Read it top down: config (with the grid's points), line geometry, the model, the size
ladder, the FLOPs formula, the registry entry. Shapes: B batch, P grid points, L lines,
S = L + 1 encoder positions, T decoder positions, C = d_model, V vocabulary.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

import torch
import torch.nn as nn

from models.blocks import N_SPECIAL, N_VALUE_FEATURES, EncoderBlock, init_weights, value_features
from models.decoder import PrefixDecoder, decoder_macs
from models.errors import ModelError
from models.registry import Architecture, register

POINT_FEATURES = N_VALUE_FEATURES + 1  # value features + "shown" flag
COORD_FREQS = (1.0, 2.0, 4.0)  # sin / cos of pi * k * u for a coordinate u scaled to [-1, 1]
COORD_FEATURES = 1 + 2 * len(COORD_FREQS)


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True, kw_only=True)
class LinesConfig:
    """Architecture of a LinesTransformer. Build presets with ``models.registry.get('lines').config``."""

    vocab_size: int
    """Output vocabulary: 3 special tokens (PAD, BOS, EOS) + the grammar's symbols."""
    grid: tuple[tuple[float, ...], ...]
    """The grid's points in order (one coordinate per variable, the first varying slowest)."""
    n_points: int = 0
    """P, the number of grid points (0: len(grid))."""
    max_len: int = 24
    """Longest decoder sequence, counting BOS and EOS; sizes the position table."""
    d_model: int = 64
    """Width C of the residual stream in encoder and decoder."""
    n_heads: int = 4
    """Attention heads per layer; must divide d_model."""
    n_enc_layers: int = 2
    """Encoder blocks (self-attention over the lines and the summary slot)."""
    n_dec_layers: int = 2
    """Decoder blocks (causal self-attention, cross-attention, MLP)."""
    d_ff: int = 256
    """Hidden width of each block's MLP (usually 4 * d_model)."""
    dropout: float = 0.0
    """Dropout on the embeddings, attention weights and residual branches, in [0, 1)."""
    deltas: bool = True
    """Also give each line's token the value features of its consecutive differences (the slope along the line)."""

    def __post_init__(self):
        # JSON (config.json, checkpoints) brings lists back: store tuples, so configs compare and hash.
        object.__setattr__(self, "grid", tuple(tuple(float(c) for c in p) for p in self.grid))
        if self.n_points == 0:
            object.__setattr__(self, "n_points", len(self.grid))
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("grid", "deltas"):
                continue
            kind = numbers.Real if f.name == "dropout" else numbers.Integral
            if isinstance(value, bool) or not isinstance(value, kind):
                problems.append(f"{f.name} must be {'a number' if f.name == 'dropout' else 'an integer'}, got {value!r}")
        if problems:
            raise ModelError("invalid LinesConfig: " + "; ".join(problems))
        for name, low in (("vocab_size", N_SPECIAL + 1), ("max_len", 3), ("d_model", 1), ("n_heads", 1),
                          ("n_enc_layers", 1), ("n_dec_layers", 1), ("d_ff", 1)):
            if getattr(self, name) < low:
                problems.append(f"{name} must be >= {low}, got {getattr(self, name)}")
        if self.d_model % max(1, self.n_heads):
            problems.append(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if self.n_points != len(self.grid):
            problems.append(f"n_points ({self.n_points}) must equal the number of grid points ({len(self.grid)})")
        else:
            problems += _grid_problems(self.grid)
        if problems:
            raise ModelError("invalid LinesConfig: " + "; ".join(problems))


def grid_axes(grid: tuple[tuple[float, ...], ...]) -> list[list[float]]:
    """Each variable's distinct coordinates, ascending."""
    return [sorted({p[d] for p in grid}) for d in range(len(grid[0]))]


def _grid_problems(grid) -> list[str]:
    if not grid or not grid[0]:
        return ["the grid must have at least one point with at least one coordinate"]
    axes = grid_axes(grid)
    expected = [tuple(c) for c in torch.cartesian_prod(*[torch.tensor(a, dtype=torch.float64) for a in axes])
                .reshape(-1, len(axes)).tolist()]
    if [tuple(p) for p in grid] != expected:
        return ["the grid must be the full cartesian product of its axes in order (first variable slowest), "
                "as gensynth grammars define it"]
    return []


# ---------------------------------------------------------------------- geometry


def line_layout(grid) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per axis a: (point index (L_a, n_a) of each line's points in order, fixed coordinates (L_a, D - 1) scaled).

    A line along axis a holds the n_a points that share every other coordinate; the
    scaled fixed coordinates (each axis mapped to [-1, 1]) say where the line lies.
    """
    axes = grid_axes(grid)
    sizes = [len(a) for a in axes]
    index = torch.arange(math.prod(sizes)).reshape(sizes)  # point id by coordinate indices
    scaled = [torch.tensor([(2 * (c - a[0]) / (a[-1] - a[0]) - 1) if len(a) > 1 else 0.0 for c in a]) for a in axes]
    layout = []
    for a in range(len(sizes)):
        points = index.movedim(a, -1).reshape(-1, sizes[a])  # (L_a, n_a), other axes in order
        others = [d for d in range(len(sizes)) if d != a]
        if others:
            fixed = torch.cartesian_prod(*[scaled[d] for d in others]).reshape(len(points), len(others))
        else:
            fixed = torch.zeros(1, 0)
        layout.append((points, fixed.float()))
    return layout


def line_inputs(n_points: int, deltas: bool) -> int:
    """Input width of a line's token: its points' features, and its n - 1 differences' value features."""
    return n_points * POINT_FEATURES + (n_points - 1) * N_VALUE_FEATURES * deltas


def coordinate_features(u: torch.Tensor) -> torch.Tensor:
    """Fourier features of scaled coordinates u (..., K) in [-1, 1] -> (..., K * COORD_FEATURES)."""
    waves = [f(math.pi * k * u) for k in COORD_FREQS for f in (torch.sin, torch.cos)]
    return torch.stack([u, *waves], dim=-1).flatten(-2)


# ------------------------------------------------------------------------- the model


class LinesTransformer(PrefixDecoder, nn.Module):
    """Encoder over the grid's lines (plus a summary slot), the shared prefix decoder."""

    def __init__(self, config: LinesConfig):
        super().__init__()
        self.config = config
        C = config.d_model
        layout = line_layout(config.grid)
        for a, (points, fixed) in enumerate(layout):  # buffers: they follow the model to its device
            self.register_buffer(f"line_points_{a}", points, persistent=False)
            self.register_buffer(f"line_coords_{a}", coordinate_features(fixed), persistent=False)
        self.n_axes = len(layout)
        # One projection per axis: a line's points side by side (n_a * POINT_FEATURES) -> C,
        # and its fixed coordinates' features -> C.
        self.line_proj = nn.ModuleList(nn.Linear(line_inputs(p.shape[1], config.deltas), C) for p, _ in layout)
        self.coord_proj = nn.ModuleList(nn.Linear(max(1, f.shape[1] * COORD_FEATURES), C) for _, f in layout)
        self.summary = nn.Parameter(torch.zeros(1, 1, C))  # always present: a place to pool the function
        self.encoder = nn.ModuleList(EncoderBlock(C, config.n_heads, config.d_ff, config.dropout)
                                     for _ in range(config.n_enc_layers))
        self.ln_enc = nn.LayerNorm(C)
        self._init_decoder(config.vocab_size, C, config.n_heads, config.n_dec_layers, config.d_ff, config.max_len,
                           config.dropout)
        self.apply(init_weights)
        # GPT-2 init: residual-branch output projections scaled by 1/sqrt(#branches).
        n_branches = 2 * config.n_enc_layers + 3 * config.n_dec_layers
        for name, p in self.named_parameters():
            if name.endswith(".proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(n_branches))
        nn.init.normal_(self.summary, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Parameter count (the tied token table counted once)."""
        return sum(p.numel() for p in self.parameters())

    def encode(self, values: torch.Tensor, shown: torch.Tensor) -> tuple[torch.Tensor, None]:
        """values (B, P) float, shown (B, P) bool -> memory (B, S, C), None (every position may be attended).

        A hidden point enters its line as zeros with its "shown" flag off, so no position
        is ever masked (a line of hidden points is still a valid, uninformative token).
        """
        B, P = values.shape
        if P != self.config.n_points or shown.shape != values.shape:
            raise ModelError(f"values and shown must both be (B, n_points={self.config.n_points}), "
                             f"got {tuple(values.shape)} and {tuple(shown.shape)}")
        shown = shown.bool()
        values = values.masked_fill(~shown, 0.0)
        dtype = self.summary.dtype
        feats = torch.cat([value_features(values).to(dtype), shown.to(dtype)[..., None]], dim=-1)  # (B, P, F)
        tokens = [self.summary.expand(B, 1, -1)]
        for a in range(self.n_axes):
            points = getattr(self, f"line_points_{a}")  # (L_a, n_a)
            coords = getattr(self, f"line_coords_{a}").to(dtype)  # (L_a, K)
            line = feats[:, points].flatten(2)  # (B, L_a, n_a * F): the line's points side by side
            if self.config.deltas:  # consecutive differences along the line, featurised like values
                steps = values[:, points].diff(dim=-1)  # (B, L_a, n_a - 1)
                line = torch.cat([line, value_features(steps).to(dtype).flatten(2)], dim=-1)
            where = self.coord_proj[a](coords) if coords.shape[1] else self.coord_proj[a].bias  # (L_a, C)
            tokens.append(self.line_proj[a](line) + where)  # (B, L_a, C)
        x = self.drop(torch.cat(tokens, dim=1))  # (B, S, C)
        for block in self.encoder:
            x = block(x, None)
        return self.ln_enc(x), None

    # decode, forward, generate: models.decoder.PrefixDecoder (with the KV cache).


# ---------------------------------------------------------------------- size ladder

# Named sizes, smallest to largest; the comment gives the parameter count for the
# default grammar (vocab 12, 8x8 grid, max_len 9). Heads 16-32 wide, d_ff = 4 d_model;
# the decoder is at least as deep as the encoder: it does the writing. nano to xl: ~900x.
SIZES: dict[str, dict] = {
    "nano": dict(d_model=32, n_heads=2, n_enc_layers=1, n_dec_layers=1, d_ff=128),
    "micro": dict(d_model=64, n_heads=4, n_enc_layers=2, n_dec_layers=2, d_ff=256),
    "tiny": dict(d_model=96, n_heads=4, n_enc_layers=2, n_dec_layers=3, d_ff=384),
    "small": dict(d_model=128, n_heads=4, n_enc_layers=3, n_dec_layers=4, d_ff=512),
    "medium": dict(d_model=192, n_heads=6, n_enc_layers=4, n_dec_layers=6, d_ff=768),
    "large": dict(d_model=256, n_heads=8, n_enc_layers=6, n_dec_layers=8, d_ff=1024),
    "xl": dict(d_model=384, n_heads=12, n_enc_layers=8, n_dec_layers=10, d_ff=1536),
}


# -------------------------------------------------------------------------- FLOPs


def training_flops(config: LinesConfig, n_sequences: int, dec_len: int) -> int:
    """FLOPs to train lines on n_sequences examples (forward + backward), one multiply-add = 2 FLOPs.

    Per example (C = d_model, F = d_ff, P points, L = sum over axes of P / n_a lines,
    S = L + 1 encoder positions, T = dec_len): weights at 6 FLOPs per weight per
    position it acts on (2 forward, 4 backward) — the encoder's 4C^2 + 2CF on S
    positions and the decoder — except the input projections (each line's n_a * 32
    point features and (n_a - 1) * 31 difference features -> C, and the coordinate
    features -> C), whose inputs need no gradient: 4 FLOPs per weight; the decoder is
    ``models.decoder.decoder_macs`` with a memory of S positions; attention (Q K^T and A V,
    S x S in the encoder) at 3 x its 2 forward FLOPs per multiply-add. Not counted:
    feature computation, gathers, biases, layer norms, softmax, loss, optimizer.
    """
    layout = line_layout(config.grid)
    C, Ff, T = config.d_model, config.d_ff, dec_len
    L = sum(len(points) for points, _ in layout)
    S = L + 1
    # The input projections act on features that need no gradient: forward + weight gradient, 4 FLOPs per weight.
    inputs = sum(len(points) * (line_inputs(points.shape[1], config.deltas) + max(1, fixed.shape[1] * COORD_FEATURES)) * C
                 for points, fixed in layout)
    macs = config.n_enc_layers * (4 * C * C + 2 * C * Ff) * S
    dec_weights, dec_attention = decoder_macs(C, Ff, config.vocab_size, config.n_dec_layers, T, S)
    attn = config.n_enc_layers * 2 * S * S * C + dec_attention
    return n_sequences * (4 * inputs + 6 * (macs + dec_weights) + 6 * attn)


# ------------------------------------------------------------------------ registry

ARCH = register(Architecture(
    name="lines",
    description="one encoder position per grid row and column (17 for the 8x8 grid), coordinates as inputs",
    config_class=LinesConfig,
    sizes=SIZES,
    default_size="micro",
    build=lambda config: LinesTransformer(config),
    training_flops=training_flops,
    grid_input=True,
    default_lr=3e-3,
))
