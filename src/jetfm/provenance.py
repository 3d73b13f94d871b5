"""What made an artifact: recorded in every file jetfm writes, and atomic writes."""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jetfm import SCHEMA_VERSION, __version__
from jetfm.config import config_hash

_LIBRARIES = (
    "numpy", "awkward", "uproot", "fastjet", "vector", "pyarrow",
    "pythia8mc", "torch", "faiss-cpu", "scikit-learn", "normflows", "vector-quantize-pytorch",
)


@functools.cache  # package metadata lookups cost ~15 ms; versions do not change in a process
def _library_versions() -> tuple[tuple[str, str], ...]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return tuple(versions.items())


def library_versions() -> dict[str, str]:
    return dict(_library_versions())


def provenance(stage: str, params: Any) -> dict[str, Any]:
    """Metadata stored with an artifact. No timestamps: same inputs give the same bytes."""
    return {
        "jetfm_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "stage": stage,
        "config": params,
        "config_hash": config_hash(params),
        "libraries": library_versions(),
    }


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    A killed or failing job therefore never leaves a half-written output behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
