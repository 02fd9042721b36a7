"""The error the model package raises for bad configs and bad arguments.

A ``ValueError`` whose message names the field or argument. The models package stands
alone (it imports nothing from gensynth); gensynth's learning stage turns a ModelError
into its own one-paragraph error where a user's flag caused it.
"""


class ModelError(ValueError):
    """A bad model config, size name or argument; the message names the field."""
