"""gensynth's models: the programming-by-example transformer and its helpers.

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
    "PAD": "pbe_transformer",
    "BOS": "pbe_transformer",
    "EOS": "pbe_transformer",
    "N_SPECIAL": "pbe_transformer",
    "ModelConfig": "pbe_transformer",
    "PBETransformer": "pbe_transformer",
    "SIZES": "pbe_transformer",
    "config_for": "pbe_transformer",
    "value_features": "pbe_transformer",
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
