from __future__ import annotations

from pathlib import Path

import numpy as np

from jetfm.config import stage_params, validate_config
from jetfm.downstream.vertexing import (
    predict_vertices,
    score_partitions,
    train_vertex_finder,
    vertex_baselines,
)
from jetfm.results import read_result


def test_prediction_joins_pairs_above_threshold() -> None:
    logits = np.full((1, 4, 4), -5.0)
    logits[0, 0, 2] = logits[0, 2, 0] = 5.0
    logits[0, 1, 3] = 5.0  # one direction only: not joined
    mask = np.array([[True, True, True, True]])
    assert predict_vertices(logits, mask, 0.5).tolist() == [[0, 1, 0, 3]]


def test_scores_skip_single_track_jets_and_bin_by_secondary_vertices() -> None:
    true = np.array([[0, 1, 1, -1], [0, -1, -1, -1], [0, 0, 1, 2]])
    mask = true >= 0
    pred = np.where(mask, true, 0)
    scores = score_partitions(true, pred, mask)
    assert scores["n_eval"] == 2 and scores["value"] == 1.0
    assert scores["bins"] == {"1": 1.0, "2": 1.0}


def test_training_subset_narrower_than_test_set(tmp_path: Path, jet_files: dict[str, Path]) -> None:
    cfg = validate_config({
        "backbones": {"mpm-kmeans": {"encoder": {"dim": 16, "layers": 1, "heads": 2, "registers": 1}}},
        "downstream": {"vertexing": {"steps": 5, "batch_size": 8, "n_train": 12, "head_hidden": 8,
                                     "head_embed": 4}},
    })
    params = stage_params(cfg, "vertexing", backbone="mpm-kmeans", mode="scratch", seed="3")
    out = tmp_path / "run.json"
    train_vertex_finder(jet_files["train"], jet_files["test"], None, params, out, progress=False)
    row = read_result(out)["rows"][0]
    assert row["n_train"] == 12 and row["seed"] == 3 and row["mode"] == "scratch"
    baselines = vertex_baselines(jet_files["test"], tmp_path / "baselines.json")["rows"]
    assert row["n_eval"] == baselines[0]["n_eval"]
