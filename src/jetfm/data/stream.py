"""Jet batches streamed from a split's shards: memory bounded by one pool of jets, whatever
the number of jets.

A split (its manifest, ``data/jets/{sample}/{split}.json``) is a list of units, the row
groups of its shard files. Every epoch the units are permuted with a seed and dealt to the
partitions, one per (rank, DataLoader worker), so that one epoch reads each jet once. A
partition reads its units in pools of at least ``pool_jets`` jets, shuffles a pool's jets,
sorts them by length (so that a batch pads little, like the in-memory loader's batches),
cuts them into batches and yields those in a shuffled order.

Everything is planned from the manifest's counts alone: how many batches each partition
yields, hence which worker serves the n-th batch of an epoch. A run resumed from a
checkpoint after n batches skips whole pools without reading them and yields exactly the
batches an uninterrupted run would have (:meth:`JetStream.set_position`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from jetfm.data.features import PaddedJets, pad_jets
from jetfm.jets.manifest import kept_rows, read_manifest, row_group_keep
from jetfm.jets.parquet_io import JetFileError, JetTable, read_jet_file


@dataclass(frozen=True)
class Unit:
    """One row group of one shard file, and the jets of it the manifest keeps."""

    shard: int
    row_group: int
    jets: int


class JetStream(IterableDataset):
    """Padded jet batches (:class:`PaddedJets`) of one split, for a DataLoader with
    ``batch_size=None``; see the module docstring.

    ``rank``/``world_size`` partition the units between training processes (DDP), the
    DataLoader's workers within a process. ``max_constituents`` pads every batch to the same
    width (else to the longest jet of the batch). ``tokenizers`` (task → tokenizer) tokenize
    each pool as it is read, into the batches' ``tokens``.
    """

    def __init__(self, manifest: str | Path, batch_size: int, seed: int = 0, *, shuffle: bool = True,
                 pool_jets: int = 16384, rank: int = 0, world_size: int = 1,
                 max_constituents: int | None = None, tokenizers: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if batch_size < 1 or pool_jets < 1:
            raise ValueError("batch_size and pool_jets must be positive")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside a world of {world_size}")
        self.path = Path(manifest)
        info = read_manifest(self.path)
        self.sample_name, self.max_length = info["sample"], int(info["max_constituents"])
        self.files = [s["file"] for s in info["shards"]]
        self.keep = [s.get("keep") for s in info["shards"]]
        self.units = [Unit(i, g, int(n)) for i, shard in enumerate(info["shards"])
                      for g, n in enumerate(row_group_keep(shard).sum(axis=1)) if n > 0]
        self.n_jets = sum(u.jets for u in self.units)
        if self.n_jets == 0:
            raise JetFileError(f"{self.path}: holds no jets")
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.pool_jets = pool_jets
        self.rank, self.world_size = rank, world_size
        self.max_constituents = max_constituents
        self.tokenizers = dict(tokenizers or {})
        self.epoch, self.consumed = 0, 0
        self._row_keep: dict[int, np.ndarray] = {}

    # --- the plan: pure functions of (seed, epoch, partitions) and the manifest's counts ---

    def set_position(self, epoch: int, consumed: int = 0) -> None:
        """Start at ``epoch`` after the first ``consumed`` batches this process has taken of it."""
        self.epoch, self.consumed = epoch, consumed

    def partition_units(self, partition: int, partitions: int, epoch: int) -> list[Unit]:
        order = np.arange(len(self.units))
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch, 0]).permutation(len(self.units))
        return [self.units[i] for i in order[partition::partitions]]

    def pools(self, units: list[Unit]) -> list[list[Unit]]:
        """Consecutive units, at least ``pool_jets`` jets each (the last pool what remains)."""
        pools: list[list[Unit]] = [[]]
        held = 0
        for unit in units:
            if held >= self.pool_jets:
                pools.append([])
                held = 0
            pools[-1].append(unit)
            held += unit.jets
        return pools if pools[0] else []

    def require_partitions(self, workers: int = 0) -> None:
        """Refuse fewer row groups than partitions (ranks × DataLoader workers): a rank left
        without any would wait for batches that never come."""
        local = max(workers, 1)
        if len(self.units) < self.world_size * local:
            raise ValueError(f"{self.path}: {len(self.units)} row groups cannot feed {self.world_size} "
                             f"ranks × {local} loader workers; write smaller row groups "
                             "(samples.<sample>.jets.row_group_jets), or use fewer ranks or loader workers")

    def pool_batches(self, pool: list[Unit]) -> int:
        return math.ceil(sum(u.jets for u in pool) / self.batch_size)

    def partition_batches(self, partition: int, partitions: int, epoch: int) -> int:
        units = self.partition_units(partition, partitions, epoch)
        return sum(self.pool_batches(pool) for pool in self.pools(units))

    def batches_per_epoch(self, workers: int = 0, epoch: int | None = None) -> int:
        """Batches this process yields in an epoch with ``workers`` DataLoader workers."""
        local = max(workers, 1)
        epoch = self.epoch if epoch is None else epoch
        return sum(self.partition_batches(self.rank * local + w, self.world_size * local, epoch)
                   for w in range(local))

    def _served(self, counts: list[int], consumed: int) -> tuple[list[int], int]:
        """Batches each local partition has served after ``consumed`` batches taken in turn
        (a DataLoader's in-order round robin over workers, the exhausted ones dropping out), and
        the partition that serves next."""
        served, turn = [0] * len(counts), 0
        for _ in range(consumed):
            while served[turn] >= counts[turn]:
                turn = (turn + 1) % len(counts)
            served[turn] += 1
            turn = (turn + 1) % len(counts)
        return served, turn

    def sample(self, n_jets: int, seed: int) -> PaddedJets:
        """About ``n_jets`` jets from row groups drawn at random (a probe set), reading only those."""
        order = np.random.default_rng([seed, 1]).permutation(len(self.units))
        tables, held = [], 0
        for i in order:
            if held >= n_jets:
                break
            unit = self.units[i]
            rows = read_jet_file(self.files[unit.shard], row_groups=[unit.row_group])
            tables.append(self._kept(unit, rows))
            held += tables[-1].n_jets
        return pad_jets(JetTable.concatenate(tables).head(n_jets), self.max_constituents)

    # --- reading ---

    def _kept(self, unit: Unit, table: JetTable) -> JetTable:
        """The row group's jets that the manifest's class allotment keeps."""
        keep, path = self.keep[unit.shard], self.files[unit.shard]
        if keep is None:
            return table
        if unit.shard not in self._row_keep:  # from the shard's labels: one small column
            if len(self._row_keep) > 64:  # bounded, whatever the number of shards
                self._row_keep.clear()
            self._row_keep[unit.shard] = kept_rows(_labels(path), keep)
        start = _row_group_start(path, unit.row_group)
        return table.select(self._row_keep[unit.shard][start:start + table.n_jets])

    def _pool_batches(self, pool: list[Unit], rng: np.random.Generator) -> list[PaddedJets]:
        tables = [self._kept(u, read_jet_file(self.files[u.shard], row_groups=[u.row_group])) for u in pool]
        jets = pad_jets(JetTable.concatenate(tables), self.max_constituents)
        order = rng.permutation(len(jets)) if self.shuffle else np.arange(len(jets))
        order = order[np.argsort(jets.lengths.numpy()[order], kind="stable")]
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.tokenizers:  # once per pool, in the worker that reads it
            tokens = {task: tok.tokens(jets) for task, tok in self.tokenizers.items()}
            jets = dataclasses.replace(jets, tokens=tokens)
        full = self.max_constituents is not None
        return [jets.subset(torch.from_numpy(b), keep_width=full) for b in batches]

    def __iter__(self) -> Iterator[PaddedJets]:
        worker = get_worker_info()
        local = 1 if worker is None else worker.num_workers
        partitions = self.world_size * local
        counts = [self.partition_batches(self.rank * local + w, partitions, self.epoch) for w in range(local)]
        served, first = self._served(counts, self.consumed)
        # a resumed epoch: the DataLoader asks worker 0 first, so worker 0 takes the partition
        # whose turn it is; the cyclic order of the others is unchanged
        logical = (first + (0 if worker is None else worker.id)) % local
        partition = self.rank * local + logical
        skip = served[logical]
        units = self.partition_units(partition, partitions, self.epoch)
        for index, pool in enumerate(self.pools(units)):
            n = self.pool_batches(pool)
            if skip >= n:  # consumed before the checkpoint: not even read
                skip -= n
                continue
            rng = np.random.default_rng([self.seed, self.epoch, partition + 1, index])
            batches = self._pool_batches(pool, rng)
            assert len(batches) == n
            yield from batches[skip:]
            skip = 0


def _labels(path: str | Path) -> np.ndarray:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).read(columns=["label"]).column("label").to_numpy()


def _row_group_start(path: str | Path, row_group: int) -> int:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return sum(meta.row_group(i).num_rows for i in range(row_group))


class StreamPosition:
    """Where a step-based training loop stands in a stream: epoch and batches taken of it;
    saved in checkpoints, restored with :meth:`JetStream.set_position`."""

    def __init__(self, epoch: int = 0, consumed: int = 0) -> None:
        self.epoch, self.consumed = epoch, consumed

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "consumed": self.consumed}


def stream_batches(stream: JetStream, position: StreamPosition, workers: int = 0,
                   pin_memory: bool = False) -> Iterator[PaddedJets]:
    """An endless sequence of batches over epochs from ``position``, which it keeps up to date
    (the batch just yielded counts as taken)."""
    while True:
        stream.set_position(position.epoch, position.consumed)
        loader = DataLoader(stream, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                            persistent_workers=False)
        for batch in loader:
            position.consumed += 1
            yield batch
        position.epoch, position.consumed = position.epoch + 1, 0


def epochs_for(steps: int, stream: JetStream, workers: int = 0) -> float:
    """How many epochs ``steps`` batches are (for logs and the docs)."""
    return steps / max(stream.batches_per_epoch(workers), 1)


__all__ = ["JetStream", "StreamPosition", "Unit", "epochs_for", "stream_batches"]

