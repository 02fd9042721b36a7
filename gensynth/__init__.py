"""gensynth: a controlled laboratory for neural program synthesis.

One folder per stage, in the order ``gensynth build`` runs them (``gensynth/pipeline.py``):
``universe`` (grammar, enumeration, exact grid values), ``manifolds`` (pq-grams, syntactic
and semantic maps), ``splits``, then ``learning`` (training on a split), ``synthesis``
(search and hybrid synthesizers), ``results`` (run directories into the warehouse) and
``analysis`` (views, proximity, report); ``cli`` is the command line. The stages, the
tables each reads and writes, and the recipes for extending them are in
``docs/architecture.md``.
"""

from gensynth.version import __version__

__all__ = ["__version__"]
