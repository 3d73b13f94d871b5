"""Jets-stage throughput vs a bare fastjet anti-kt clustering of the same events.

    python benchmarks/jets_speed.py EVENTS.root

The bare number clusters the visible final state already in memory (fastjet's awkward
interface, R = 0.4, pT > 20 GeV); the full number is the whole jets stage on the same
file: ROOT reading, clustering, tracking detector, truth labelling and Parquet writing.
Prints JSON with events/s of each and their ratio.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import awkward as ak

from jetfm.config import stage_params, validate_config
from jetfm.generate.root_io import read_events
from jetfm.jets import build_jet_sets
from jetfm.jets.cluster import cluster_antikt, clustering_input, visible_mask


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = Path(sys.argv[1])
    cfg = validate_config({})
    events = read_events(path)
    particles = events.particles
    flat = {f: ak.to_numpy(ak.flatten(particles[f])) for f in ("px", "py", "pz", "e", "status", "id")}
    counts = ak.to_numpy(ak.num(particles))
    visible = clustering_input(flat, counts, visible_mask(flat["status"], flat["id"]))
    n = len(events)
    start = time.perf_counter()
    cluster_antikt(visible, cfg["jets"]["radius"], cfg["jets"]["pt_min_gev"], cfg["jets"]["abs_eta_max"])
    bare = n / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        outs = {s: Path(tmp) / f"{s}.parquet" for s in ("train", "val", "test")}
        start = time.perf_counter()
        build_jet_sets([path], stage_params(cfg, "jets"), outs, progress=False)
        full = n / (time.perf_counter() - start)
    print(json.dumps({"benchmark": "jets_speed", "machine": platform.processor() or platform.machine(),
                      "events": n, "bare_fastjet_events_per_s": round(bare, 1),
                      "full_stage_events_per_s": round(full, 1), "ratio": round(full / bare, 3)}, indent=2))


if __name__ == "__main__":
    main()
