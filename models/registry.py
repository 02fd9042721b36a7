"""The model registry: every architecture, by name, with its config, sizes, FLOPs and builder.

An architecture is one file in ``models/`` that ends with ``register(Architecture(...))``.
``get(name)`` imports every module of the package once (``discover``), so a new file is
found with no other edit: ``gensynth train --arch NAME --size S`` selects it, runs record
its name and size, and training, evaluation, search and the FLOPs axis all reach the
model through the entry. Every model keeps one interface:

* ``forward(values (B, P) float, shown (B, P) bool, tokens (B, T) long) -> logits (B, T, V)``;
* ``encode(values, shown) -> (memory (B, S, C), keep (B, S) bool or None)``;
* ``generate(values, shown, max_len, num_samples, temperature, arity, generator,
  beam_width, use_cache) -> tokens (B, S, T), log-probs (B, S)``;
* ``num_params()`` and a ``config`` attribute (the frozen config dataclass).

Building on ``models.decoder.PrefixDecoder`` gives ``forward``, ``generate`` and the KV
cache for the price of an ``encode``. This module imports no torch itself.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, fields
from typing import Any, Callable

from models.errors import ModelError


@dataclass(frozen=True)
class Architecture:
    """One registered architecture."""

    name: str
    """What --arch selects and runs.arch records."""
    description: str
    """One line for listings and errors."""
    config_class: type
    """Its frozen config dataclass; must have vocab_size, n_points and max_len fields."""
    sizes: dict[str, dict]
    """Named presets, smallest to largest: field overrides of the config."""
    default_size: str
    """The size a run gets when it names none."""
    build: Callable[[Any], Any]
    """config -> an nn.Module with the interface above."""
    training_flops: Callable[..., int]
    """(config, n_sequences, dec_len) -> analytic forward + backward FLOPs."""
    grid_input: bool = False
    """Whether the config takes the grid's coordinates (``grid`` field: one tuple per point)."""
    default_lr: float = 1e-3
    """Peak learning rate of a run that sets none (chosen by measurement; README, Training)."""

    def config(self, size: str, **fields_: Any):
        """The config of a named size with fields set or overridden (vocab_size, n_points, max_len, ...)."""
        if size not in self.sizes:
            raise ModelError(f"unknown size {size!r} for architecture {self.name!r}; its sizes: {', '.join(self.sizes)}")
        known = {f.name for f in fields(self.config_class)}
        unknown = sorted(set(fields_) - known)
        if unknown:
            raise ModelError(f"architecture {self.name!r} has no config field(s) {', '.join(unknown)}; "
                             f"its fields: {', '.join(sorted(known))}")
        return self.config_class(**{**self.sizes[size], **fields_})


_REGISTRY: dict[str, Architecture] = {}
_DISCOVERED = False
_INFRASTRUCTURE = {"registry", "errors", "pass_at_k", "lit", "flops", "blocks", "decoder", "decoding"}


def register(arch: Architecture) -> Architecture:
    """Add an architecture (a module calls this at import). Registering a name twice replaces it."""
    if arch.default_size not in arch.sizes:
        raise ModelError(f"architecture {arch.name!r}: default size {arch.default_size!r} is not one of its sizes")
    _REGISTRY[arch.name] = arch
    return arch


def discover() -> None:
    """Import every module of the models package once, so each architecture file registers itself."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    import models

    for info in pkgutil.iter_modules(models.__path__):
        if info.name not in _INFRASTRUCTURE and not info.name.startswith("_"):
            importlib.import_module(f"models.{info.name}")
    _DISCOVERED = True


def get(name: str) -> Architecture:
    """The architecture registered as ``name``; the error lists the known ones."""
    discover()
    if name not in _REGISTRY:
        raise ModelError(f"unknown architecture {name!r}; known: "
                         + ", ".join(f"{a.name} ({a.description})" for a in _REGISTRY.values()))
    return _REGISTRY[name]


def names() -> list[str]:
    discover()
    return list(_REGISTRY)


def of_config(config) -> Architecture:
    """The architecture whose config class ``config`` is an instance of."""
    discover()
    for arch in _REGISTRY.values():
        if type(config) is arch.config_class:
            return arch
    raise ModelError(f"no registered architecture uses config class {type(config).__name__}")
