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
                    "bins": {"type": "object", "additionalProperties": {"type": "number"}},
                },
            },
        },
        "summary": {"type": "array"},
    },
}


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


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds per (backbone, mode)."""
    groups: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        groups.setdefault((row["backbone"], row["mode"]), []).append(row["value"])
    return [
        {"backbone": b, "mode": m, "n_seeds": len(v), "mean": float(np.mean(v)),
         "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0}
        for (b, m), v in groups.items()
    ]


def aggregate_results(run_files: Sequence[str | Path], benchmark: str, out: str | Path) -> dict[str, Any]:
    """Collect per-run result files of one benchmark into ``results/{benchmark}.json``."""
    runs = [read_result(p) for p in run_files]
    if not runs:
        raise ValueError(f"no run files for benchmark {benchmark}")
    metrics = {r["metric"] for r in runs}
    wrong = sorted({r["benchmark"] for r in runs} - {benchmark})
    if wrong or len(metrics) != 1:
        raise ValueError(f"run files mix benchmarks {wrong} or metrics {sorted(metrics)}")
    rows = [row for r in runs for row in r["rows"]]
    result = {
        "benchmark": benchmark,
        "metric": metrics.pop(),
        "config_hash": config_hash(sorted(r["config_hash"] for r in runs)),
        "rows": rows,
        "summary": summarise(rows),
        "runs": {Path(p).as_posix(): r["config_hash"] for p, r in zip(run_files, runs, strict=True)},
        "libraries": library_versions(),
    }
    write_result(result, out)
    return result
