"""Jets-stage throughput vs a bare fastjet anti-kt clustering of the same events.

    python benchmarks/jets_speed.py EVENTS.root [--rounds 5]

The bare number clusters the visible final state, already in memory as four-vectors
(fastjet's awkward interface, R = 0.4, pT > 20 GeV); the full number is the whole jets
stage on the same file: ROOT reading, clustering, tracking detector, truth labelling
and Parquet writing. Interleaved rounds: events/s are medians over rounds, the ratio is
the median of the per-round ratios. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from jetfm.config import stage_params, validate_config
from jetfm.events.root_io import flat_particles, read_events
from jetfm.jets import build_jet_sets
from jetfm.jets.cluster import cluster_antikt, clustering_input, visible_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("events", type=Path, help="a ROOT event file written by jetfm generate")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cfg = validate_config({})
    jets = cfg["samples"]["btag"]["jets"]
    params = stage_params(cfg, "jets", sample="btag")
    flat, event = flat_particles(read_events(args.events, ("px", "py", "pz", "e", "status", "id")))
    counts = np.bincount(event)
    visible = clustering_input(flat, counts, visible_mask(flat["status"], flat["id"]))
    n = len(counts)
    bare, full = [], []
    with tempfile.TemporaryDirectory() as tmp:
        outs = {s: Path(tmp) / f"{s}.parquet" for s in ("train", "val", "test")}
        build_jet_sets([args.events], params, outs, progress=False)  # warm-up
        for _ in range(args.rounds):
            start = time.perf_counter()
            cluster_antikt(visible, jets["radius"], jets["pt_min_gev"], jets["abs_eta_max"])
            bare.append(time.perf_counter() - start)
            start = time.perf_counter()
            build_jet_sets([args.events], params, outs, progress=False)
            full.append(time.perf_counter() - start)
    rounds = [b / f for b, f in zip(bare, full, strict=True)]
    print(json.dumps({"benchmark": "jets_speed", "machine": platform.processor() or platform.machine(),
                      "events": n, "rounds": args.rounds,
                      "bare_fastjet_events_per_s": round(n / statistics.median(bare), 1),
                      "full_stage_events_per_s": round(n / statistics.median(full), 1),
                      "ratio": round(statistics.median(rounds), 3),
                      "ratio_per_round": [round(r, 3) for r in rounds]}, indent=2))


if __name__ == "__main__":
    main()
