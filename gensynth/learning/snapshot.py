"""Training data: a split view, snapshotted into the run directory, served as batches.

A run reads its split once, at start, through one short read-only connection, and writes
a *snapshot* (numpy ``.npy`` files) into its run directory; then it lets go of the
warehouse. Training reads only the snapshot (memory-mapped, shared by dataloader
workers), so a run never holds a DuckDB lock while it trains and other runs can write
their results at any time. The snapshot also makes a run reproducible and resumable
even if the split view is later edited.

Snapshot layout (``Snapshot.write`` / ``Snapshot.load``), N examples, F functions,
P grid points, T decoder positions::

    meta.json           view, roles {role: [start, stop)}, data_version, grammar_hash, sizes
    program_id.npy      (N,)   int32   examples sorted by (role, program_id)
    function_index.npy  (N,)   int32   row of the example's function in the arrays below
    tokens.npy          (N, T) int16   BOS prefix-tokens EOS PAD...  (symbol i = token 3 + i)
    function_id.npy     (F,)   int32   the functions used, ascending
    values.npy          (F, P) float32 outputs on the grid (NaN where undefined)
    value_hash.npy      (F,)   int64   functions.value_hash  } both halves: the exact pass check
    value_hash2.npy     (F,)   int64   functions.value_hash2 }
    smallest_tokens.npy (F, T) int16   the function's smallest program: the off-grid reference

Values are stored once per function (programs of a function share their outputs): an
example's input is ``values[function_index[i]]``.

Batches. One example is one program of a role: the input is its function's outputs,
the target its own prefix tokens. ``EpochBatchSampler`` cuts each epoch's permutation
(seeded by seed and epoch) into *global* batches, then splits every global batch across
the DDP ranks; the DataLoader hands whole batches to its workers. So within an epoch
every example is used exactly once, over all ranks and workers: nothing is repeated and
nothing dropped. To keep the ranks in lock-step (DDP needs the same number of steps on
every rank) shards are uneven instead of padded: ranks' shares of a global batch differ
by at most one example, and the last partial global batch of an epoch is merged into
the one before it (so no rank ever gets an empty batch). The global batches, and hence
the examples and FLOPs of a step, do not depend on the number of devices.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from gensynth.errors import GensynthError
# The splits stage is the one source of what a registered split is (re-exported under the names used here).
from gensynth.splits import SplitInfo, registered_names as registered_splits, require_split as check_split  # noqa: F401
from gensynth.universe.grammar import grammar_from_meta  # noqa: F401  (re-exported: the run's grammar)

TRAIN_ROLE, VAL_ROLE = "train", "val"
BOS, EOS, PAD, N_SPECIAL = 1, 2, 0, 3  # as in models.blocks (kept here so the CLI needs no torch model import)


# ---------------------------------------------------------------- warehouse checks


def require_embeddings(con: duckdb.DuckDBPyConnection, path: Path | str = "the warehouse") -> None:
    """Refuse a warehouse whose programs have not been embedded yet (no ``syn_coords``).

    Splits are written against the manifold (embedding coordinates), so a warehouse
    without them cannot hold a meaningful split; the check is one place so it can follow
    the manifold stage as it evolves.
    """
    n = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'syn_coords'").fetchone()[0]
    if not n:
        raise GensynthError(
            f"Warehouse '{path}' has no embeddings (table syn_coords is missing), so it has no manifold to split. "
            f"Run `gensynth embed --warehouse {path}` first, then create a split and train on it."
        )


def max_program_tokens(con: duckdb.DuckDBPyConnection) -> int:
    """Longest program of the universe, in tokens (the decoder must be able to write it)."""
    return int(con.execute("SELECT max(len(string_split(prefix, ' '))) FROM programs").fetchone()[0])


# ------------------------------------------------------------------------- snapshot


@dataclass
class Snapshot:
    """A split's examples as numpy arrays (see the module docstring for the layout)."""

    meta: dict
    program_id: np.ndarray
    function_index: np.ndarray
    tokens: np.ndarray
    function_id: np.ndarray
    values: np.ndarray
    value_hash: np.ndarray
    smallest_tokens: np.ndarray
    value_hash2: np.ndarray

    ARRAYS = ("program_id", "function_index", "tokens", "function_id", "values", "value_hash", "smallest_tokens", "value_hash2")

    @property
    def roles(self) -> dict[str, tuple[int, int]]:
        """Role -> [start, stop) rows of the example arrays."""
        return {r: tuple(v) for r, v in self.meta["roles"].items()}

    def role_size(self, role: str) -> int:
        start, stop = self.roles.get(role, (0, 0))
        return stop - start

    def role_slice(self, role: str) -> slice:
        start, stop = self.roles[role]
        return slice(start, stop)

    @property
    def seq_len(self) -> int:
        """T, decoder positions including BOS and EOS."""
        return int(self.tokens.shape[1])

    @property
    def n_points(self) -> int:
        return int(self.values.shape[1])

    def write(self, directory: Path) -> None:
        """Write the arrays and meta.json into ``directory`` (created; meta written last)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in self.ARRAYS:
            np.save(directory / f"{name}.npy", getattr(self, name))
        (directory / "meta.json").write_text(json.dumps(self.meta, indent=2))

    @classmethod
    def load(cls, directory: Path, mmap: bool = True) -> "Snapshot":
        """Load a snapshot; arrays are memory-mapped (read-only) unless ``mmap`` is False."""
        directory = Path(directory)
        if not (directory / "meta.json").is_file():
            raise GensynthError(f"No complete snapshot in '{directory}' (meta.json missing).")
        if not (directory / "value_hash2.npy").is_file():
            raise GensynthError(f"The snapshot in '{directory}' was written by an older gensynth (no value_hash2.npy, the second half "
                                f"of the pass check's hash). Train a new run on the rebuilt warehouse.")
        arrays = {n: np.load(directory / f"{n}.npy", mmap_mode="r" if mmap else None) for n in cls.ARRAYS}
        return cls(json.loads((directory / "meta.json").read_text()), **arrays)


def read_snapshot(con: duckdb.DuckDBPyConnection, split: SplitInfo, seq_len: int | None = None,
                  roles: list[str] | None = None) -> Snapshot:
    """Read a checked split into a Snapshot (one pass over the view, programs and functions).

    ``seq_len`` (T) defaults to the universe's longest program + BOS + EOS; pass the
    run's T when evaluating a trained model on another view. ``roles`` limits the roles.
    """
    from gensynth.warehouse import sql_text

    grammar = grammar_from_meta(con)
    T = seq_len or max_program_tokens(con) + 2
    symbols = list(grammar.symbols)
    role_list = sorted(r for r in split.roles if roles is None or r in roles)
    con.execute(sql_text("learning/snapshot_tokens.sql"))  # TEMP macros: this connection only
    rows = con.execute("SELECT * FROM snapshot_examples($view, $roles, $symbols, $T)",
                       {"view": split.view, "roles": role_list, "symbols": symbols, "T": T}).fetchnumpy()
    n = len(rows["program_id"])
    if n and int(rows["n_tok"].max()) + 2 > T:
        raise GensynthError(f"Split '{split.view}' has programs of {int(rows['n_tok'].max())} tokens, longer than the "
                            f"model's decoder ({T - 2} tokens + BOS + EOS); evaluate it with a model trained on this universe.")
    tokens = np.stack(rows["tokens"]).astype(np.int16) if n else np.zeros((0, T), np.int16)
    fids = np.unique(rows["function_id"]).astype(np.int32)
    P = grammar.n_points
    fun = con.execute("SELECT * FROM snapshot_functions($fids, $symbols, $T)",
                      {"fids": fids.tolist(), "symbols": symbols, "T": T}).fetchnumpy()
    values = np.stack(fun["outputs"]).astype(np.float32) if len(fids) else np.zeros((0, P), np.float32)
    smallest = np.stack(fun["smallest"]).astype(np.int16) if len(fids) else np.zeros((0, T), np.int16)
    role_col = rows["role"]
    bounds, start = {}, 0
    for r in role_list:
        stop = start + int(np.count_nonzero(role_col == r)) if n else start
        bounds[r] = [start, stop]
        start = stop
    meta = {
        "view": split.view,
        "split_sql_hash": split.sql_hash,
        "roles": bounds,
        "data_version": _meta(con, "data_version"),
        "grammar_hash": _meta(con, "grammar_hash"),
        "seq_len": T,
        "n_points": P,
        "n_examples": n,
        "n_functions": int(len(fids)),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return Snapshot(
        meta=meta,
        program_id=rows["program_id"].astype(np.int32),
        function_index=np.searchsorted(fids, rows["function_id"]).astype(np.int32),
        tokens=tokens,
        function_id=fids,
        values=values,
        value_hash=fun["value_hash"].astype(np.int64),
        smallest_tokens=smallest,
        value_hash2=fun["value_hash2"].astype(np.int64),
    )


def _meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return None if row is None else row[0]


# ------------------------------------------------------------------ shown points


def shown_mask(function_id: np.ndarray, n_points: int, n_examples: int | None, seed: int) -> np.ndarray | None:
    """Which grid points each function shows the model, (F, P) bool; None means all.

    With ``n_examples`` = K < P, each function shows K points chosen by a hash of
    (seed, function_id, point): fixed per task and seed, independent of the split, the
    batch and the process, and different for another seed.
    """
    if n_examples is None or n_examples >= n_points:
        return None
    with np.errstate(over="ignore"):
        f = function_id.astype(np.uint64)[:, None]
        p = np.arange(n_points, dtype=np.uint64)[None, :]
        key = _splitmix(_splitmix(np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + f) ^ (p * np.uint64(0xD6E8FEB86659FD93)))
    order = np.argsort(key, axis=1, kind="stable")[:, :n_examples]
    mask = np.zeros((len(function_id), n_points), bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


# ----------------------------------------------------------------- batches


class ExampleBatches(Dataset):
    """Examples of one role; indexed by an array of positions, returns a whole batch.

    Items: values (B, P) float32, shown (B, P) bool, tokens (B, T) int64, program_id (B,).
    Gathering a batch with numpy fancy indexing costs microseconds, so the loader is
    never the bottleneck (see ``python -m benchmarks.train``).
    """

    def __init__(self, snapshot: Snapshot, role: str, shown: np.ndarray | None = None, targets: str = "programs"):
        start, stop = snapshot.roles.get(role, (0, 0))
        self.snapshot, self.role, self.start, self.stop = snapshot, role, start, stop
        self.shown = shown
        # 'canonical': every example's target is its function's smallest program (one
        # target per input) instead of its own program (many programs per function).
        self.canonical = targets == "canonical"

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, idx) -> dict[str, torch.Tensor]:
        rows = self.start + np.asarray(idx, dtype=np.int64)
        s = self.snapshot
        fi = np.asarray(s.function_index[rows])
        values = torch.from_numpy(np.ascontiguousarray(s.values[fi]))
        shown = (torch.ones(values.shape, dtype=torch.bool) if self.shown is None
                 else torch.from_numpy(np.ascontiguousarray(self.shown[fi])))
        return {
            "values": values,
            "shown": shown,
            "tokens": torch.from_numpy(np.asarray(s.smallest_tokens[fi] if self.canonical else s.tokens[rows],
                                                  dtype=np.int64)),
            "program_id": torch.from_numpy(np.asarray(s.program_id[rows], dtype=np.int64)),
        }


class EpochBatchSampler(Sampler):
    """Yields this rank's share of each global batch of an epoch, as index arrays.

    ``set_epoch(e)`` (called by Lightning) selects the permutation
    ``default_rng([seed, e]).permutation(n)``. Every rank yields ``len(self)`` batches per
    epoch; the union over ranks of one epoch's batches is every index exactly once.
    After ``resume_at(step)`` the first epoch iterated skips the batches already trained
    on, so a resumed run sees the examples the uninterrupted run would have.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True):
        if world_size < 1 or not 0 <= rank < world_size:
            raise GensynthError(f"rank {rank} is not in a world of {world_size} process(es)")
        if batch_size < world_size:
            raise GensynthError(f"--batch-size ({batch_size}) must be at least --devices ({world_size}): each device needs an example per step")
        if n < world_size:
            raise GensynthError(f"The train role has {n} example(s), fewer than --devices ({world_size}); use fewer devices")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.epoch = 0
        self._resume_step: int | None = None

    def __len__(self) -> int:
        return len(self.global_batch_sizes())

    def global_batch_sizes(self) -> list[int]:
        """Sizes of the epoch's global batches: the same every epoch and for any world size.

        ``n // batch_size`` batches, the remainder merged into the last one (so every
        global batch has at least ``batch_size >= world_size`` examples and no rank is
        ever handed an empty batch); a role smaller than a batch is one batch.
        """
        full, rem = divmod(self.n, self.batch_size)
        if full == 0:
            return [self.n]
        return [self.batch_size] * (full - 1) + [self.batch_size + rem]

    def global_batches(self, epoch: int) -> list[np.ndarray]:
        """The epoch's global batches: consecutive cuts of its permutation."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n) if self.shuffle else np.arange(self.n)
        return np.split(order, np.cumsum(self.global_batch_sizes())[:-1])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, step: int) -> None:
        """Skip the first ``step - epoch * len(self)`` batches of the next epoch iterated."""
        self._resume_step = step

    def __iter__(self):
        batches = self.global_batches(self.epoch)
        skip = 0
        if self._resume_step is not None:
            skip = min(max(self._resume_step - self.epoch * len(batches), 0), len(batches))
            self._resume_step = None
        for gb in batches[skip:]:
            yield np.array_split(gb, self.world_size)[self.rank]


class SequentialBatches(Sampler):
    """All indices in order (or the given ones), in batches (evaluation and validation: each example once)."""

    def __init__(self, n: int, batch_size: int, indices: np.ndarray | None = None):
        self.indices = np.arange(n) if indices is None else np.asarray(indices)
        self.n, self.batch_size = len(self.indices), batch_size

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self):
        for start in range(0, self.n, self.batch_size):
            yield self.indices[start: start + self.batch_size]


def validation_subset(n: int, size: int, seed: int) -> np.ndarray:
    """Positions of the fixed seeded subsample of the val role validation uses (all of it if size is 0 or >= n)."""
    if size == 0 or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 0x7A1]).choice(n, size, replace=False))


def examples_and_tokens_seen(snapshot: Snapshot, batch_size: int, seed: int, steps: int,
                             targets: str = "programs") -> tuple[int, int]:
    """Training examples and target tokens (symbols + EOS) in the first ``steps`` global batches."""
    tr = snapshot.role_slice(TRAIN_ROLE)
    tokens = (np.asarray(snapshot.smallest_tokens)[np.asarray(snapshot.function_index[tr])] if targets == "canonical"
              else np.asarray(snapshot.tokens[tr]))
    lengths = (tokens != PAD).sum(axis=1) - 1  # minus BOS
    sampler = EpochBatchSampler(len(lengths), batch_size, seed)
    per_epoch = len(sampler)
    examples = tokens = 0
    epoch = 0
    while steps > 0:
        batches = sampler.global_batches(epoch)[: steps]
        for gb in batches:
            examples += len(gb)
            tokens += int(lengths[gb].sum())
        steps -= len(batches)
        epoch += 1
        if per_epoch == 0:
            break
    return examples, tokens


def _datamodule_class():
    """SplitDataModule is built on first use so that importing this module needs no Lightning."""
    import lightning as L

    class SplitDataModule(L.LightningDataModule):
        """Serves a snapshot's train role (shuffled, sharded) and val role (in order, a fixed subsample).

        ``batch_size`` is the global batch: with N devices each takes about 1/N of it, so a
        run's optimisation does not depend on the device count. Validation runs the whole
        val role on every rank (it is small), so every rank chooses the same checkpoint.
        """

        def __init__(self, snapshot_dir: Path, batch_size: int, seed: int, n_examples: int | None = None,
                     num_workers: int = 0, eval_batch_size: int = 512, pin_memory: bool = False,
                     targets: str = "programs", val_size: int = 0):
            super().__init__()
            self.snapshot_dir = Path(snapshot_dir)
            self.batch_size, self.seed, self.n_examples = batch_size, seed, n_examples
            self.num_workers, self.eval_batch_size, self.pin_memory = num_workers, eval_batch_size, pin_memory
            self.targets, self.val_size = targets, val_size
            self.snapshot: Snapshot | None = None
            self.shown: np.ndarray | None = None

        def setup(self, stage: str | None = None) -> None:
            if self.snapshot is None:
                self.snapshot = Snapshot.load(self.snapshot_dir)
                self.shown = shown_mask(np.asarray(self.snapshot.function_id), self.snapshot.n_points, self.n_examples, self.seed)

        def train_sampler(self, rank: int = 0, world_size: int = 1) -> EpochBatchSampler:
            self.setup()
            return EpochBatchSampler(self.snapshot.role_size(TRAIN_ROLE), self.batch_size, self.seed, rank, world_size)

        def train_dataloader(self) -> DataLoader:
            self.setup()
            trainer = self.trainer
            rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
            sampler = self.train_sampler(rank, world)
            if trainer is not None and trainer.global_step > 0:
                sampler.resume_at(trainer.global_step)  # restored from a checkpoint
            return self._loader(TRAIN_ROLE, sampler)

        def val_dataloader(self) -> DataLoader:
            """The val role's fixed seeded subsample of ``val_size`` examples (0: all of them), in order."""
            self.setup()
            n = self.snapshot.role_size(VAL_ROLE)
            return self._loader(VAL_ROLE, SequentialBatches(n, self.eval_batch_size,
                                                            validation_subset(n, self.val_size, self.seed)))

        def role_dataloader(self, role: str, batch_size: int | None = None) -> DataLoader:
            """All examples of a role, in (program_id) order."""
            self.setup()
            return self._loader(role, SequentialBatches(self.snapshot.role_size(role), batch_size or self.eval_batch_size))

        def _loader(self, role: str, sampler: Sampler) -> DataLoader:
            targets = self.targets if role in (TRAIN_ROLE, VAL_ROLE) else "programs"
            return DataLoader(ExampleBatches(self.snapshot, role, self.shown, targets), sampler=sampler, batch_size=None,
                              num_workers=self.num_workers, pin_memory=self.pin_memory,
                              persistent_workers=False)

    SplitDataModule.__qualname__ = "SplitDataModule"
    return SplitDataModule


def __getattr__(name: str):
    if name == "SplitDataModule":
        cls = _datamodule_class()
        globals()["SplitDataModule"] = cls
        return cls
    raise AttributeError(f"module 'gensynth.learning.snapshot' has no attribute {name!r}")
