"""gensynth: a controlled laboratory for neural program synthesis.

Stages, one module each: ``enumerate`` (programs), ``evaluate`` (functions),
``pqgrams`` and ``embed`` (manifolds), ``splits`` (split views), ``train`` (runs).
"""

from gensynth.version import __version__

__all__ = ["__version__"]
