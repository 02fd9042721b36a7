"""Analytic training-compute estimate for a PBETransformer, in FLOPs.

Used to place runs on a compute axis (scaling plots), so it counts what dominates and
says exactly what it leaves out; tests check it against torch's FlopCounterMode.
"""

from __future__ import annotations

from models.pbe_transformer import N_VALUE_FEATURES, ModelConfig


def training_flops(config: ModelConfig, n_sequences: int, dec_len: int, enc_len: int | None = None) -> int:
    """FLOPs to train on n_sequences examples (forward + backward), one multiply-add = 2 FLOPs.

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
          - value projection (9 x C) on P grid points;
          - encoder layers, 4C^2 (q, k, v, out) + 2CF (MLP) on S encoder positions;
          - decoder layers, 4C^2 (self-attention) + 2C^2 (cross-attention q and out)
            + 2CF (MLP) on T decoder positions, and 2C^2 (cross-attention k and v) on
            the S encoder positions;
          - output head (tied to the token table) C x V on T positions.
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
    C, Ff, V = config.d_model, config.d_ff, config.vocab_size
    L_enc, L_dec = config.n_enc_layers, config.n_dec_layers

    # Weights and the number of positions each acts on (multiply-adds per example, forward).
    macs = N_VALUE_FEATURES * C * P
    macs += L_enc * (4 * C * C + 2 * C * Ff) * S
    macs += L_dec * ((4 * C * C + 2 * C * C + 2 * C * Ff) * T + 2 * C * C * S)
    macs += C * V * T
    weight_flops = 6 * macs  # 2 FLOPs per multiply-add forward, twice that backward

    # Attention: Q K^T and A V are each T_q x T_k x C multiply-adds.
    attn_macs = L_enc * 2 * S * S * C + L_dec * (2 * T * T * C + 2 * T * S * C)
    attn_flops = 3 * 2 * attn_macs  # backward is about twice the forward

    return n_sequences * (weight_flops + attn_flops)
