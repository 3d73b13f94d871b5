"""Jet Parquet files: one row per jet, a list column of constituent structs (DESIGN.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jetfm.contract import CONSTITUENT_FIELDS, JET_COLUMNS, METADATA_KEY
from jetfm.provenance import atomic_output, atomic_outputs


class JetFileError(RuntimeError):
    """A jet Parquet file is missing, truncated or lacks jetfm's columns."""


@dataclass(frozen=True)
class JetTable:
    """Jets (1-D columns) and their constituents (flat columns, grouped by jet in order)."""

    jets: dict[str, np.ndarray]
    source: np.ndarray  # per jet: the event file it came from
    tracks: dict[str, np.ndarray]
    offsets: np.ndarray  # tracks of jet i are tracks[offsets[i]:offsets[i+1]]

    @property
    def n_jets(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def from_flat(cls, jets: dict[str, np.ndarray], tracks: dict[str, np.ndarray],
                  track_jet: np.ndarray, keep_jet: np.ndarray) -> JetTable:
        """Build from tracks sorted by their jet index ``track_jet``; drop jets not kept."""
        if np.any(np.diff(track_jet) < 0):
            raise ValueError("tracks must be grouped by jet")
        kept_tracks = keep_jet[track_jet]
        counts = np.bincount(track_jet[kept_tracks], minlength=len(keep_jet))[keep_jet]
        return cls(
            jets={k: np.asarray(v)[keep_jet].astype(JET_COLUMNS[k]) for k, v in jets.items()},
            source=np.full(int(keep_jet.sum()), "", dtype=object),
            tracks={k: np.asarray(v)[kept_tracks].astype(CONSTITUENT_FIELDS[k])
                    for k, v in tracks.items()},
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        )

    def track_slots(self) -> tuple[np.ndarray, np.ndarray]:
        """For every track: its jet's index and its position (0 = leading) within the jet."""
        jet = np.repeat(np.arange(self.n_jets), np.diff(self.offsets))
        return jet, np.arange(len(jet)) - self.offsets[:-1][jet]

    def with_source(self, name: str) -> JetTable:
        return JetTable(self.jets, np.full(self.n_jets, name, dtype=object), self.tracks, self.offsets)

    def select(self, mask: np.ndarray) -> JetTable:
        counts = np.diff(self.offsets)
        track_mask = np.repeat(mask, counts)
        return JetTable(
            jets={k: v[mask] for k, v in self.jets.items()},
            source=self.source[mask],
            tracks={k: v[track_mask] for k, v in self.tracks.items()},
            offsets=np.concatenate([[0], np.cumsum(counts[mask])]).astype(np.int64),
        )

    def head(self, n: int) -> JetTable:
        mask = np.zeros(self.n_jets, dtype=bool)
        mask[:n] = True
        return self.select(mask)

    @classmethod
    def concatenate(cls, tables: Sequence[JetTable]) -> JetTable:
        if not tables:
            raise ValueError("nothing to concatenate")
        counts = np.concatenate([np.diff(t.offsets) for t in tables])
        return cls(
            jets={k: np.concatenate([t.jets[k] for t in tables]) for k in tables[0].jets},
            source=np.concatenate([t.source for t in tables]),
            tracks={k: np.concatenate([t.tracks[k] for t in tables]) for k in tables[0].tracks},
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        )


def to_arrow(table: JetTable, metadata: dict[str, Any]) -> pa.Table:
    struct = pa.StructArray.from_arrays(
        [pa.array(table.tracks[k].astype(t)) for k, t in CONSTITUENT_FIELDS.items()],
        names=list(CONSTITUENT_FIELDS),
    )
    constituents = pa.ListArray.from_arrays(pa.array(table.offsets.astype(np.int32)), struct)
    columns = {k: pa.array(table.jets[k].astype(t)) for k, t in JET_COLUMNS.items()}
    columns["source"] = pa.array(table.source.astype(str), type=pa.string())
    columns["constituents"] = constituents
    arrow = pa.table(columns)
    return arrow.replace_schema_metadata({METADATA_KEY: json.dumps(metadata, sort_keys=True)})


def write_jet_table(table: JetTable, path: str | Path, metadata: dict[str, Any]) -> None:
    with atomic_output(path) as tmp:
        pq.write_table(to_arrow(table, metadata), tmp, compression="zstd")


def write_jet_tables(tables: Mapping[str, JetTable], paths: Mapping[str, str | Path],
                     metadata: Mapping[str, dict[str, Any]], row_group_jets: int | None = None) -> None:
    """Several jet files (the splits of one shard), all or none: a failure leaves no partial set.
    ``row_group_jets`` jets per Parquet row group, the unit a streaming reader reads."""
    names = list(tables)
    with atomic_outputs(paths[n] for n in names) as tmps:
        for name, tmp in zip(names, tmps, strict=True):
            pq.write_table(to_arrow(tables[name], metadata[name]), tmp, compression="zstd",
                           row_group_size=row_group_jets)


def read_file_metadata(path: str | Path) -> dict[str, Any]:
    """The jetfm metadata of one jet Parquet file (a split's manifest: :mod:`jetfm.jets.jet_sets`)."""
    schema = _open(path).schema_arrow
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise JetFileError(f"{path}: no jetfm metadata; not a jetfm jet file")
    return json.loads(raw)


def _open(path: str | Path) -> pq.ParquetFile:
    path = Path(path)
    if not path.exists():
        raise JetFileError(f"jet file not found: {path}")
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise JetFileError(f"{path}: not a readable Parquet file, truncated? ({exc})") from exc


def _require_finite(path: str | Path, name: str, column: np.ndarray) -> None:
    # a NaN pT or an infinite impact parameter trains and scores silently to a wrong number
    if column.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(column)))
        if bad:
            raise JetFileError(f"{path}: {bad} NaN or infinite values in column '{name}'")


def read_jet_file(path: str | Path, max_jets: int | None = None,
                  row_groups: Sequence[int] | None = None) -> JetTable:
    """One jet Parquet file, or some of its row groups; the first ``max_jets`` rows (reading
    only the row groups that hold them)."""
    handle = _open(path)
    names = set(handle.schema_arrow.names)
    missing = sorted((set(JET_COLUMNS) | {"constituents"}) - names)
    if missing:
        raise JetFileError(f"{path}: missing columns {missing}")
    if row_groups is None and max_jets is not None:
        sizes = np.cumsum([handle.metadata.row_group(i).num_rows for i in range(handle.num_row_groups)])
        row_groups = range(min(int(np.searchsorted(sizes, max_jets)) + 1, handle.num_row_groups))
    try:
        arrow = handle.read() if row_groups is None else handle.read_row_groups(list(row_groups))
    except (pa.ArrowInvalid, OSError) as exc:
        raise JetFileError(f"{path}: cannot be read, truncated? ({exc})") from exc
    if max_jets is not None:
        arrow = arrow.slice(0, max_jets)
    constituents = arrow.column("constituents").combine_chunks()
    offsets = constituents.offsets.to_numpy().astype(np.int64)
    values = constituents.values
    absent = [k for k in CONSTITUENT_FIELDS if values.type.get_field_index(k) < 0]
    if absent:
        raise JetFileError(f"{path}: missing constituent fields {['constituents.' + k for k in absent]}")
    start, stop = offsets[0], offsets[-1]
    tracks = {k: values.field(k).to_numpy(zero_copy_only=False)[start:stop].astype(t)
              for k, t in CONSTITUENT_FIELDS.items()}
    jets = {k: arrow.column(k).to_numpy().astype(t) for k, t in JET_COLUMNS.items()}
    for prefix, columns in (("", jets), ("constituents.", tracks)):
        for name, column in columns.items():
            _require_finite(path, prefix + name, column)
    source = np.asarray(arrow.column("source").to_pylist(), dtype=object) if "source" in names \
        else np.full(len(offsets) - 1, "", dtype=object)
    return JetTable(jets, source, tracks, offsets - start)
