"""A split of a jet set as its shards (rule jet_manifest, `jetfm manifest`).

The jets stage writes one Parquet file per event shard and split,
``data/jets/{sample}/{split}/{shard}.parquet``; the manifest ``data/jets/{sample}/{split}.json``
lists them with their jets per class and row groups, and, when the config asks for class
fractions, how many jets of each class every shard contributes. Readers open the manifest,
never a directory listing, and need only its numbers to plan: nothing reads a whole split to
balance it.
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from jetfm.contract import LABEL_NAMES, SCHEMA_VERSION, SPLITS
from jetfm.jets.parquet_io import JetFileError, JetTable, read_file_metadata, read_jet_file
from jetfm.provenance import atomic_output, provenance

MANIFEST_KIND = "jetfm-jet-manifest"


def allot_classes(counts: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """Jets of each class to keep per shard, ``[shards, classes]``, for target ``fractions``.

    As many jets as the scarcest class allows, N = min_k n_k / f_k, then floor(N f_k) jets of
    class k (classes with fraction 0 dropped), shared among the shards in proportion to what
    each holds (largest remainders), so that every shard keeps a fair sample of its events.
    """
    counts = np.asarray(counts, dtype=np.int64)
    f = np.asarray(fractions, dtype=np.float64)
    f = f / f.sum()
    totals = counts.sum(axis=0)
    wanted = [totals[k] / f[k] for k in range(len(f)) if f[k] > 0]
    n_total = min(wanted) if wanted else 0.0
    target = np.minimum(totals, np.floor(n_total * f + 1e-9)).astype(np.int64)
    keep = np.zeros_like(counts)
    for k in range(counts.shape[1]):
        if totals[k] == 0 or target[k] == 0:
            continue
        share = counts[:, k] * (target[k] / totals[k])
        keep[:, k] = np.floor(share + 1e-9).astype(np.int64)
        rest = int(target[k] - keep[:, k].sum())
        order = np.argsort(-(share - keep[:, k]), kind="stable")
        keep[order[:rest], k] += 1
    return np.minimum(keep, counts)


def _shard_summary(path: Path, sample: str, split: str) -> tuple[dict[str, Any], dict[str, Any]]:
    meta = read_file_metadata(path)
    made = meta.get("config", {}).get("sample")
    if made != sample:
        raise JetFileError(f"{path}: jets made for sample '{made}', not '{sample}'")
    if meta.get("split") != split:
        raise JetFileError(f"{path}: a '{meta.get('split')}' file given to the '{split}' manifest")
    handle = pq.ParquetFile(path)
    columns = handle.read(columns=["label", "n_constituents"])
    labels = columns.column("label").to_numpy()
    longest = int(columns.column("n_constituents").to_numpy().max(initial=0))
    n_classes = len(LABEL_NAMES[sample])
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise JetFileError(f"{path}: labels outside 0..{n_classes - 1}")
    sizes = [handle.metadata.row_group(i).num_rows for i in range(handle.metadata.num_row_groups)]
    starts = np.cumsum([0, *sizes])
    return {"name": path.stem, "jets": len(labels),
            "per_class": np.bincount(labels, minlength=n_classes).astype(int).tolist(),
            "row_groups": len(sizes), "max_constituents": longest,
            # what a streaming reader plans with, without opening the file
            "row_group_per_class": [np.bincount(labels[a:b], minlength=n_classes).astype(int).tolist()
                                    for a, b in itertools.pairwise(starts)]}, meta


def write_manifest(shard_files: Sequence[str | Path], params: Mapping[str, Any],
                   out: str | Path) -> dict[str, Any]:
    """The manifest of one split from its shard files; ``params`` is ``stage_params(cfg, 'manifest', ...)``.

    Refuses files of another sample or split and two shards of the same events; a split that
    keeps no jet is written with a warning (its readers refuse it). Shard paths are stored
    relative to the manifest's folder.
    """
    sample, split = params["sample"], params["split"]
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}' (expected one of {', '.join(SPLITS)})")
    if not shard_files:
        raise ValueError(f"the {sample} {split} manifest needs at least one shard")
    out = Path(out)
    shards, seen = [], {}
    for file in map(Path, shard_files):
        summary, meta = _shard_summary(file, sample, split)
        for key in [file.resolve().as_posix(), *(tuple(k) for k in meta.get("event_keys", []))]:
            if key in seen:
                raise ValueError(f"{file}: holds the same events as {seen[key]} "
                                 "(each shard may be listed once)")
            seen[key] = file
        summary["file"] = Path(_relative(file, out.parent)).as_posix()
        shards.append(summary)
    counts = np.array([s["per_class"] for s in shards], dtype=np.int64)
    fractions = params.get("fractions")
    names = list(LABEL_NAMES[sample])
    if fractions is not None:
        keep = allot_classes(counts, [float(fractions.get(n.lower(), 0.0)) for n in names])
        for shard, row in zip(shards, keep, strict=True):
            shard["keep"] = row.astype(int).tolist()
    kept = np.array([s.get("keep", s["per_class"]) for s in shards], dtype=np.int64).sum(axis=0)
    if kept.sum() == 0:  # allowed (a few events may give no validation jet); its readers refuse it
        warnings.warn(f"the {sample} {split} split keeps no jets from {len(shards)} shards "
                      f"(config keys 'samples.{sample}.jets' and 'samples.{sample}.generate.shards')",
                      stacklevel=2)
    manifest = {"kind": MANIFEST_KIND, "schema_version": SCHEMA_VERSION, "sample": sample, "split": split,
                "label_names": names, "jets": int(kept.sum()), "per_class": kept.astype(int).tolist(),
                "max_constituents": max(s["max_constituents"] for s in shards),
                "shards": shards, "provenance": provenance("manifest", dict(params))}
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:  # a shard outside the manifest's folder: keep its absolute path
        return str(path.resolve())


def read_manifest(path: str | Path) -> dict[str, Any]:
    """A manifest, checked for kind and schema version; shard ``file`` entries made absolute."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"jet manifest not found: {path}")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JetFileError(f"{path}: not a jet manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND:
        raise JetFileError(f"{path}: not a jetfm jet manifest")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise JetFileError(f"{path}: schema version {manifest.get('schema_version')}, this jetfm reads "
                           f"{SCHEMA_VERSION}; re-run the jets stage")
    for shard in manifest["shards"]:
        shard["file"] = str(path.parent / shard["file"])
    return manifest


def kept_rows(labels: np.ndarray, keep: Sequence[int] | None) -> np.ndarray:
    """Keep-mask of one shard's jets: the first ``keep[k]`` jets of class k (all without ``keep``)."""
    if keep is None:
        return np.ones(len(labels), dtype=bool)
    labels = np.asarray(labels, dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(len(keep)))
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels)) - starts[labels[order]]
    return rank < np.asarray(keep)[labels]


def row_group_keep(shard: Mapping[str, Any]) -> np.ndarray:
    """Jets a manifest keeps of each row group of one shard, ``[row_groups, classes]``: the
    first ``keep[k]`` jets of class k in file order."""
    counts = np.asarray(shard["row_group_per_class"], dtype=np.int64).reshape(shard["row_groups"], -1)
    if shard.get("keep") is None:
        return counts
    before = np.cumsum(counts, axis=0) - counts
    return np.clip(np.asarray(shard["keep"])[None, :] - before, 0, counts)


def read_manifest_table(path: str | Path, max_jets: int | None = None) -> JetTable:
    """The kept jets of a manifest's shards, in shard order, in memory. With ``max_jets``, a
    sample of the whole split: from every shard a share in proportion to its jets (its first
    ones), reading only the row groups that hold them."""
    shards = read_manifest(path)["shards"]
    kept = np.array([int(row_group_keep(s).sum()) for s in shards], dtype=np.int64)
    take = kept if max_jets is None or max_jets >= kept.sum() else _proportional(kept, max_jets)
    parts = []
    for shard, n in zip(shards, take, strict=True):
        if n == 0:
            continue
        groups = int(np.searchsorted(np.cumsum(row_group_keep(shard).sum(axis=1)), n)) + 1
        table = read_jet_file(shard["file"], row_groups=range(min(groups, shard["row_groups"])))
        # the allotment keeps the first jets of each class, so a head of the file keeps the same
        table = table.select(kept_rows(table.jets["label"], shard.get("keep")))
        parts.append(table.head(int(n)))
    if not parts:  # a split that keeps no jet: an empty table
        return read_jet_file(shards[0]["file"], max_jets=0)
    return JetTable.concatenate(parts)


def _proportional(counts: np.ndarray, total: int) -> np.ndarray:
    """``total`` split over ``counts`` in proportion (largest remainders), at most each count."""
    share = counts * (total / counts.sum())
    out = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - out), kind="stable")
    out[order[: total - int(out.sum())]] += 1
    return np.minimum(out, counts)


def manifest_metadata(path: str | Path) -> dict[str, Any]:
    """What a split's jets were made by: the first shard's metadata (every shard of a split is
    made by the same jets params), with the manifest's sample, split, shards and jets."""
    manifest = read_manifest(path)
    meta = read_file_metadata(manifest["shards"][0]["file"]) if manifest["shards"] else {}
    return meta | {"split": manifest["split"], "label_names": manifest["label_names"],
                   "manifest": {"shards": [s["name"] for s in manifest["shards"]], "jets": manifest["jets"],
                                "config_hash": manifest["provenance"]["config_hash"]}}


__all__ = ["MANIFEST_KIND", "allot_classes", "kept_rows", "manifest_metadata", "read_manifest",
           "read_manifest_table", "row_group_keep", "write_manifest"]

