"""Stage: learning. Snapshot a split, train a model on it, evaluate by execution, record the run.

``load_model(run_dir)`` gives any finished run's model (every architecture of
``models.registry`` has the same interface), its grammar and its arity table.
"""

from gensynth.learning.rundirs import load_model  # noqa: F401 (the public entry point for trained models)
