"""The data contract: every name that more than one stage shares, in one place.

Samples and splits, the jet Parquet schema, the label names of both samples, the constituent
origins, the 8-class particle id, the model's continuous features, and the benchmark and
mode names. Generation, jet building, the readers of public data, the models, the downstream
benchmarks, the CLI and the config schema all import them from here (a test checks the
schema's enumerations against this module). Only numpy is imported, so that reading a jet
set never pulls in fastjet, uproot or Pythia.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Version of the on-disk formats (ROOT event files, jet Parquet, checkpoints, results).
SCHEMA_VERSION = 1

SAMPLES = ("btag", "boosted")
SPLITS = ("train", "val", "test")

# --- jet Parquet: one row per jet, a list column of constituent structs -----------------
JET_COLUMNS: dict[str, Any] = {
    "jet_pt": np.float32,
    "jet_eta": np.float32,
    "jet_phi": np.float32,
    "jet_mass": np.float32,
    "n_constituents": np.int16,
    "label": np.int8,
    "event": np.int64,
}
CONSTITUENT_FIELDS: dict[str, Any] = {
    "pt": np.float32,
    "deta": np.float32,
    "dphi": np.float32,
    "d0": np.float32,
    "z0": np.float32,
    "d0_err": np.float32,
    "z0_err": np.float32,
    "pid": np.int8,
    "charge": np.int8,
    "vertex": np.int16,
    "origin": np.int8,
}
# key of jetfm's metadata (sample, provenance, schema version) in the Parquet footer
METADATA_KEY = b"jetfm"

# --- labels ------------------------------------------------------------------------------
# btag: the jet's flavour from the heavy hadrons it contains
LABEL_LIGHT, LABEL_C, LABEL_B = 0, 1, 2
BTAG_LABEL_NAMES = ("light", "c", "b")
# boosted: the JetClass classes, in JetClass's order (label = index)
BOOSTED_LABEL_NAMES = ("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl")
# the generated process of each boosted class (config keys: samples.boosted.generate.shards)
BOOSTED_PROCESS_LABELS = {"qcd": 0, "hbb": 1, "hcc": 2, "hgg": 3, "h4q": 4, "hqql": 5, "zqq": 6,
                          "wqq": 7, "tbqq": 8, "tbl": 9}
# the generated processes of the btag sample (config keys: samples.btag.generate.shards)
BTAG_PROCESS_NAMES = ("bb", "cc", "light")
LABEL_NAMES = {"btag": BTAG_LABEL_NAMES, "boosted": BOOSTED_LABEL_NAMES}
# the generated processes of each sample, in catalogue order (shard names: {process}-{index:03d})
PROCESS_NAMES = {"btag": BTAG_PROCESS_NAMES, "boosted": tuple(BOOSTED_PROCESS_LABELS)}

# --- constituents ------------------------------------------------------------------------
# where a track comes from (btag_track_id's classes)
ORIGIN_PRIMARY, ORIGIN_C, ORIGIN_B, ORIGIN_OTHER = 0, 1, 2, 3
ORIGIN_NAMES = ("primary", "c", "b", "other")
# the papers' 8 particle classes
PID_NAMES = ("photon", "h-", "h0", "h+", "e-", "e+", "mu-", "mu+")
N_PID_CLASSES = len(PID_NAMES)
# the continuous constituent features the models read, in their column order
CONTINUOUS_FEATURES = ("pt", "deta", "dphi", "d0", "z0", "d0_err", "z0_err")

# --- benchmarks --------------------------------------------------------------------------
# benchmarks that train a head on a backbone, and the sample each trains and scores on
BENCHMARK_SAMPLES = {"btag_vertex_ari": "btag", "btag_track_id": "btag", "btag_ood_accuracy": "btag",
                     "jetclass_accuracy": "boosted", "cwola_sic": "boosted"}
TRAINED_BENCHMARKS = tuple(BENCHMARK_SAMPLES)
BENCHMARKS = (*TRAINED_BENCHMARKS, "jet_generation")
# how a downstream run uses its backbone; supervised is CWoLa's fully labelled reference
MODES = ("scratch", "fixed", "finetune", "supervised")
GENERATION_MODES = ("generated", "reconstructed")
