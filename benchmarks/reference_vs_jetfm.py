"""jetfm's encoder trained from scratch beside the ParT reference, at equal wall time, in one run.

    python benchmarks/reference_vs_jetfm.py [--config config.yaml] [--benchmark jetclass_accuracy]
                                            [--seconds 300] [--seeds 0] [--threads 2] [--device cpu]
                                            [--backbone mpm-boosted] [--reference part]
                                            [--variants base,pair,relative,pair+relative]

Both models see the same training, validation and test jets of the benchmark's sample
(data/jets/{sample}/{split}.json, made by the workflow), the same batches, seeds and schedule
(the benchmark's downstream settings: lr, batch size, cosine over `steps`, validation every
`eval_every` steps, early stopping with `patience`). Each trains for at most ``--seconds`` of
wall time (checked at every evaluation) and is scored on the test set with its best-validation
weights. ``--variants`` trains jetfm's encoder in several forms: ``base`` (the backbone's encoder
as configured), ``pair`` (+ the pairwise attention bias), ``relative`` (+ the jet-relative
inputs), ``pair+relative``. The order of the models rotates with the seed, so that none always
runs on a warmer machine. Prints JSON on stdout and a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

from jetfm.config import benchmark_sample, load_config, stage_params
from jetfm.data.features import pad_jets
from jetfm.downstream.run import train_and_score
from jetfm.jets.jet_sets import read_jet_table
from jetfm.training import resolve_device, set_threads

ROOT = Path(__file__).resolve().parents[1]


def variant(name: str) -> dict[str, bool]:
    """Encoder options of a jetfm variant."""
    parts = set(name.split("+")) - {"base"}
    unknown = parts - {"pair", "relative"}
    if unknown:
        raise SystemExit(f"unknown variant part(s) {sorted(unknown)}: "
                         "use base, pair, relative, pair+relative")
    return {"pair_bias": "pair" in parts, "relative_inputs": "relative" in parts}


def run_one(params: dict[str, Any], sets: dict[str, Any], device: torch.device, seconds: float
            ) -> dict[str, Any]:
    _, row = train_and_score(params, sets["train"], sets["val"], sets["test"], device, progress=False,
                             max_seconds=seconds)
    kept = ("value", "best_val_loss", "best_step", "stopped_step", "stop_reason", "train_seconds",
            "parameters")
    return {"model": params["backbone_name"], "seed": params["seed"], **{k: row[k] for k in kept},
            "steps_per_second": round(row["stopped_step"] / row["train_seconds"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--benchmark", default="jetclass_accuracy",
                        choices=["jetclass_accuracy", "btag_ood_accuracy"])
    parser.add_argument("--backbone", default=None, help="whose encoder jetfm trains from scratch "
                        "(default: the benchmark's first backbone)")
    parser.add_argument("--reference", default="part", help="key of `references`")
    parser.add_argument("--variants", default="base", help="comma-separated jetfm encoder variants: "
                        "base, pair, relative, pair+relative")
    parser.add_argument("--seconds", type=float, default=300.0,
                        help="wall-time budget of each model and seed")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--max-steps", type=int, default=None, help="override the benchmark's `steps`")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--data", type=Path, default=Path("data/jets"),
                        help="folder of {sample}/{split}.json (split manifests)")
    args = parser.parse_args()

    cfg = load_config(args.config)
    cfg["device"] = args.device
    if args.max_steps is not None:
        cfg["downstream"][args.benchmark]["steps"] = args.max_steps
    set_threads(args.threads)
    device = resolve_device(args.device)
    sample = benchmark_sample(cfg, args.benchmark)
    sets = {s: pad_jets(read_jet_table(args.data / sample / f"{s}.json"))
            for s in ("train", "val", "test")}
    backbone = args.backbone or cfg["downstream"][args.benchmark]["backbones"][0]
    models = [*args.variants.split(","), args.reference]
    rows = []
    for i, seed in enumerate(int(s) for s in args.seeds.split(",")):
        for name in models[i % len(models):] + models[:i % len(models)]:
            if name == args.reference:
                params = stage_params(cfg, "downstream", benchmark=args.benchmark, backbone=name,
                                      mode="scratch", point="all", seed=str(seed))
            else:
                params = stage_params(cfg, "downstream", benchmark=args.benchmark, backbone=backbone,
                                      mode="scratch", point="all", seed=str(seed))
                params["encoder"] = params["encoder"] | variant(name)
                params["backbone_name"] = f"jetfm-{name}"
            row = run_one(params, sets, device, args.seconds) | {"role": name}
            rows.append(row)
            print(f"{params['backbone_name']:<20} seed {seed}: {row['value']:.4f} "
                  f"after {row['stopped_step']} steps "
                  f"({row['stop_reason']}, best {row['best_step']}), {row['train_seconds']} s, "
                  f"{row['parameters']} parameters", file=sys.stderr)
    mean = {role: statistics.fmean(r["value"] for r in rows if r["role"] == role) for role in models}
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {args.threads} threads"
    out = {"benchmark": args.benchmark, "sample": sample, "n_train": len(sets["train"]),
           "seconds": args.seconds, "device": where,
           "backbone": backbone, "reference": args.reference, "rows": rows, "mean": mean,
           "minus_reference": {m: mean[m] - mean[args.reference] for m in models if m != args.reference}}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
