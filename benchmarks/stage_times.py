"""Per-stage wall time of a finished workflow run, from Snakemake's benchmark files.

Usage (in the workflow's directory, after `snakemake ... results/btag_vertex_ari.json`):

    python benchmarks/stage_times.py [logs/benchmarks]

Prints JSON: per rule (downstream jobs per benchmark) the number of jobs, the summed job
wall time, the summed CPU time, the longest job, and the peak memory. Jobs overlap when
cores allow, and with more jobs than cores (`--cores 8` on 2 cores) each job's wall time
stretches, so the summed CPU time is the better measure of a stage's cost.
"""

from __future__ import annotations

import csv
import json
import platform
import sys
from pathlib import Path


def job_record(path: Path) -> dict[str, float | None]:
    """One job's Snakemake benchmark file: wall seconds ``s``, ``cpu_time`` seconds and
    ``max_rss`` MB, None where Snakemake could not measure it."""
    with open(path) as handle:
        row = next(csv.DictReader(handle, delimiter="\t"))
    return {key: None if row.get(key, "NA") in ("NA", "-", "") else float(row[key])
            for key in ("s", "cpu_time", "max_rss")}


def stage_times(root: Path) -> dict[str, dict[str, float]]:
    stages: dict[str, dict[str, float]] = {}
    for path in sorted(root.rglob("*.tsv")):  # {rule}/{job}.tsv or {rule}/{sample}/{job}.tsv
        row = job_record(path)
        parts = path.relative_to(root).parts
        rule = f"downstream/{parts[1]}" if parts[0] == "downstream" else parts[0]
        s = stages.setdefault(rule, {"jobs": 0, "sum_s": 0.0, "sum_cpu_s": 0.0, "max_s": 0.0,
                                     "max_rss_mb": 0.0})
        seconds = float(row["s"])  # type: ignore[arg-type]  # Snakemake always measures wall time
        s["jobs"] += 1
        s["sum_s"] = round(s["sum_s"] + seconds, 1)
        s["max_s"] = round(max(s["max_s"], seconds), 1)
        if row["cpu_time"] is not None:
            s["sum_cpu_s"] = round(s["sum_cpu_s"] + row["cpu_time"], 1)
        if row["max_rss"] is not None:
            s["max_rss_mb"] = max(s["max_rss_mb"], row["max_rss"])
    return stages


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "logs/benchmarks")
    if not root.is_dir():
        sys.exit(f"no benchmark directory {root}; run the workflow first")
    print(json.dumps({"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                      "stages": stage_times(root)}, indent=2))


if __name__ == "__main__":
    main()
