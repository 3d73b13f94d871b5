"""Peak memory of pre-training and of one downstream job against the number of training
jets, and the streaming loader's throughput against the in-memory one.

    python benchmarks/stream_memory.py --jets data/jets/boosted [--backbone mpm-boosted]
        [--config config.yaml] [--sizes 10000,100000,1000000] [--steps 150] [--rounds 3]

``--jets`` is a sample's folder with its split manifests (``train.json``, ``val.json``).
Larger training sets are made by listing the real shards several times in a scratch
manifest (the jets repeat; what is measured is the loader's memory, not the physics). For
every size, one ``jetfm pretrain`` process with ``pretrain.loader: stream`` (0 workers,
``--steps`` steps of the backbone's config) runs and reports its own peak RSS
(``getrusage``); the in-memory loader runs at the sizes it can hold (up to ``--memory-max``).
The same for one ``jetfm downstream`` job (``jetclass_accuracy``, scratch, ``--steps`` steps).
Then, on the real training set, interleaved rounds of the two loaders (same steps, one
thread) give the throughput ratio stream / memory: the training loop's median jets/s
from the metrics CSV (start-up, evaluations and probes left out). Prints JSON on stdout, a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jetfm.config import load_config, stage_params
from jetfm.jets.manifest import read_manifest
from jetfm.pretrain.train import read_metrics

ROOT = Path(__file__).resolve().parents[1]


def replicated_manifest(train: Path, n_jets: int, out: Path) -> int:
    """A manifest listing the real shards of ``train`` (made absolute) as often as needed for
    at least ``n_jets`` jets; returns its jets."""
    manifest = read_manifest(train)
    shards = manifest["shards"]
    copies = max(1, math.ceil(n_jets / manifest["jets"]))
    listed = []
    for copy in range(copies):
        for shard in shards:
            name, file = f"{shard['name']}-copy{copy}", str(Path(shard["file"]).resolve())
            listed.append(shard | {"name": name, "file": file})
            if sum(s["jets"] for s in listed) >= n_jets:
                break
        if sum(s["jets"] for s in listed) >= n_jets:
            break
    raw = json.loads(train.read_text())
    raw |= {"shards": listed, "jets": sum(s["jets"] for s in listed)}
    out.write_text(json.dumps(raw))
    return raw["jets"]


_LAUNCH = ("import resource, sys\n"
           "from jetfm.cli import main\n"
           "code = main(sys.argv[1:])\n"
           "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
           "sys.exit(code)\n")


def run_pretrain(params: dict, train: Path, val: Path, tokenizers: list[str], work: Path) -> dict:
    """One pre-training process (loader workers 0: all in one process); its wall time,
    steps/s and its own peak RSS."""
    out = work / "backbone.pt"
    for stale in work.glob("backbone*"):
        stale.unlink()
    command = [sys.executable, "-c", _LAUNCH, "-q", "pretrain", "--params", json.dumps(params),
               "--backbone", params["name"], "--train", str(train), "--val", str(val), "--threads", "1",
               "--out", str(out), "--metrics", str(work / "backbone.csv"),
               *[a for t in tokenizers for a in ("--tokenizer", t)]]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    peak = int(proc.stderr.rsplit("peak_rss_kb", 1)[1].split()[0])
    # the training loop's own rate (jets/s over each 10 steps, from the metrics CSV): start-up,
    # evaluations and the probe left out
    rates = read_metrics(work / "backbone.csv")["jets_per_s"]
    loop = float(np.nanmedian(rates[1:]))
    return {"wall_s": wall, "jets_per_s": loop, "peak_rss_mb": peak / 1024}


def run_downstream(params: dict, train: Path, val: Path, test: Path, work: Path) -> dict:
    """One jetclass_accuracy scratch run (fixed steps, loader as in ``params``); its peak RSS."""
    command = [sys.executable, "-c", _LAUNCH, "-q", "downstream", "--params", json.dumps(params),
               "--benchmark", params["benchmark"], "--backbone", params["backbone_name"], "--mode",
               params["mode"], "--train", str(train), "--val", str(val), "--test", str(test),
               "--threads", "1", "--out", str(work / "run.json")]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    peak = int(proc.stderr.rsplit("peak_rss_kb", 1)[1].split()[0])
    return {"wall_s": time.perf_counter() - start, "peak_rss_mb": peak / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jets", type=Path, required=True,
                        help="a sample's folder with train.json, val.json")
    parser.add_argument("--config", default=str(ROOT / "config.yaml"))
    parser.add_argument("--backbone", default="mpm-boosted")
    parser.add_argument("--tokenizers", type=Path, default=Path("models/tokenizers"))
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--memory-max", type=int, default=100000, help="largest size tried in memory")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="loader workers of the stream in the rounds")
    parser.add_argument("--rss", default="pretrain,downstream",
                        help="stages whose peak RSS is measured (comma-separated; empty: none)")
    args = parser.parse_args()

    cfg = load_config(args.config)
    base = stage_params(cfg, "pretrain", backbone=args.backbone)
    base["pretrain"] |= {"steps": args.steps, "checkpoint_every": 10 * args.steps, "eval_every": args.steps,
                         "probe_every": args.steps, "probe_jets": 200, "val_jets": 2000}
    tokenizers = [f"{task}={args.tokenizers / (spec['name'] + '.pt')}"
                  for task, spec in base["tokenizers"].items()]
    train, val = args.jets / "train.json", args.jets / "val.json"
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        sample_test = args.jets / "test.json"

        def pretrain_run(loader: str, manifest: Path) -> dict:
            params = json.loads(json.dumps(base))
            params["pretrain"]["loader"] = loader
            return run_pretrain(params, manifest, val, tokenizers, work)

        def downstream_run(loader: str, manifest: Path) -> dict:
            # one downstream job: jetclass_accuracy, scratch, the backbone's encoder
            params = stage_params(cfg, "downstream", benchmark="jetclass_accuracy",
                                  backbone=args.backbone, mode="scratch", point="all", seed="0")
            params["settings"] |= {"loader": loader, "steps": args.steps, "eval_every": args.steps,
                                   "val_jets": 2000}
            return run_downstream(params, manifest, val, sample_test, work)

        stages = {"pretrain": pretrain_run, "downstream": downstream_run}
        for stage in [s for s in args.rss.split(",") if s]:
            for loader in ("memory", "stream"):
                for size in sizes:
                    if loader == "memory" and size > args.memory_max:
                        continue
                    manifest = work / f"train-{size}.json"
                    n = replicated_manifest(train, size, manifest)
                    result = stages[stage](loader, manifest)
                    rows.append({"stage": stage, "loader": loader, "jets": n, **result})
                    print(f"{stage} {loader:6s} {n:>9d} jets: peak RSS {result['peak_rss_mb']:7.0f} MB, "
                          f"{result['wall_s']:.0f} s", file=sys.stderr)
        ratios, speeds = [], {"memory": [], "stream": []}
        for round_ in range(args.rounds):  # --rounds 0: none
            order = ("memory", "stream") if round_ % 2 == 0 else ("stream", "memory")
            rates = {}
            for loader in order:
                params = json.loads(json.dumps(base))
                params["pretrain"]["loader"] = loader
                params["pretrain"]["loader_workers"] = args.workers if loader == "stream" else 0
                rates[loader] = run_pretrain(params, train, val, tokenizers, work)["jets_per_s"]
                speeds[loader].append(rates[loader])
            ratios.append(rates["stream"] / rates["memory"])
            print(f"round {round_}: stream / memory {ratios[-1]:.3f}", file=sys.stderr)
    summary = {"backbone": args.backbone, "steps": args.steps, "rss": rows, "per_round": ratios,
               "throughput": {k: statistics.median(v) for k, v in speeds.items() if v},
               "stream_over_memory": statistics.median(ratios) if ratios else None}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
