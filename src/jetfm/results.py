"""Result JSON files: one schema for per-run files and aggregated benchmark files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from jetfm.config import config_hash
from jetfm.provenance import atomic_output, library_versions
from jetfm.sanity import sanity_checks

RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["benchmark", "metric", "config_hash", "rows"],
    "properties": {
        "benchmark": {"type": "string"},
        "metric": {"type": "string"},
        "config_hash": {"type": "string"},
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["backbone", "mode", "seed", "value"],
                "properties": {
                    "backbone": {"type": "string"},
                    "mode": {"type": "string"},
                    "seed": {"type": "integer"},
                    "value": {"type": "number"},
                    "n_train": {"type": ["integer", "null"]},
                    "n_signal": {"type": "integer"},
                    "bins": {"type": "object", "additionalProperties": {"type": "number"}},
                },
            },
        },
        "summary": {"type": "array"},
        "scale": {"type": "string"},
    },
}


# Metrics where smaller is better (distances); every other metric is a score.
LOWER_IS_BETTER = frozenset({"mean_w1_over_std"})


def validate_result(result: dict[str, Any]) -> None:
    jsonschema.validate(result, RESULT_SCHEMA)


def write_result(result: dict[str, Any], path: str | Path) -> None:
    validate_result(result)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


def read_result(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"result file not found: {path}")
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    validate_result(result)
    return result


def group_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """What a summary row groups over seeds: (backbone, mode, n_train, n_signal); a summary row
    has the same key as the run rows it summarises."""
    return (row["backbone"], row["mode"], row.get("n_train"), row.get("n_signal"))


def group_rows(rows: Sequence[dict[str, Any]]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """Run rows by :func:`group_key`, in order of first appearance."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(group_key(row), []).append(row)
    return groups


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds per (backbone, mode, n_train, n_signal), overall and per bin."""
    out = []
    for (backbone, mode, n_train, n_signal), members in group_rows(rows).items():
        values = [r["value"] for r in members]
        per_bin: dict[str, list[float]] = {}
        for r in members:
            for label, v in r.get("bins", {}).items():
                per_bin.setdefault(label, []).append(v)
        out.append({
            "backbone": backbone, "mode": mode, "n_train": n_train, "n_signal": n_signal,
            "n_seeds": len(values), "mean": float(np.mean(values)), "std": _std(values),
            "bins_mean": {k: float(np.mean(v)) for k, v in per_bin.items()},
            "bins_std": {k: _std(v) for k, v in per_bin.items()},
        })
    return out


def _std(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def aggregate_results(run_files: Sequence[str | Path], benchmark: str, out: str | Path,
                      scale: str | None = None) -> dict[str, Any]:
    """Collect per-run result files of one benchmark into ``results/{benchmark}.json``; ``scale``
    is the config's (tiny, demo, study, paper): the tier the table comes from."""
    runs = [read_result(p) for p in run_files]
    if not runs:
        raise ValueError(f"no run files for benchmark {benchmark}")
    metrics = {r["metric"] for r in runs}
    wrong = sorted({r["benchmark"] for r in runs} - {benchmark})
    if wrong or len(metrics) != 1:
        raise ValueError(f"run files mix benchmarks {wrong} or metrics {sorted(metrics)}")
    rows = [row for r in runs for row in r["rows"]]
    summary = summarise(rows)
    result = {
        "benchmark": benchmark,
        "metric": metrics.pop(),
        "config_hash": config_hash(sorted(r["config_hash"] for r in runs)),
        "rows": rows,
        "summary": summary,
        "checks": sanity_checks(benchmark, summary),
        "runs": {Path(p).as_posix(): r["config_hash"] for p, r in zip(run_files, runs, strict=True)},
        "libraries": library_versions(),
    }
    if scale:
        result["scale"] = scale
    write_result(result, out)
    return result
