"""What a person sees of a training run while and after it trains (gensynth/learning/progress.py):
the progress bar counts steps of the step budget, the CSV logs feed `metrics`, and TensorBoard
event files sit in the run directory when tensorboard is installed (no error when it is not).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import torch

from helpers import add_split, make_split_warehouse
from gensynth.learning.train import DataSettings, ModelSpec, RunConfig, TrainSettings, train
from gensynth.results.ingest import runs_root
from gensynth.warehouse import connect

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "160"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def base_wh(tmp_path_factory):
    path = make_split_warehouse(tmp_path_factory.mktemp("logs") / "w.duckdb")
    con = connect(path)
    try:
        add_split(con, "small", roles=(("train", 20), ("val", 5), ("test_id", 10)), seed=3)
    finally:
        con.close()
    return path


@pytest.fixture
def wh(base_wh, tmp_path):
    path = tmp_path / "w.duckdb"
    shutil.copy(base_wh, path)
    return path


def config(steps=12):
    return RunConfig(data=DataSettings(view="split_small", batch_size=32), model=ModelSpec(arch="grid64", size="nano"),
                     training=TrainSettings(max_steps=steps, checkpoint_every=10, val_every=6))


def test_the_progress_bar_counts_steps_of_the_budget_not_epochs():
    """A real Lightning fit bounded by steps over several epochs (max_epochs -1, as gensynth trains):
    Lightning's own bar reads 'Epoch 2/-2' and restarts each epoch; ours reads 'step N/M' throughout."""
    import lightning as L
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.demos.boring_classes import BoringModel

    from gensynth.learning.progress import StepProgressBar

    seen = []

    class Record(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            bar = trainer.progress_bar_callback
            task = bar.progress.tasks[bar.train_progress_bar_id]
            seen.append((task.description, task.completed, task.total))

    bar = StepProgressBar()
    trainer = L.Trainer(max_steps=7, max_epochs=-1, limit_train_batches=3, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_model_summary=False, callbacks=[bar, Record()])
    trainer.fit(BoringModel())
    assert trainer.current_epoch >= 2  # the run crossed epochs: the old bar said 'Epoch 2/-2' by now
    assert [s[0] for s in seen] == [f"step {n}/7" for n in range(1, 8)]
    assert [(s[1], s[2]) for s in seen] == [(n, 7) for n in range(1, 8)]  # one bar for the run, never reset


def test_a_time_bounded_run_shows_steps_without_a_total():
    import lightning as L
    from lightning.pytorch.demos.boring_classes import BoringModel

    from gensynth.learning.progress import StepProgressBar

    bar, text = StepProgressBar(), []

    class StopAfterThree(L.Callback):  # stands in for the clock running out
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            text.append(bar.train_description())
            trainer.should_stop = trainer.global_step >= 3

    trainer = L.Trainer(max_steps=-1, max_epochs=-1, max_time={"minutes": 10}, limit_train_batches=2,
                        limit_val_batches=0, logger=False, enable_checkpointing=False, enable_model_summary=False,
                        callbacks=[bar, StopAfterThree()])
    trainer.fit(BoringModel())
    assert text == ["step 1", "step 2", "step 3"]
    assert bar.progress.tasks[bar.train_progress_bar_id].total == float("inf")


def test_gensynth_train_shows_steps_and_writes_tensorboard_events(wh):
    """The command's own output (not a TTY) ends with the bar at 'step 12/12'; no 'Epoch .../-2'.
    With tensorboard importable the run directory has event files (tensorboard --logdir <warehouse dir>/runs)."""
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed here: only the absent path is tested")
    out = subprocess.run([sys.executable, "-m", "gensynth", "train", "--view", "split_small", "--arch", "grid64",
                          "--size", "nano", "--batch-size", "32", "--max-steps", "12", "--val-every", "6",
                          "--threads", "1", "-w", str(wh)], capture_output=True, text=True, env=ENV, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "step 12/12" in out.stdout and "/-2" not in out.stdout and "Epoch" not in out.stdout
    [run_dir] = [d for d in runs_root(wh).iterdir() if d.is_dir()]
    events = list((run_dir / "logs" / "tensorboard" / "attempt-1").glob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert {"train/loss", "val/loss", "val/seq_acc"} <= set(acc.Tags()["scalars"])
    assert (run_dir / "logs" / "attempt-1" / "metrics.csv").exists()  # CSV stays: it feeds `metrics`


def test_without_tensorboard_a_run_logs_csv_and_metrics_only(wh, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what Python's import system says when it is not installed
    s = train(wh, config(), quiet=True)
    assert s.status == "finished"
    run_dir = runs_root(wh) / s.run_id
    assert (run_dir / "logs" / "attempt-1" / "metrics.csv").exists()
    assert not (run_dir / "logs" / "tensorboard").exists()
    con = duckdb.connect(str(wh), read_only=True)
    try:
        names = {r[0] for r in con.execute("SELECT DISTINCT name FROM metrics WHERE run_id = ?", [s.run_id]).fetchall()}
        curves = {r[0] for r in con.execute("SELECT DISTINCT name FROM metrics WHERE run_id = ? AND name IN "
                                            "('train/loss', 'val/loss', 'val/seq_acc')", [s.run_id]).fetchall()}
    finally:
        con.close()
    # The report's training-curves figure (sql/report/training_curves.sql) reads these from `metrics`.
    assert curves == {"train/loss", "val/loss", "val/seq_acc"} and "val/token_acc" in names
