"""Analytic training compute of any registered architecture, in FLOPs.

Used to place runs on a compute axis (scaling plots). Each architecture's file holds
its own formula (what it counts and what it leaves out is documented there), checked
against torch's FlopCounterMode by the tests; this module dispatches on the config.
"""

from __future__ import annotations


def training_flops(config, n_sequences: int, dec_len: int, enc_len: int | None = None) -> int:
    """FLOPs to train on n_sequences examples (forward + backward), one multiply-add = 2 FLOPs.

    ``dec_len`` is the decoder input length T per example (the padded target length
    minus one); ``enc_len`` the grid points per example (default: the config's).
    """
    from models.registry import of_config

    arch = of_config(config)
    if enc_len is None or enc_len == config.n_points:
        return arch.training_flops(config, n_sequences, dec_len)
    return arch.training_flops(config, n_sequences, dec_len, enc_len)
