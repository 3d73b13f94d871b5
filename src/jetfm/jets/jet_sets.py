"""Reading a jet set that a stage trains or scores on: one jet Parquet file
(:mod:`jetfm.jets.parquet_io`) or a split's manifest (:mod:`jetfm.jets.manifest`,
``data/jets/{sample}/{split}.json``), chosen by the path's suffix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jetfm.jets.manifest import manifest_metadata, read_manifest_table
from jetfm.jets.parquet_io import JetFileError, JetTable, read_file_metadata, read_jet_file


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The jetfm metadata of a jet file, or of a manifest's split (its first shard's, with the
    manifest's own entries)."""
    if Path(path).suffix == ".json":
        return manifest_metadata(path)
    return read_file_metadata(path)


def made_for_sample(path: str | Path) -> str | None:
    """The sample a jet file was made for, from its metadata (None if it does not say)."""
    meta = read_metadata(path)
    sample = meta.get("config", {}).get("sample") if isinstance(meta.get("config"), dict) else None
    return sample if sample is not None else meta.get("sample")


def read_jet_set(path: str | Path, sample: str | None = None, max_jets: int | None = None) -> JetTable:
    """A jet set a stage can train or score on: :func:`read_jet_table`, refused unless it was
    made for ``sample`` (when given), holds at least one jet and some constituents."""
    if sample is not None:
        made = made_for_sample(path)
        if made is not None and made != sample:
            raise JetFileError(f"{path}: jets made for sample '{made}', not '{sample}'")
    table = read_jet_table(path, max_jets)
    if table.n_jets == 0:
        raise JetFileError(f"{path}: holds no jets")
    if table.offsets[-1] == 0:
        raise JetFileError(f"{path}: no constituents in any of its {table.n_jets} jets")
    return table


def read_jet_table(path: str | Path, max_jets: int | None = None) -> JetTable:
    """The jets of a Parquet file written by :func:`write_jet_table`, or of a split's manifest
    (``data/jets/{sample}/{split}.json``: its shards, with its class allotment), in memory
    (first ``max_jets``)."""
    if Path(path).suffix == ".json":
        return read_manifest_table(path, max_jets)
    return read_jet_file(path, max_jets)
