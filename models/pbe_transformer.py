"""The programming-by-example transformer: function values in, prefix program out.

An encoder reads a function's outputs on a fixed grid of P input points; a decoder
writes a program as prefix tokens, cross-attending to the encoded points. Read it top
down: config, value featurisation, attention, blocks, the model, then the size ladder.

Shapes in comments: B batch, P grid points, S = P + 1 encoder positions (the grid plus
one summary slot), T decoder positions, C = d_model, H heads, V vocabulary.

Token ids are fixed across the project: PAD=0, BOS=1, EOS=2, grammar symbols from 3.
A target is ``BOS t1 ... tn EOS`` then PAD.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.errors import ModelError

PAD, BOS, EOS = 0, 1, 2
N_SPECIAL = 3  # grammar symbols start at this id


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


# ------------------------------------------------------------------ value features

LOG_SCALE = 10.0  # log1p(|v|) / 10: 1e6 -> 1.4, the float64 maximum -> 71, all finite
CLIP = 4.0  # the raw value clipped to [-4, 4] and divided by 4
# Fourier features sin(w v), cos(w v) at w = pi * 2^k: periods from 128 down to 1/8.
FOURIER_FREQS = tuple(math.pi * 2.0**k for k in range(-6, 5))
FOURIER_CLAMP = 1e4  # v is clamped first so sin / cos stay accurate in float32
N_VALUE_FEATURES = 9 + 2 * len(FOURIER_FREQS)


def value_features(values: torch.Tensor) -> torch.Tensor:
    """Per-point features of function values, finite for any input, (B, P) -> (B, P, 31).

    Values span 1e-3..1e6 and beyond and may be NaN or +-inf where the program is
    undefined. A raw value would swamp the network, so each point is described by
    flags for its kind (finite, NaN, +inf, -inf), its sign, its magnitude on a log
    scale, and its raw value clipped to a small range (the log scale squashes the
    differences between small values that the clipped value keeps). Non-finite
    values are replaced by 0 before any arithmetic, so no NaN or inf enters the net.
    Computed in the input's dtype: float64 values up to 1.8e308 stay finite here.

    The log and clipped features make nearby values (4 vs 5, 8 vs 9) almost equal
    inputs, yet an exact answer has to tell them apart: sin and cos of the value at
    11 frequencies (periods 128 down to 1/8) give every value up to ~64 a distinct,
    well-separated code. On the max-ops-2 universe they raised a nano model's train
    pass@1 after 2,000 steps from 0.67 to 0.90 (20% of programs as train, batch 64).
    """
    finite = torch.isfinite(values)  # (B, P)
    v = torch.where(finite, values, torch.zeros_like(values))  # (B, P), 0 where undefined
    log_mag = torch.log1p(v.abs()) / LOG_SCALE
    sign = torch.sign(v)
    vc = v.clamp(-FOURIER_CLAMP, FOURIER_CLAMP)
    waves = [f(vc * w) for w in FOURIER_FREQS for f in (torch.sin, torch.cos)]  # 0 where undefined: sin 0, cos 0 = 1
    return torch.stack(
        [
            finite,
            torch.isnan(values),
            torch.isposinf(values),
            torch.isneginf(values),
            sign,
            log_mag,
            sign * log_mag,  # signed log: monotone in v, so order is visible in one feature
            v.clamp(-CLIP, CLIP) / CLIP,
            finite & (v == torch.round(v)),  # integer-valued points hint at polynomial programs
            *waves,
        ],
        dim=-1,
    ).to(values.dtype)  # (B, P, 31); the bool flags become 0.0 / 1.0


# ------------------------------------------------------------------- building blocks


class Attention(nn.Module):
    """Multi-head attention from queries x to a context: self-attention when ctx is x.

    Queries and keys/values have separate projections so the same module serves
    self-attention and cross-attention (decoder queries, encoder keys/values).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.dropout = config.dropout
        self.q = nn.Linear(config.d_model, config.d_model)
        self.kv = nn.Linear(config.d_model, 2 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, keep: torch.Tensor | None = None,
                causal: bool = False) -> torch.Tensor:
        """x (B, T, C) attends to ctx (B, S, C); keep (B, S) bool marks keys it may see."""
        B, T, C = x.shape
        S = ctx.shape[1]
        hd = C // self.n_heads
        q = self.q(x).view(B, T, self.n_heads, hd).transpose(1, 2)  # (B, H, T, hd)
        k, v = self.kv(ctx).split(C, dim=2)  # (B, S, C) each
        k = k.view(B, S, self.n_heads, hd).transpose(1, 2)  # (B, H, S, hd)
        v = v.view(B, S, self.n_heads, hd).transpose(1, 2)  # (B, H, S, hd)
        # Boolean mask, True = may attend; (B, 1, 1, S) broadcasts over heads and queries.
        mask = None if keep is None else keep[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal,
            dropout_p=self.dropout if self.training else 0.0,
        )  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, C)  # re-join the heads: (B, T, C)
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: C -> d_ff -> C with a GELU."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.d_ff)
        self.proj = nn.Linear(config.d_ff, config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))  # (B, T, C)


class EncoderBlock(nn.Module):
    """Pre-LN block: self-attention over the shown grid points, then an MLP."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model)
        self.attn = Attention(config)
        self.ln_2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)  # (B, S, C)
        x = x + self.attn(h, h, keep=keep)
        return x + self.mlp(self.ln_2(x))


class DecoderBlock(nn.Module):
    """Pre-LN block: causal self-attention, cross-attention to the points, an MLP."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model)
        self.self_attn = Attention(config)
        self.ln_2 = nn.LayerNorm(config.d_model)
        self.cross_attn = Attention(config)
        self.ln_3 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_keep: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)  # (B, T, C)
        x = x + self.self_attn(h, h, causal=True)
        # memory is already layer-normed by the encoder, so only the queries are normed.
        x = x + self.cross_attn(self.ln_2(x), memory, keep=memory_keep)
        return x + self.mlp(self.ln_3(x))


# ------------------------------------------------------------------------- the model


class PBETransformer(nn.Module):
    """Encoder over the shown grid values, causal decoder over program tokens."""

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
        self.encoder = nn.ModuleList(EncoderBlock(config) for _ in range(config.n_enc_layers))
        self.ln_enc = nn.LayerNorm(C)
        # Decoder input: token + position embeddings.
        self.tok_emb = nn.Embedding(config.vocab_size, C)
        self.pos_emb = nn.Embedding(config.max_len, C)
        self.drop = nn.Dropout(config.dropout)
        self.decoder = nn.ModuleList(DecoderBlock(config) for _ in range(config.n_dec_layers))
        self.ln_dec = nn.LayerNorm(C)
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # weight tying: one table in, one out

        self.apply(self._init_weights)
        # GPT-2 init: scale each residual-branch output projection by 1/sqrt(#branches)
        # so the residual stream's variance does not grow with depth.
        n_branches = 2 * config.n_enc_layers + 3 * config.n_dec_layers
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") and name != "value_proj.weight":
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(n_branches))
        nn.init.normal_(self.summary, mean=0.0, std=0.02)

    @staticmethod
    def _init_weights(module: nn.Module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

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

    def decode(self, tokens_in: torch.Tensor, memory: torch.Tensor, memory_keep: torch.Tensor) -> torch.Tensor:
        """tokens_in (B, T) long, memory (B, S, C), memory_keep (B, S) -> logits (B, T, V)."""
        T = tokens_in.shape[1]
        if T > self.config.max_len:
            raise ModelError(f"decoder input has {T} tokens but max_len is {self.config.max_len}; "
                             f"raise max_len in the model config")
        pos = torch.arange(T, device=tokens_in.device)  # (T,)
        x = self.drop(self.tok_emb(tokens_in) + self.pos_emb(pos))  # (B, T, C)
        for block in self.decoder:
            x = block(x, memory, memory_keep)
        return self.lm_head(self.ln_dec(x))  # (B, T, V)

    def forward(self, values: torch.Tensor, shown: torch.Tensor, tokens_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits: values (B, P), shown (B, P) bool, tokens_in (B, T) -> (B, T, V).

        Position t's logits predict token t + 1; they depend on tokens_in[:, :t+1] only.
        """
        return self.decode(tokens_in, *self.encode(values, shown))

    @torch.no_grad()
    def generate(self, values: torch.Tensor, shown: torch.Tensor, max_len: int | None = None,
                 num_samples: int = 1, temperature: float = 0.0, arity: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode programs: returns tokens (B, num_samples, max_len) and log-probs (B, num_samples).

        Each row of tokens has the target layout ``BOS t1 ... tn EOS PAD ...``; a row
        that reaches max_len without EOS is cut there (only possible unconstrained).
        temperature 0 is greedy (all samples then agree); > 0 samples from
        softmax(logits / temperature). PAD and BOS are never emitted. Call model.eval()
        first, or dropout stays on; `generator` seeds sampling (on the model's device).

        The log-prob of a sequence is the sum over its emitted tokens, up to and
        including EOS, of log softmax(logits) at temperature 1 over the allowed tokens.

        arity (V,) long, optional: each grammar symbol's arity (ids < 3 are ignored; -1
        by convention). With it, decoding is grammar-constrained and always yields one
        complete prefix tree: a counter of open argument slots starts at 1 and a
        symbol of arity a changes it by a - 1; EOS is allowed only when it is 0,
        symbols only while it is > 0 and while the tree can still close in the
        positions left.
        """
        cfg = self.config
        max_len = cfg.max_len if max_len is None else max_len
        if not 2 <= max_len <= cfg.max_len:
            raise ModelError(f"max_len must be in [2, {cfg.max_len}] (the config's max_len), got {max_len}")
        if num_samples < 1:
            raise ModelError(f"num_samples must be >= 1, got {num_samples}")
        if temperature < 0:
            raise ModelError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
        if arity is not None:
            arity = self._check_arity(arity, max_len).to(values.device)

        B, V = values.shape[0], cfg.vocab_size
        memory, keep = self.encode(values, shown)  # (B, S, C), (B, S)
        # Encode once, then repeat each function for its samples: (B * num_samples, S, C).
        memory = memory.repeat_interleave(num_samples, dim=0)
        keep = keep.repeat_interleave(num_samples, dim=0)
        N = B * num_samples

        tokens = torch.full((N, max_len), PAD, dtype=torch.long, device=values.device)
        tokens[:, 0] = BOS
        logprob = torch.zeros(N, device=values.device)
        done = torch.zeros(N, dtype=torch.bool, device=values.device)
        open_slots = torch.ones(N, dtype=torch.long, device=values.device)
        never = torch.zeros(V, dtype=torch.bool, device=values.device)
        never[[PAD, BOS]] = True

        for i in range(1, max_len):
            # Recompute the whole prefix each step: T <= ~24, so a KV cache buys little.
            logits = self.decode(tokens[:, :i], memory, keep)[:, -1].float()  # (N, V)
            if arity is None:
                allowed = ~never.expand(N, V)
            else:
                allowed = self._allowed(open_slots, arity, left=max_len - 1 - i)  # (N, V)
            logits = logits.masked_fill(~allowed, float("-inf"))
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
            if arity is not None:
                is_symbol = nxt >= N_SPECIAL
                open_slots += torch.where(is_symbol, arity[nxt] - 1, torch.zeros_like(nxt))
            done |= nxt == EOS
            if bool(done.all()):
                break
        return tokens.view(B, num_samples, max_len), logprob.view(B, num_samples)

    def _check_arity(self, arity: torch.Tensor, max_len: int) -> torch.Tensor:
        V = self.config.vocab_size
        arity = torch.as_tensor(arity, dtype=torch.long)
        if arity.shape != (V,):
            raise ModelError(f"arity must have shape (vocab_size={V},), got {tuple(arity.shape)}")
        symbols = arity[N_SPECIAL:]
        if (symbols < 0).any():
            raise ModelError(f"arity of every grammar symbol (ids >= {N_SPECIAL}) must be >= 0, "
                             f"got {arity.tolist()}")
        if not (symbols == 0).any():
            raise ModelError("arity has no leaf (arity-0 symbol), so no program can be completed")
        if max_len < 3:
            raise ModelError(f"constrained decoding needs max_len >= 3 (BOS, leaf, EOS), got {max_len}")
        return arity

    @staticmethod
    def _allowed(open_slots: torch.Tensor, arity: torch.Tensor, left: int) -> torch.Tensor:
        """Tokens allowed next, (N, V) bool, given open slots (N,) and `left` positions after it.

        A symbol of arity a leaves open' = open + a - 1 slots. Each later position
        closes at most one slot (a leaf) and one more is needed for EOS, so the
        symbol is allowed only if open' + 1 <= left. By induction open <= left + 1
        before every step, so a leaf or EOS is always allowed and decoding never
        gets stuck.
        """
        V = arity.shape[0]
        is_symbol = torch.arange(V, device=arity.device) >= N_SPECIAL  # (V,)
        new_open = open_slots[:, None] + arity.clamp(min=0)[None, :] - 1  # (N, V)
        allowed = is_symbol[None, :] & (open_slots[:, None] > 0) & (new_open + 1 <= left)
        allowed[:, EOS] = open_slots == 0
        return allowed


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


__all__ = ["PAD", "BOS", "EOS", "N_SPECIAL", "ModelConfig", "value_features", "PBETransformer",
           "SIZES", "config_for"]
