"""What made an artifact: recorded in every file jetfm writes, and atomic writes."""

from __future__ import annotations

import contextlib
import functools
import glob
import importlib.metadata
import os
import signal
import threading
from collections.abc import Iterable, Iterator
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove ``.NAME.tmp-PID`` files beside ``path`` whose writer no longer runs (a job killed
    with SIGKILL cannot clean up after itself); returns what was removed."""
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def exit_on_sigterm() -> None:
    """Turn SIGTERM (Snakemake, SLURM, ``kill``) into SystemExit, so that ``finally`` blocks
    run and :func:`atomic_output` removes its temporary file; exit status 143 as for the signal."""
    def _exit(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():  # the only thread that may set it
        signal.signal(signal.SIGTERM, _exit)


@contextlib.contextmanager
def atomic_outputs(paths: Iterable[str | Path]) -> Iterator[list[Path]]:
    """Yield temporary paths beside ``paths``; rename them all into place only on success.

    A killed or failing job therefore never leaves a half-written output, nor a partial set of
    outputs, behind: the temporary files are removed on errors and on SIGTERM
    (:func:`exit_on_sigterm`), and one left by a SIGKILL is removed by the next write of the
    same output.
    """
    paths = [Path(p) for p in paths]
    tmps: list[Path] = []
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(path)
            tmps.append(path.with_name(f".{path.name}.tmp-{os.getpid()}"))
        yield tmps
        for tmp, path in zip(tmps, paths, strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """:func:`atomic_outputs` for one output."""
    with atomic_outputs([path]) as (tmp,):
        yield tmp
