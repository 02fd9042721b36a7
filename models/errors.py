"""The error the model package raises for bad configs and bad arguments.

It is a ``GensynthError``, so the CLI prints it as ``Error: ...`` without a traceback,
and a ``ValueError``, so plain Python callers can catch it the usual way.
"""

from gensynth.errors import GensynthError


class ModelError(GensynthError, ValueError):
    """A bad model config, size name or argument; the message names the field."""
