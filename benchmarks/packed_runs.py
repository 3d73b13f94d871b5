"""Downstream runs per hour on one device: one run at a time against several side by side.

    python benchmarks/packed_runs.py --jets data/jets/boosted [--config config.yaml]
        [--benchmark jetclass_accuracy] [--backbone mpm-boosted] [--mode scratch]
        [--steps 300] [--runs 4] [--device cuda] [--threads 1]

A demo-size run is minutes long and leaves a GPU almost idle, so the SLURM profile packs
several runs into one job on one GPU (profiles/slurm: the `downstream-runs` job group). This
measures what that buys: ``--runs`` scratch runs of one benchmark (seeds 0, 1, …, each
``--steps`` steps with one evaluation at the end, the config's batch and model) started as the
workflow starts them (``jetfm downstream``), first one after the other, then all at once on the
same device. Prints JSON: the wall time of each way, runs per hour, and their ratio.
On the CPU it rehearses the script (the runs then share the cores, not a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from jetfm.config import load_config, stage_params


def command(params: dict, jets: Path, seed: int, threads: int, out: Path) -> list[str]:
    """The downstream rule's command for one run."""
    return [shutil.which("jetfm") or "jetfm", "-q", "downstream", "--params", json.dumps(params),
            "--benchmark", params["benchmark"], "--backbone", params["backbone_name"],
            "--mode", params["mode"], "--point", "all", "--seed", str(seed),
            "--train", str(jets / "train.json"), "--val", str(jets / "val.json"),
            "--test", str(jets / "test.json"), "--threads", str(threads), "--out", str(out)]


def run_all(commands: list[list[str]], at_once: bool, threads: int, logs: Path) -> float:
    """Wall seconds to finish every command, one after the other or all started together (their
    output goes to files, so that no run waits on a full pipe)."""
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    files = [logs / f"run{i}.log" for i in range(len(commands))]
    start = time.perf_counter()
    procs: list[subprocess.Popen] = []
    for cmd, path in zip(commands, files, strict=True):
        with open(path, "w") as log:
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
        if not at_once:
            procs[-1].wait()
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - start
    for code, path in zip(codes, files, strict=True):
        if code != 0:
            raise RuntimeError(path.read_text()[-3000:])
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jets", type=Path, required=True, help="a sample's jets (data/jets/SAMPLE)")
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    parser.add_argument("--benchmark", default="jetclass_accuracy")
    parser.add_argument("--backbone", default="mpm-boosted", help="its architecture, trained from scratch")
    parser.add_argument("--mode", default="scratch", choices=["scratch"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--runs", type=int, default=4, help="runs packed onto the device")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    args = parser.parse_args()
    if not (args.jets / "train.json").is_file():
        raise SystemExit(f"no split manifests in {args.jets}: make the sample's jets first "
                         "(snakemake data/jets/SAMPLE/{train,val,test}.json)")
    cfg = load_config(args.config)
    section = cfg["downstream"][args.benchmark]
    section.update(steps=args.steps, eval_every=args.steps, patience=1)
    cfg["device"] = args.device
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        commands = []
        for seed in range(args.runs):
            params = stage_params(cfg, "downstream", benchmark=args.benchmark, backbone=args.backbone,
                                  mode=args.mode, point="all", seed=str(seed))
            commands.append(command(params, args.jets, seed, args.threads, work / f"seed{seed}.json"))
        run_all(commands[:1], False, args.threads, work)  # warm-up: file caches, CUDA's first start
        one_at_a_time = run_all(commands, False, args.threads, work)
        side_by_side = run_all(commands, True, args.threads, work)
    print(json.dumps({
        "machine": platform.processor() or platform.machine(), "device": args.device,
        "benchmark": args.benchmark, "backbone": args.backbone, "mode": args.mode, "steps": args.steps,
        "batch_size": section["batch_size"], "runs": args.runs, "threads_per_run": args.threads,
        "one_at_a_time_s": round(one_at_a_time, 1), "side_by_side_s": round(side_by_side, 1),
        "runs_per_hour_one_at_a_time": round(3600 * args.runs / one_at_a_time, 1),
        "runs_per_hour_side_by_side": round(3600 * args.runs / side_by_side, 1),
        "ratio": round(one_at_a_time / side_by_side, 3),
    }, indent=1))


if __name__ == "__main__":
    main()
