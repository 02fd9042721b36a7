"""`gensynth train --num-nodes N`: multi-node DDP passed through to Lightning (TrainSettings.num_nodes).

No multi-node job is started here: the single-node path trains and records num_nodes 1,
the Trainer built from the run's settings (``TrainSettings.lightning_args``, what
gensynth/learning/train.py passes to ``lightning.Trainer``) has the nodes and the DDP
strategy, bad values are refused naming the flag, and runs recorded before the field
existed read as single-node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from helpers import add_split, make_split_warehouse
from gensynth.errors import GensynthError
from gensynth.learning.config import DataSettings, ModelSpec, RunConfig, TrainSettings
from gensynth.warehouse import connect

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def trainer_of(t: TrainSettings):
    import lightning as L

    return L.Trainer(**t.lightning_args(), logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False)


def test_single_node_is_the_default_and_keeps_the_single_process_strategy():
    t = TrainSettings()
    assert t.num_nodes == 1 and t.world_size == 1
    assert t.lightning_args() == {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "strategy": "auto"}
    trainer = trainer_of(t)
    assert trainer.num_nodes == 1 and trainer.world_size == 1
    assert type(trainer.strategy).__name__ == "SingleDeviceStrategy"


@pytest.mark.parametrize("nodes,devices", [(2, 1), (3, 2)])
def test_num_nodes_reaches_lightning_as_multi_node_ddp(nodes, devices):
    t = TrainSettings(num_nodes=nodes, devices=devices)
    trainer = trainer_of(t)  # built, not fitted: nothing is launched
    assert trainer.num_nodes == nodes and trainer.num_devices == devices
    assert trainer.world_size == nodes * devices == t.world_size
    assert type(trainer.strategy).__name__ == "DDPStrategy"


def test_bad_num_nodes_is_refused_naming_the_flag():
    data = DataSettings(view="split_x", batch_size=4)
    with pytest.raises(GensynthError, match="--num-nodes must be >= 1, got 0"):
        RunConfig(data=data, model=ModelSpec(size="nano"), training=TrainSettings(num_nodes=0))
    with pytest.raises(GensynthError, match=r"--batch-size \(4\) must be at least --devices \(2\) x --num-nodes \(3\)"):
        RunConfig(data=data, model=ModelSpec(size="nano"), training=TrainSettings(num_nodes=3, devices=2))


def test_a_run_recorded_before_num_nodes_reads_as_single_node():
    recorded = RunConfig(data=DataSettings(view="split_x"), model=ModelSpec(size="nano")).to_json()
    del recorded["training"]["num_nodes"]
    assert RunConfig.from_json(json.loads(json.dumps(recorded))).training.num_nodes == 1


def test_train_on_one_node_records_num_nodes(tmp_path):
    wh = make_split_warehouse(tmp_path / "w.duckdb")
    con = connect(wh)
    try:
        add_split(con, "small", roles=(("train", 20), ("val", 5), ("test_id", 10)), seed=3)
    finally:
        con.close()
    out = subprocess.run([sys.executable, "-m", "gensynth", "train", "--view", "split_small", "--size", "nano",
                          "--max-steps", "3", "--batch-size", "8", "--num-nodes", "1", "-q", "-w", str(wh)],
                         capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    con = duckdb.connect(str(wh), read_only=True)
    try:
        [(config, device, status)] = con.execute("SELECT config, device, status FROM runs").fetchall()
    finally:
        con.close()
    config = json.loads(config)
    assert status == "finished" and device == "cpu x1"
    assert config["training"]["num_nodes"] == 1 and config["resolved"]["world_size"] == 1


def test_ranks_of_a_launch_find_rank_zeros_run_and_ignore_an_earlier_launchs(tmp_path, monkeypatch):
    """The rendezvous of gensynth.learning.distributed, as torchrun's environment drives it (one process plays both)."""
    import time

    from gensynth.learning import distributed

    for var in ("SLURM_JOB_ID", "SLURM_PROCID", "SLURM_NTASKS", "NODE_RANK", "GROUP_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MASTER_ADDR", "head")
    monkeypatch.setenv("MASTER_PORT", "29500")
    monkeypatch.setenv("WORLD_SIZE", "4")
    runs = tmp_path / "runs"
    run = runs / "20260101-000000-abcd"
    run.mkdir(parents=True)
    monkeypatch.setenv("RANK", "0")
    assert distributed.worker_run_dir("GENSYNTH_TEST_DDP", runs) is None  # rank 0 makes the run
    distributed.announce(run, "GENSYNTH_TEST_DDP", num_nodes=2)
    note = distributed.announcement(runs)
    assert note.parent == runs / ".ddp" and json.loads(note.read_text())["run_dir"] == str(run)
    monkeypatch.setenv("RANK", "3")
    assert distributed.launched_rank() == (3, 4)
    assert distributed.worker_run_dir("GENSYNTH_TEST_DDP", runs) == run
    # An announcement left by an earlier launch with the same address is not this launch's.
    stale = json.loads(note.read_text())
    stale["written_at"] = time.time() - 3600 - distributed.STALE_MARGIN_S
    note.write_text(json.dumps(stale))
    with pytest.raises(GensynthError, match="Rank 3 of 4 waited 1 s for rank 0"):
        distributed.wait_for_announcement(runs, (3, 4), wait_s=1.0)
    monkeypatch.setenv("RANK", "0")
    distributed.withdraw(run, "GENSYNTH_TEST_DDP", num_nodes=2)
    assert not note.exists() and "GENSYNTH_TEST_DDP" not in os.environ


def test_a_plain_process_is_no_rank():
    from gensynth.learning.distributed import launched_rank

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS",
                                                          "NODE_RANK", "GROUP_RANK")}
    code = "from gensynth.learning.distributed import launched_rank; print(launched_rank())"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "None"
    slurm = {**env, "SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_JOB_ID": "77"}
    assert subprocess.run([sys.executable, "-c", code], env=slurm, capture_output=True, text=True).stdout.strip() == "(1, 2)"


@pytest.mark.slow
def test_two_ranks_started_by_torchrun_make_one_run(tmp_path):
    """torchrun starts both ranks itself (as on every node of a multi-node job): one run directory, one finished run."""
    from gensynth.results.ingest import run_dirs

    wh = make_split_warehouse(tmp_path / "w.duckdb")
    con = connect(wh)
    try:
        add_split(con, "small", roles=(("train", 20), ("val", 5), ("test_id", 10)), seed=3)
    finally:
        con.close()
    torchrun = Path(sys.executable).parent / "torchrun"
    out = subprocess.run([str(torchrun), "--nnodes", "1", "--nproc-per-node", "2", "--master-port", "29533", "-m",
                          "gensynth", "train", "--view", "split_small", "--size", "nano", "--max-steps", "5",
                          "--batch-size", "8", "--devices", "2", "-q", "-w", str(wh)],
                         capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert len(run_dirs(wh)) == 1
    con = duckdb.connect(str(wh), read_only=True)
    try:
        rows = con.execute("SELECT status, device, steps, examples_seen FROM runs").fetchall()
    finally:
        con.close()
    assert rows == [("finished", "cpu x2 (ddp)", 5, 40)]
    assert not list((wh.parent / "runs" / ".ddp").glob("*.json"))  # the announcement was withdrawn
