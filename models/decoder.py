"""The prefix-program decoder every architecture shares, with a KV cache for decoding.

An architecture is an encoder (function values -> memory) plus this decoder: token and
position embeddings, pre-LN blocks of causal self-attention, cross-attention to the
memory and an MLP, a final LayerNorm and a head tied to the token table. ``PrefixDecoder``
is a mixin, so the layers sit at the top level of the model (``tok_emb``, ``decoder.0``,
...) and checkpoints of the first architecture keep their parameter names.

Decoding one token at a time (``start_decoding`` / ``step``) runs the same arithmetic as
teacher forcing, but each position is computed once: its self-attention key/value is
appended to a per-layer cache, and the memory's cross-attention keys/values are
projected once per task (not per step, not per sample). Search algorithms (greedy,
sampling, beam) are in ``models.decoding``.

Shapes: B tasks, R rows per task (samples or beams), N = B * R rows, S memory
positions, T decoder positions, C = d_model, H heads, hd = C / H, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from models.blocks import DecoderBlock
from models.errors import ModelError


@dataclass
class DecodeState:
    """What incremental decoding keeps between steps."""

    caches: list[dict]  # per layer: {"k", "v"} (N, H, T_max, hd) self-attention keys/values
    memory_kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: cross-attention keys, values (B, H, S, hd)
    memory_mask: torch.Tensor | None  # (B, 1, 1, S) bool, True = may attend; None = all


class PrefixDecoder:
    """Mixin for an nn.Module with an ``encode(values, shown) -> (memory, keep)`` method.

    Call ``_init_decoder`` in ``__init__`` after the encoder's layers (parameter init
    draws in registration order). Provides ``decode``, ``forward``, ``start_decoding``,
    ``step``, ``reorder`` and ``generate``.
    """

    def _init_decoder(self, vocab_size: int, d_model: int, n_heads: int, n_layers: int, d_ff: int, max_len: int,
                      dropout: float) -> None:
        self.max_len = max_len
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(max_len, d_model)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.ModuleList(DecoderBlock(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.ln_dec = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # weight tying: one table in, one out

    # -------------------------------------------------------------- teacher forcing

    def decode(self, tokens_in: torch.Tensor, memory: torch.Tensor, memory_keep: torch.Tensor | None) -> torch.Tensor:
        """tokens_in (B, T) long, memory (B, S, C), memory_keep (B, S) or None -> logits (B, T, V)."""
        T = tokens_in.shape[1]
        if T > self.max_len:
            raise ModelError(f"decoder input has {T} tokens but max_len is {self.max_len}; "
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

    # ---------------------------------------------------------------- incremental

    def start_decoding(self, memory: torch.Tensor, memory_keep: torch.Tensor | None, rows_per_task: int,
                       max_len: int) -> DecodeState:
        """Project the memory's keys/values once per task and allocate the self-attention caches."""
        B, _, C = memory.shape
        N = B * rows_per_task
        caches, memory_kv = [], []
        for block in self.decoder:
            H = block.self_attn.n_heads
            shape = (N, H, max_len, C // H)
            caches.append({"k": memory.new_zeros(shape), "v": memory.new_zeros(shape)})
            memory_kv.append(block.cross_attn.keys_values(memory))  # (B, H, S, hd) each
        mask = None if memory_keep is None else memory_keep[:, None, None, :]
        return DecodeState(caches, memory_kv, mask)

    def step(self, tokens: torch.Tensor, pos: int, state: DecodeState) -> torch.Tensor:
        """The token at position ``pos`` of each row, tokens (N,) -> logits (N, V) for position pos + 1."""
        x = self.drop(self.tok_emb(tokens)[:, None, :] + self.pos_emb.weight[pos])  # (N, 1, C)
        for block, cache, (k, v) in zip(self.decoder, state.caches, state.memory_kv):
            x = block.step(x, pos, cache, k, v, state.memory_mask)
        return self.lm_head(self.ln_dec(x))[:, 0]  # (N, V)

    @staticmethod
    def reorder(state: DecodeState, rows: torch.Tensor) -> None:
        """Keep cache rows ``rows`` (N,) in that order (beam search follows each beam's parent)."""
        for cache in state.caches:
            cache["k"] = cache["k"].index_select(0, rows)
            cache["v"] = cache["v"].index_select(0, rows)

    @torch.no_grad()
    def generate(self, values: torch.Tensor, shown: torch.Tensor, max_len: int | None = None,
                 num_samples: int = 1, temperature: float = 0.0, arity: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, beam_width: int = 0,
                 use_cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode programs: tokens (B, S, max_len) and log-probs (B, S); see ``models.decoding.generate``."""
        from models.decoding import generate

        return generate(self, values, shown, max_len=max_len, num_samples=num_samples, temperature=temperature,
                        arity=arity, generator=generator, beam_width=beam_width, use_cache=use_cache)


# ------------------------------------------------------------------------- FLOPs


def decoder_macs(d_model: int, d_ff: int, vocab_size: int, n_layers: int, dec_len: int, mem_len: int) -> tuple[int, int]:
    """Forward multiply-adds of the decoder per example: (by weights, in attention).

    Weights: per layer 4C^2 (self-attention q, k, v, out) + 2C^2 (cross-attention q and
    out) + 2CF (MLP) on the T decoder positions, and 2C^2 (cross-attention k and v) on
    the S memory positions; the tied head C x V on T positions. Attention: Q K^T and
    A V, T x T (self, counted dense as the kernels compute it) and T x S (cross), C each.
    """
    C, Ff, V, L, T, S = d_model, d_ff, vocab_size, n_layers, dec_len, mem_len
    weights = L * ((6 * C * C + 2 * C * Ff) * T + 2 * C * C * S) + C * V * T
    attention = L * (2 * T * T * C + 2 * T * S * C)
    return weights, attention
