"""Generation throughput: the full generate stage vs a bare `pythia.next()` loop.

    python benchmarks/generation_speed.py [--events 1000] [--process bb]

Both use identical Pythia settings and seed, measured in one run on one machine. The
full stage includes record extraction (nextBatch → numpy), charges and ROOT writing.
Prints JSON with events/s of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from jetfm.config import stage_params, validate_config
from jetfm.generate import generate_shard, pythia_settings, shard_seed


def bare_loop(settings: list[str], n: int) -> float:
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        pythia.readString(line)
    pythia.init()
    start = time.perf_counter()
    done = 0
    while done < n:
        done += bool(pythia.next())
    return n / (time.perf_counter() - start)


def full_stage(params: dict, n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        # Pythia's init is inside generate_shard; time it separately and remove it.
        init_only = Path(tmp) / "init.root"
        start = time.perf_counter()
        generate_shard(params, init_only, n_events=1, progress=False)
        init_seconds = time.perf_counter() - start
        start = time.perf_counter()
        generate_shard(params, Path(tmp) / "full.root", n_events=n, progress=False)
        return n / (time.perf_counter() - start - init_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--process", default="bb")
    args = parser.parse_args()
    cfg = validate_config({})
    params = stage_params(cfg, "generate", shard=f"{args.process}-000")
    seed = shard_seed(cfg["generate"]["seed"], args.process, 0)
    settings = pythia_settings(params["generate"], args.process, seed)
    bare = bare_loop(settings, args.events)
    full = full_stage(params, args.events)
    print(json.dumps({"benchmark": "generation_speed", "machine": platform.processor() or platform.machine(),
                      "process": args.process, "events": args.events,
                      "bare_next_events_per_s": round(bare, 1), "full_stage_events_per_s": round(full, 1),
                      "ratio": round(full / bare, 3)}, indent=2))


if __name__ == "__main__":
    main()
