"""Tests for gensynth/data.py: split checks, the snapshot, shown points, sampling and sharding."""

import shutil

import duckdb
import numpy as np
import pytest
import torch

from helpers import add_split, make_split_warehouse
from gensynth.learning.snapshot import (
    EpochBatchSampler,
    ExampleBatches,
    Snapshot,
    SplitDataModule,
    check_split,
    examples_and_tokens_seen,
    read_snapshot,
    require_embeddings,
    shown_mask,
)
from gensynth.errors import GensynthError
from gensynth.universe.grammar import grammar_from_meta
from gensynth.warehouse import connect


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    """max-ops 2 warehouse with split_tiny (train 70 / val 10 / test_id 20 %). Read-only."""
    return make_split_warehouse(tmp_path_factory.mktemp("data") / "w.duckdb")


@pytest.fixture(scope="module")
def snapshot(wh, tmp_path_factory):
    con = connect(wh, read_only=True)
    try:
        snap = read_snapshot(con, check_split(con, "split_tiny"))
    finally:
        con.close()
    d = tmp_path_factory.mktemp("snap") / "snapshot"
    snap.write(d)
    return Snapshot.load(d)


# ------------------------------------------------------------------ sampling


@pytest.mark.parametrize("n,batch,world", [(100, 16, 1), (100, 16, 2), (101, 16, 3), (17, 16, 2), (33, 16, 2),
                                           (5, 4, 3), (64, 64, 2), (7, 7, 7), (1000, 3, 3)])
def test_every_example_once_per_epoch_across_ranks(n, batch, world):
    samplers = [EpochBatchSampler(n, batch, seed=3, rank=r, world_size=world) for r in range(world)]
    lengths = {len(s) for s in samplers}
    assert len(lengths) == 1  # DDP lock-step: same number of steps on every rank
    for epoch in range(3):
        seen = []
        for s in samplers:
            s.set_epoch(epoch)
            batches = list(s)
            assert len(batches) == len(s)
            assert all(len(b) >= 1 for b in batches)  # no rank ever gets an empty batch
            seen.extend(np.concatenate(batches).tolist())
        assert sorted(seen) == list(range(n))  # exactly once: nothing repeated, nothing dropped


def test_shards_are_balanced_and_global_batches_do_not_depend_on_world_size():
    one = EpochBatchSampler(103, 10, seed=1)
    one.set_epoch(2)
    two = [EpochBatchSampler(103, 10, seed=1, rank=r, world_size=2) for r in range(2)]
    for s in two:
        s.set_epoch(2)
    for g, (a, b) in zip(one, zip(*two)):
        assert sorted(np.concatenate([a, b])) == sorted(g)  # same examples in each step
        assert abs(len(a) - len(b)) <= 1
    assert one.global_batch_sizes() == two[0].global_batch_sizes() == [10] * 9 + [13]


def test_the_remainder_is_merged_not_dropped_or_padded():
    assert EpochBatchSampler(21, 10, seed=0, world_size=2).global_batch_sizes() == [10, 11]
    assert EpochBatchSampler(7, 10, seed=0, world_size=2).global_batch_sizes() == [7]
    with pytest.raises(GensynthError, match="fewer than --devices"):
        EpochBatchSampler(1, 10, seed=0, world_size=2)


def test_shuffle_is_deterministic_per_seed_and_epoch():
    a, b, c = EpochBatchSampler(50, 8, seed=5), EpochBatchSampler(50, 8, seed=5), EpochBatchSampler(50, 8, seed=6)
    assert all((x == y).all() for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    a.set_epoch(1)
    b.set_epoch(0)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b))


def test_resume_skips_the_batches_already_trained_on():
    full = EpochBatchSampler(50, 8, seed=2)
    full.set_epoch(1)
    expected = list(full)
    resumed = EpochBatchSampler(50, 8, seed=2)
    resumed.resume_at(len(expected) + 3)  # 3 steps into epoch 1
    resumed.set_epoch(1)
    got = list(resumed)
    assert len(got) == len(expected) - 3 and all((x == y).all() for x, y in zip(got, expected[3:]))
    assert len(list(resumed)) == len(expected)  # only the first epoch after resuming skips


def test_dataloader_workers_see_every_example_once(snapshot, tmp_path):
    dm = SplitDataModule(tmp_path / "none", batch_size=100, seed=0, num_workers=2)
    dm.snapshot = snapshot
    loader = dm._loader("train", dm.train_sampler())
    n = snapshot.role_size("train")
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        ids = torch.cat([b["program_id"] for b in loader]).tolist()
        assert sorted(ids) == sorted(np.asarray(snapshot.program_id[snapshot.role_slice("train")]).tolist())
        assert len(ids) == n


def test_examples_and_tokens_seen_count_the_batches(snapshot):
    s = EpochBatchSampler(snapshot.role_size("train"), 200, seed=4)
    lengths = (np.asarray(snapshot.tokens[snapshot.role_slice("train")]) != 0).sum(1) - 1
    steps = len(s) + 5  # into the second epoch
    ex = tok = 0
    for epoch in range(2):
        s.set_epoch(epoch)
        for b in s:
            if steps == 0:
                break
            ex, tok, steps = ex + len(b), tok + int(lengths[b].sum()), steps - 1
    assert examples_and_tokens_seen(snapshot, 200, 4, len(s) + 5) == (ex, tok)


# ------------------------------------------------------------------ snapshot


def test_snapshot_matches_the_warehouse(wh, snapshot):
    con = connect(wh, read_only=True)
    try:
        g = grammar_from_meta(con)
        view = dict(con.execute("SELECT role, count(*) FROM split_tiny GROUP BY role").fetchall())
        rows = con.execute("SELECT s.role, p.program_id, p.prefix, f.outputs, f.value_hash FROM split_tiny s "
                           "JOIN programs p USING (program_id) JOIN functions f USING (function_id) "
                           "ORDER BY s.role, p.program_id").fetchall()
    finally:
        con.close()
    assert {r: snapshot.role_size(r) for r in snapshot.roles} == view
    assert snapshot.meta["n_examples"] == len(rows) == len(snapshot.program_id)
    assert snapshot.seq_len == 5 + 2  # longest max-ops-2 program (5 tokens) + BOS + EOS
    for i in np.random.default_rng(0).choice(len(rows), 200, replace=False):
        role, pid, prefix, outputs, vh = rows[i]
        assert snapshot.program_id[i] == pid
        toks = [t for t in snapshot.tokens[i].tolist() if t > 2]
        assert " ".join(g.symbols[t - 3] for t in toks) == prefix
        assert snapshot.tokens[i][0] == 1 and snapshot.tokens[i][len(toks) + 1] == 2
        f = snapshot.function_index[i]
        np.testing.assert_array_equal(snapshot.values[f], np.asarray(outputs, dtype=np.float32))
        assert snapshot.value_hash[f] == vh


def test_snapshot_holds_no_lock(wh, tmp_path):
    path = tmp_path / "w.duckdb"
    shutil.copy(wh, path)
    con = connect(path, read_only=True)
    read_snapshot(con, check_split(con, "split_tiny"))
    con.close()
    writer = duckdb.connect(str(path))  # would raise "Could not set lock" if a reader were left open
    writer.close()


def test_shown_mask_is_fixed_per_task_and_seed():
    fids = np.arange(50, dtype=np.int32)
    m = shown_mask(fids, 64, 5, seed=1)
    assert m.shape == (50, 64) and (m.sum(1) == 5).all()
    np.testing.assert_array_equal(shown_mask(fids[10:20], 64, 5, seed=1), m[10:20])  # independent of the subset
    assert not np.array_equal(shown_mask(fids, 64, 5, seed=2), m)
    assert len({tuple(r) for r in m.tolist()}) > 40  # tasks differ
    assert shown_mask(fids, 64, None, 0) is None and shown_mask(fids, 64, 64, 0) is None


def test_batches_carry_values_mask_and_tokens(snapshot):
    dm = SplitDataModule("unused", batch_size=32, seed=0, n_examples=8)
    dm.snapshot = snapshot
    dm.shown = shown_mask(np.asarray(snapshot.function_id), snapshot.n_points, 8, 0)
    b = next(iter(dm._loader("train", dm.train_sampler())))
    assert b["values"].dtype == torch.float32 and b["values"].shape == (32, 64)
    assert b["shown"].dtype == torch.bool and (b["shown"].sum(1) == 8).all()
    assert b["tokens"].dtype == torch.int64 and (b["tokens"][:, 0] == 1).all()


# ------------------------------------------------------------------ split checks


def test_split_errors_name_the_problem_and_the_fix(wh, tmp_path):
    path = tmp_path / "w.duckdb"
    shutil.copy(wh, path)
    con = connect(path)
    try:
        con.execute("CREATE VIEW split_unregistered AS SELECT program_id, 'train' AS role FROM programs")
        add_split(con, "notrain", roles=(("val", 50), ("test_id", 50)))
        with pytest.raises(GensynthError, match="Did you mean 'split_tiny'"):
            check_split(con, "split_tiyn")
        with pytest.raises(GensynthError, match="not a registered split"):
            check_split(con, "split_unregistered")
        with pytest.raises(GensynthError, match="no programs with role 'train'.*test_id"):
            check_split(con, "split_notrain")
        assert check_split(con, "tiny").view == "split_tiny"  # the split's name works too
        assert check_split(con, "split_tiny").sql_hash
        require_embeddings(con)
        con.execute("DROP TABLE syn_coords")
        with pytest.raises(GensynthError, match="gensynth embed"):
            require_embeddings(con, path)
    finally:
        con.close()


def test_canonical_targets_are_each_functions_smallest_program(snapshot):
    programs = ExampleBatches(snapshot, "train")
    canonical = ExampleBatches(snapshot, "train", targets="canonical")
    idx = np.arange(len(programs))
    a, b = programs[idx], canonical[idx]
    assert torch.equal(a["values"].nan_to_num(7.5), b["values"].nan_to_num(7.5)) and torch.equal(a["program_id"], b["program_id"])
    fi = np.asarray(snapshot.function_index[snapshot.role_slice("train")])
    assert torch.equal(b["tokens"], torch.from_numpy(np.asarray(snapshot.smallest_tokens[fi], dtype=np.int64)))
    # Many programs, one target per function: canonical targets are fewer distinct sequences than programs.
    assert len({tuple(t) for t in b["tokens"].tolist()}) == len(set(fi.tolist())) < len({tuple(t) for t in a["tokens"].tolist()})


def test_validation_uses_a_fixed_seeded_subsample():
    from gensynth.learning.snapshot import validation_subset

    a = validation_subset(1000, 100, seed=0)
    assert len(a) == 100 == len(set(a.tolist())) and (np.diff(a) > 0).all() and a.max() < 1000
    assert np.array_equal(a, validation_subset(1000, 100, seed=0))  # the same every validation and after a resume
    assert not np.array_equal(a, validation_subset(1000, 100, seed=1))
    assert np.array_equal(validation_subset(50, 100, seed=0), np.arange(50))  # smaller than the size: all of it
    assert np.array_equal(validation_subset(50, 0, seed=0), np.arange(50))  # 0: the whole role


def test_the_val_loader_serves_the_subsample(snapshot, tmp_path):
    from gensynth.learning.snapshot import SplitDataModule, validation_subset

    snapshot.write(tmp_path / "snap")
    n_val = snapshot.role_size("val")
    dm = SplitDataModule(tmp_path / "snap", batch_size=8, seed=3, val_size=n_val // 2)
    ids = torch.cat([b["program_id"] for b in dm.val_dataloader()]).numpy()
    start = snapshot.role_slice("val").start
    expected = np.asarray(snapshot.program_id)[start + validation_subset(n_val, n_val // 2, seed=3)]
    assert np.array_equal(ids, expected)
