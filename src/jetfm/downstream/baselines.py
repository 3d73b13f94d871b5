"""Trivial answers of each benchmark, scored exactly like the trained heads.

- classification (jetclass_accuracy, btag_ood_accuracy): always the training set's most
  frequent class;
- btag_track_id: every track given the most frequent training origin (balanced accuracy
  1 / number of classes present);
- btag_vertex_ari: all tracks in one vertex, and every track its own vertex;
- cwola_sic: a random classifier, whose tpr equals its fpr, so SIC = √(1 − rejection);
- jet_generation: the second half of the true test jets, the statistical floor of the
  distances (jetfm.jet_generation.evaluate).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from jetfm.contract import BENCHMARK_SAMPLES
from jetfm.data.features import pad_jets
from jetfm.downstream.metrics import accuracy, balanced_accuracy, bin_masks
from jetfm.downstream.run import make_task
from jetfm.downstream.tasks import TRACK_BINS, score_partitions
from jetfm.jets.jet_sets import read_jet_set
from jetfm.provenance import provenance
from jetfm.results import write_result


def _row(name: str, value: float, **extra: Any) -> dict[str, Any]:
    return {"backbone": name, "mode": "baseline", "seed": 0, "value": float(value), "n_train": 0, **extra}


def baseline_rows(benchmark: str, settings: dict[str, Any], train_file: str | Path,
                  test_file: str | Path) -> list[dict[str, Any]]:
    if benchmark == "cwola_sic":
        return [_row("baseline-random", math.sqrt(1.0 - settings["background_rejection"]))]
    if benchmark == "jet_generation":
        from jetfm.jet_generation import truth_floor_row

        return [truth_floor_row(test_file, settings)]
    sample = BENCHMARK_SAMPLES[benchmark]
    test = pad_jets(read_jet_set(test_file, sample))
    mask = test.mask.numpy()
    if benchmark == "btag_vertex_ari":
        vertex = test.vertex.numpy()
        one = np.zeros_like(vertex)
        own = np.broadcast_to(np.arange(mask.shape[1]), vertex.shape).copy()
        return [_row(name, **score_partitions(vertex, pred, mask))
                for name, pred in (("baseline-one-vertex", one), ("baseline-own-vertex", own))]
    train = read_jet_set(train_file, sample)
    if benchmark == "btag_track_id":
        majority = int(np.bincount(train.tracks["origin"]).argmax())
        true = test.origin.numpy()[mask]
        pred = np.full_like(true, majority)
        n_tracks = np.broadcast_to(mask.sum(axis=1, keepdims=True), mask.shape)[mask]
        bins = {k: balanced_accuracy(true[s], pred[s]) for k, s in bin_masks(n_tracks, TRACK_BINS).items()}
        return [_row("baseline-majority", balanced_accuracy(true, pred), bins=bins, n_eval=int(mask.sum()))]
    if benchmark in ("jetclass_accuracy", "btag_ood_accuracy"):
        majority = int(np.bincount(train.jets["label"].astype(np.int64)).argmax())
        true = test.label.numpy()
        return [_row("baseline-majority", accuracy(true, np.full_like(true, majority)), n_eval=len(true))]
    raise ValueError(f"unknown benchmark '{benchmark}'")


def write_baselines(params: dict[str, Any], train_file: str | Path, test_file: str | Path,
                    out: str | Path) -> dict[str, Any]:
    """Score the trivial answers of one benchmark and write them as a run file."""
    benchmark = params["benchmark"]
    rows = baseline_rows(benchmark, params["settings"], train_file, test_file)
    if benchmark == "jet_generation":
        from jetfm.jet_generation.evaluate import METRIC as metric
    else:
        metric = make_task(benchmark, params["settings"]).metric
    meta = provenance("downstream_baselines", params)
    result = {"benchmark": benchmark, "metric": metric, "config_hash": meta["config_hash"], "rows": rows,
              "provenance": meta}
    write_result(result, out)
    return result
