"""Where the downstream runs' time goes: CPU cost per benchmark × mode, and what a shorter
patience would have saved and changed.

Usage (in a workflow directory whose downstream runs have finished):

    python benchmarks/run_costs.py [--runs results/runs] [--times logs/benchmarks/downstream]
                                   [--patience 2 3 4 5] [--markdown] [--estimate CONFIG]

Per run it reads the run file (learning curve, best and last step, stop reason, settings) and
the Snakemake benchmark file of its job (CPU seconds). A run's learning curve does not depend
on its patience (the schedule's length is `steps`), so the stop and the selected step of any
shorter patience follow from the recorded curve exactly: the same selected step means the
same weights and the same test score. Prints JSON (or Markdown tables): per benchmark × mode
× backbone (or reference) the runs, CPU minutes, the share of steps after the best step (the
patience tail), and per shorter patience the CPU minutes it would save (steps saved × the
run's CPU per step) and how many runs would select another step.

``--estimate CONFIG`` prices another configuration's downstream runs from the measured ones:
a run of the same benchmark, backbone, mode and point costs what its measured seeds cost;
otherwise the mean of the same benchmark, backbone and mode at a point of the same kind (all
jets or a subset); otherwise it is listed as unpriced.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from stage_times import job_record  # this folder's: the benchmark files' one reader

from jetfm.downstream.run import patience_start, replay_stopping


def cpu_seconds(times: Path, run: Path, runs: Path) -> float | None:
    """CPU seconds of a run's job from its Snakemake benchmark file, if there is one."""
    benchmark, backbone, mode, point, seed = run.relative_to(runs).with_suffix("").parts
    tsv = times / benchmark / f"{backbone}-{mode}-{point}-{seed}.tsv"
    return job_record(tsv)["cpu_time"] if tsv.is_file() else None


def run_cost(run: Path, runs: Path, times: Path, patiences: list[int]) -> dict[str, Any] | None:
    result = json.loads(run.read_text())
    row = result["rows"][0]
    curve = row.get("learning_curve")
    if not curve:
        return None
    params = result["provenance"]["config"]
    settings, mode = params["settings"], params["mode"]
    min_steps = patience_start(params)
    stopped, best = int(row["stopped_step"]), int(row["best_step"])
    cpu = cpu_seconds(times, run, runs)
    out: dict[str, Any] = {
        "run": run.relative_to(runs).as_posix(), "benchmark": params["benchmark"], "mode": mode,
        "model": params["backbone_name"], "cpu_s": cpu, "best_step": best,
        "stopped_step": stopped, "stop_reason": row["stop_reason"], "patience": settings["patience"],
        "value": row["value"], "shorter": {},
    }
    for patience in patiences:
        if patience >= settings["patience"]:
            continue
        selected, last = replay_stopping(curve, patience, min_steps)
        saved = (stopped - last) / stopped * cpu if cpu is not None else None
        out["shorter"][str(patience)] = {"selected_step": selected, "stopped_step": last,
                                         "same_selection": selected == best, "cpu_s_saved": saved}
    return out


def summarise(costs: list[dict[str, Any]], patiences: list[int]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for cost in costs:
        groups.setdefault((cost["benchmark"], cost["mode"], cost["model"]), []).append(cost)
    table = []
    for (benchmark, mode, model), group in sorted(groups.items()):
        cpu = [c["cpu_s"] for c in group if c["cpu_s"] is not None]
        entry: dict[str, Any] = {
            "benchmark": benchmark, "mode": mode, "model": model, "runs": len(group),
            "cpu_min": round(sum(cpu) / 60, 1), "cpu_min_per_run": round(sum(cpu) / 60 / max(len(cpu), 1), 1),
            "at_max_steps": sum(c["stop_reason"] == "max_steps" for c in group),
            "tail_share": round(sum(c["stopped_step"] - c["best_step"] for c in group)
                                / max(sum(c["stopped_step"] for c in group), 1), 3),
        }
        for patience in patiences:
            shorter = [c["shorter"][str(patience)] for c in group if str(patience) in c["shorter"]]
            if shorter:
                entry[f"patience{patience}"] = {
                    "cpu_min_saved": round(sum(s["cpu_s_saved"] or 0.0 for s in shorter) / 60, 1),
                    "other_selection": sum(not s["same_selection"] for s in shorter)}
        table.append(entry)
    return table


def markdown(table: list[dict[str, Any]], patiences: list[int]) -> str:
    head = ["benchmark", "mode", "backbone", "runs", "CPU min", "per run", "at max", "tail"]
    head += [f"p={p}: saved / other step" for p in patiences]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in table:
        cells = [e["benchmark"], e["mode"], e["model"], str(e["runs"]), f"{e['cpu_min']:.1f}",
                 f"{e['cpu_min_per_run']:.1f}", str(e["at_max_steps"]), f"{e['tail_share']:.0%}"]
        for p in patiences:
            s = e.get(f"patience{p}")
            cells.append(f"{s['cpu_min_saved']:.1f} / {s['other_selection']}" if s else "–")
        lines.append("| " + " | ".join(cells) + " |")
    total = sum(e["cpu_min"] for e in table)
    lines.append(f"\nTotal: {total:.1f} CPU minutes in {sum(e['runs'] for e in table)} runs.")
    return "\n".join(lines)


def estimate(config: Path, costs: list[dict[str, Any]]) -> dict[str, Any]:
    """The CPU minutes of ``config``'s downstream runs, priced from the measured ``costs``."""
    from jetfm.config import benchmark_jobs, load_config

    cfg = load_config(config)
    exact: dict[tuple[str, ...], list[float]] = {}
    similar: dict[tuple[str, ...], list[float]] = {}
    for c in costs:
        if c["cpu_s"] is None:
            continue
        benchmark, backbone, mode, point, _ = c["run"].split("/")
        exact.setdefault((benchmark, backbone, mode, point), []).append(c["cpu_s"] / 60)
        similar.setdefault((benchmark, backbone, mode, str(point == "all")), []).append(c["cpu_s"] / 60)
    total, priced, guessed, unpriced = 0.0, 0, 0, []
    for benchmark in cfg["downstream"]:
        if benchmark == "jet_generation":
            continue
        for job in benchmark_jobs(cfg, benchmark):
            key = (benchmark, job["backbone"], job["mode"], job["point"])
            near = (benchmark, job["backbone"], job["mode"], str(job["point"] == "all"))
            if key in exact:
                total, priced = total + sum(exact[key]) / len(exact[key]), priced + 1
            elif near in similar:
                total, guessed = total + sum(similar[near]) / len(similar[near]), guessed + 1
            else:
                unpriced.append("/".join(key))
    return {"config": str(config), "cpu_min": round(total, 1), "runs_priced_from_the_same_run": priced,
            "runs_priced_from_similar_runs": guessed, "unpriced_runs": unpriced}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("results/runs"))
    parser.add_argument("--times", type=Path, default=Path("logs/benchmarks/downstream"))
    parser.add_argument("--patience", type=int, nargs="+", default=[2, 3, 4, 5])
    parser.add_argument("--markdown", action="store_true", help="Markdown tables instead of JSON")
    parser.add_argument("--estimate", type=Path, help="price this config's downstream runs from these")
    args = parser.parse_args()
    if not args.runs.is_dir():
        raise SystemExit(f"no run directory {args.runs}; run the workflow first")
    files = sorted(p for p in args.runs.rglob("seed*.json"))
    costs = [c for c in (run_cost(p, args.runs, args.times, args.patience) for p in files) if c]
    table = summarise(costs, args.patience)
    if args.estimate is not None:
        print(json.dumps(estimate(args.estimate, costs), indent=1))
        return
    if args.markdown:
        print(markdown(table, args.patience))
    else:
        print(json.dumps({"runs": costs, "table": table}, indent=1))


if __name__ == "__main__":
    main()
