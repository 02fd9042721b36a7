"""gensynth's models: a registry of programming-by-example architectures and their helpers.

``models.registry`` lists the architectures (each a file here that registers itself:
its config, sizes, FLOPs formula and builder); ``models.decoder`` and
``models.decoding`` are the decoder and the search every architecture shares.

Names load lazily, so ``from models import pass_at_k`` does not import torch and the
CLI stays instant; torch and lightning load on first use of a name that needs them.
"""

from importlib import import_module

# Light modules (numpy only) load eagerly. This import also makes ``models.pass_at_k``
# the function rather than the submodule of the same name; import the submodule with
# ``from models.pass_at_k import ...`` if you need it.
from models.errors import ModelError
from models.pass_at_k import pass_at_k

# Public name -> module that defines it.
_EXPORTS = {
    "PAD": "blocks",
    "BOS": "blocks",
    "EOS": "blocks",
    "N_SPECIAL": "blocks",
    "ModelConfig": "pbe_transformer",
    "PBETransformer": "pbe_transformer",
    "SIZES": "pbe_transformer",
    "config_for": "pbe_transformer",
    "value_features": "blocks",
    "training_flops": "flops",
    "PBELitModule": "lit",
}

__all__ = [*_EXPORTS, "pass_at_k", "ModelError"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    return getattr(import_module(f"models.{_EXPORTS[name]}"), name)


def __dir__():
    return sorted(__all__)
