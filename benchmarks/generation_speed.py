"""Generation throughput: the full generate stage vs a bare `pythia.next()` loop.

    python benchmarks/generation_speed.py [--events 1000] [--sample btag] [--process bb]

All use identical Pythia settings and seed, measured in one run on one machine, in
interleaved rounds: events/s are medians over rounds, the ratios medians of the per-round
ratios. The full stage includes record extraction (nextBatch → numpy), charges and ROOT
writing. A third loop, ``nextBatch`` alone, splits the difference between Pythia's own
conversion of the records to arrays and jetfm's work. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from jetfm.config import stage_params, validate_config
from jetfm.events import generate_shard, pythia_settings, shard_seed


def _pythia(settings: list[str]) -> Any:
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        pythia.readString(line)
    pythia.init()
    return pythia


def bare_loop(settings: list[str], n: int) -> float:
    """Seconds per event of a bare next() loop (initialisation excluded)."""
    pythia = _pythia(settings)
    start = time.perf_counter()
    done = 0
    while done < n:
        done += bool(pythia.next())
    return (time.perf_counter() - start) / n


def batch_loop(settings: list[str], n: int) -> float:
    """Seconds per event of ``nextBatch`` alone, in the stage's batches of 1000: Pythia plus
    pythia8mc's conversion of the event records to awkward arrays, nothing of jetfm's."""
    pythia = _pythia(settings)
    start = time.perf_counter()
    done = 0
    while done < n:
        done += len(pythia.nextBatch(min(1000, n - done)))
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
    bare, batched, full = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):  # interleaved, so drifts of a shared machine hit all three
            bare.append(bare_loop(settings, args.events))
            batched.append(batch_loop(settings, args.events))
            full.append(full_stage(params, args.events, Path(tmp)))
    bare_rate, full_rate = 1 / statistics.median(bare), 1 / statistics.median(full)
    rounds = [b / f for b, f in zip(bare, full, strict=True)]
    # where the difference goes: Pythia's record conversion (nextBatch vs next) and jetfm's
    # own work (extraction, charges, compression, writing: full stage vs nextBatch)
    conversion = [b / n for b, n in zip(bare, batched, strict=True)]
    jetfm_part = [n / f for n, f in zip(batched, full, strict=True)]
    print(json.dumps({"benchmark": "generation_speed", "machine": platform.processor() or platform.machine(),
                      "sample": args.sample, "process": args.process, "events": args.events,
                      "rounds": args.rounds,
                      "bare_next_events_per_s": round(bare_rate, 1),
                      "full_stage_events_per_s": round(full_rate, 1),
                      # paired per round, so a slow spell of the machine cancels
                      "ratio": round(statistics.median(rounds), 3),
                      "ratio_per_round": [round(r, 3) for r in rounds],
                      "next_batch_events_per_s": round(1 / statistics.median(batched), 1),
                      "bare_over_next_batch": round(statistics.median(conversion), 3),
                      "next_batch_over_full": round(statistics.median(jetfm_part), 3),
                      "bare_over_next_batch_per_round": [round(r, 3) for r in conversion],
                      "next_batch_over_full_per_round": [round(r, 3) for r in jetfm_part]},
                     indent=2))


if __name__ == "__main__":
    main()
