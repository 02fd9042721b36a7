"""The training progress bar and loggers of a run: what a person watches while it trains.

Training is bounded by optimizer steps (or minutes), never by epochs: the Trainer gets
``max_epochs=-1``, and Lightning's own bar then reads ``Epoch 3/-2`` and restarts at every
pass over the data. ``StepProgressBar`` shows the run's budget instead: one bar for the
whole run, ``step N/M`` of ``--max-steps`` (``step N`` with ``--max-time`` alone).

``run_loggers`` gives the CSV logger every run has (``logs/attempt-N/metrics.csv``, which
ingestion turns into ``metrics``, the source of truth) and, when the ``tensorboard``
extra is installed, a TensorBoard logger writing event files to ``logs/tensorboard/`` of
the same run directory, so ``tensorboard --logdir warehouse/runs`` shows every run.

Imports Lightning: load it only where a run trains.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lightning.pytorch.callbacks import RichProgressBar


class StepProgressBar(RichProgressBar):
    """Lightning's Rich bar, counting the run's optimizer steps of its step budget instead of epochs."""

    def step_total(self) -> int | None:
        """The run's step budget (None when only --max-time bounds it)."""
        steps = self.trainer.max_steps
        return steps if steps is not None and steps > 0 else None

    def train_description(self) -> str:
        """What the training bar says: 'step N/M' ('step N' under a time budget alone)."""
        total = self.step_total()
        return f"step {self.trainer.global_step:,}" + ("" if total is None else f"/{total:,}")

    @property
    def total_train_batches(self) -> int | float:
        total = self.step_total()
        return float("inf") if total is None else total

    def _get_train_description(self, current_epoch: int) -> str:  # Lightning's hook for the bar's text
        return self.train_description()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        # One bar for the whole run: a new pass over the data does not reset it (Lightning's does).
        if self.is_disabled or self.progress is None:
            return
        if self.train_progress_bar_id is None:
            self.train_progress_bar_id = self._add_task(self.total_train_batches, self.train_description())
        self.refresh()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.is_disabled:
            return
        if self.train_progress_bar_id is None:  # resumed mid-epoch
            self._initialize_train_progress_bar_id()
        if self.progress is not None:
            text = self.train_description()
            style = self.theme.description
            self.progress.update(self.train_progress_bar_id, completed=trainer.global_step,
                                 description=f"[{style}]{text}" if style else text)
        self._update_metrics(trainer, pl_module)
        self.refresh()


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package (the extra ``pip install 'gensynth[tensorboard]'``) is importable."""
    return importlib.util.find_spec("tensorboard") is not None


def run_loggers(logs: Path, attempt: int, flush_every: int) -> list:
    """The loggers of one training attempt: CSV always, TensorBoard when installed (both under ``logs``)."""
    from lightning.pytorch.loggers import CSVLogger

    version = f"attempt-{attempt}"
    loggers = [CSVLogger(save_dir=logs, name="", version=version, flush_logs_every_n_steps=flush_every)]
    if tensorboard_available():
        from lightning.pytorch.loggers import TensorBoardLogger

        # logs/tensorboard/attempt-N/events.out.tfevents.*: one run per run directory in `tensorboard --logdir runs`.
        loggers.append(TensorBoardLogger(save_dir=logs, name="tensorboard", version=version, default_hp_metric=False))
    return loggers
