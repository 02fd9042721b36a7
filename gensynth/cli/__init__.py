"""The `gensynth` command line: thin typer commands, one module per command group.

``gensynth.cli.main`` holds the app and the commands of the pipeline's stages;
``split``, ``train`` and ``analysis`` hold their command groups.
"""

from gensynth.cli.main import app, run, state

__all__ = ["app", "run", "state"]
