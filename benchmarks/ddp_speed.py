"""Pre-training throughput on several ranks (DDP) against one process, same global batch.

    python benchmarks/ddp_speed.py --jets data/jets/boosted [--backbone mpm-boosted]
        [--config config.yaml] [--ranks 2] [--threads 1] [--steps 100] [--rounds 3]
        [--loader memory|stream] [--batch GLOBAL_BATCH]

Interleaved rounds (the order flips every round) of ``jetfm pretrain`` started as the workflow
starts it: one process (``jetfm``) and ``--ranks`` processes (``torchrun --standalone``), each
with ``--threads`` threads, on the backbone's config with the global batch of its config (so
every rank takes batch / ranks jets per step). The rate of a run is the median jets/s of its
metrics CSV over all ranks (each row covers ``log_every`` = 10 steps; the first row, start-up,
evaluations and probes left out). Prints JSON on stdout and the per-round ratios on stderr.
On a machine with GPUs, ``--device cuda`` gives every rank its own GPU (NCCL).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jetfm.config import load_config, stage_params
from jetfm.pretrain.train import read_metrics

ROOT = Path(__file__).resolve().parents[1]


def run(params: dict, ranks: int, threads: int, train: Path, val: Path, tokenizers: list[str],
        work: Path) -> dict:
    """One pre-training job on ``ranks`` processes; its loop's median jets/s and wall time."""
    for stale in work.glob("backbone*"):
        stale.unlink()
    jetfm = shutil.which("jetfm") or "jetfm"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                "--nproc_per_node", str(ranks), "--no-python"]
    launch = [jetfm] if ranks == 1 else [*torchrun, jetfm]
    command = [*launch, "-q", "pretrain", "--params", json.dumps(params), "--backbone", params["name"],
               "--train", str(train), "--val", str(val), "--threads", str(threads),
               "--out", str(work / "backbone.pt"), "--metrics", str(work / "backbone.csv"),
               *[a for t in tokenizers for a in ("--tokenizer", t)]]
    start = time.perf_counter()
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    rates = read_metrics(work / "backbone.csv")["jets_per_s"]
    return {"jets_per_s": float(np.nanmedian(rates[2:])), "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jets", type=Path, required=True,
                        help="a sample's folder with train.json, val.json")
    parser.add_argument("--config", default=str(ROOT / "config.yaml"))
    parser.add_argument("--backbone", default="mpm-boosted")
    parser.add_argument("--tokenizers", type=Path, default=Path("models/tokenizers"))
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of every rank (and of the one process)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loader", choices=["memory", "stream"], default="memory")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, help="global batch (default: the backbone's config)")
    args = parser.parse_args()

    cfg = load_config(args.config)
    params = stage_params(cfg, "pretrain", backbone=args.backbone)
    params["device"] = args.device
    never = 10 * args.steps  # no checkpoint, evaluation or probe inside the timed loop
    params["pretrain"] |= {"steps": args.steps, "checkpoint_every": never, "eval_every": never,
                           "probe_every": never, "probe_jets": 200, "val_jets": 2000,
                           "log_every": 10, "loader": args.loader}
    if args.batch:
        params["pretrain"]["batch_size"] = args.batch
    tokenizers = [f"{task}={args.tokenizers / (spec['name'] + '.pt')}"
                  for task, spec in params["tokenizers"].items()]
    train, val = args.jets / "train.json", args.jets / "val.json"
    speeds: dict[int, list[float]] = {1: [], args.ranks: []}
    ratios = []
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.rounds):
            order = (1, args.ranks) if round_ % 2 == 0 else (args.ranks, 1)
            rates = {}
            for ranks in order:
                result = run(params, ranks, args.threads, train, val, tokenizers, Path(scratch))
                rates[ranks] = result["jets_per_s"]
                speeds[ranks].append(rates[ranks])
            ratios.append(rates[args.ranks] / rates[1])
            print(f"round {round_}: {rates[1]:.0f} jets/s on 1 rank, {rates[args.ranks]:.0f} on "
                  f"{args.ranks}: ratio {ratios[-1]:.3f}", file=sys.stderr)
    summary = {"backbone": args.backbone, "global_batch": params["pretrain"]["batch_size"],
               "ranks": args.ranks, "threads_per_rank": args.threads, "loader": args.loader,
               "device": args.device,
               "steps": args.steps, "jets_per_s": {str(k): statistics.median(v) for k, v in speeds.items()},
               "per_round": ratios, "ratio": statistics.median(ratios)}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
