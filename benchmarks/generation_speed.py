"""Generation throughput: the full generate stage vs a bare `pythia.next()` loop.

    python benchmarks/generation_speed.py [--events 1000] [--sample btag] [--process bb]

Both use identical Pythia settings and seed, measured in one run on one machine, in
interleaved rounds: events/s are medians over rounds, the ratio is the median of the
per-round ratios. The full stage includes record extraction (nextBatch → numpy),
charges and ROOT writing. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from jetfm.config import stage_params, validate_config
from jetfm.generate import generate_shard, pythia_settings, shard_seed


def bare_loop(settings: list[str], n: int) -> float:
    """Seconds per event of a bare next() loop (initialisation excluded)."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        pythia.readString(line)
    pythia.init()
    start = time.perf_counter()
    done = 0
    while done < n:
        done += bool(pythia.next())
    return (time.perf_counter() - start) / n


def full_stage(params: dict, n: int, tmp: Path) -> float:
    """Seconds per event of the whole stage: the difference between an n-event and a
    1-event shard removes Pythia's initialisation, imports and file set-up."""
    timings = []
    for events in (1, n):
        start = time.perf_counter()
        generate_shard(params, tmp / f"shard{events}.root", n_events=events, progress=False)
        timings.append(time.perf_counter() - start)
    return (timings[1] - timings[0]) / (n - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; medians reported")
    parser.add_argument("--sample", default="btag", choices=["btag", "boosted"])
    parser.add_argument("--process", default="bb", help="a process of the sample's catalogue")
    args = parser.parse_args()
    cfg = validate_config({})
    params = stage_params(cfg, "generate", sample=args.sample, shard=f"{args.process}-000")
    seed = shard_seed(cfg["generate"]["seed"], args.process, 0)
    settings = pythia_settings(params["generate"], args.sample, args.process, 0, seed)
    bare, full = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):  # interleaved, so drifts of a shared machine hit both
            bare.append(bare_loop(settings, args.events))
            full.append(full_stage(params, args.events, Path(tmp)))
    bare_rate, full_rate = 1 / statistics.median(bare), 1 / statistics.median(full)
    rounds = [b / f for b, f in zip(bare, full, strict=True)]
    print(json.dumps({"benchmark": "generation_speed", "machine": platform.processor() or platform.machine(),
                      "sample": args.sample, "process": args.process, "events": args.events,
                      "rounds": args.rounds,
                      "bare_next_events_per_s": round(bare_rate, 1),
                      "full_stage_events_per_s": round(full_rate, 1),
                      # paired per round, so a slow spell of the machine cancels
                      "ratio": round(statistics.median(rounds), 3),
                      "ratio_per_round": [round(r, 3) for r in rounds]},
                     indent=2))


if __name__ == "__main__":
    main()
