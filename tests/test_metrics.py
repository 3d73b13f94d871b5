from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from jetfm.downstream.metrics import (
    accuracy,
    adjusted_rand_index,
    balanced_accuracy,
    bin_masks,
    binned_mean,
    confusion_matrix,
    n_secondary_vertices,
    roc_points,
    sic_at_rejection,
)
from jetfm.graph import connected_components


def test_ari_hand_computed() -> None:
    # true {0,1},{2,3}; pred {0,1,2},{3}: pairs n=6, tp=1, fp=2, fn=1, tn=2 (unordered)
    # ARI = 2(tp·tn − fn·fp) / ((tp+fn)(fn+tn) + (tp+fp)(fp+tn)) = 2(2−2)/(...) = 0
    true = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 0, 0, 1]])
    valid = np.ones((1, 4), dtype=bool)
    assert adjusted_rand_index(true, pred, valid)[0] == pytest.approx(0.0)
    # true {0,1},{2}; pred {0},{1},{2}: ARI = 2(0·2 − 1·0)/((0+1)(1+2) + 0) = 0; identical → 1
    assert adjusted_rand_index(np.array([[0, 0, 1]]), np.array([[0, 1, 2]]), np.ones((1, 3), bool))[0] == 0.0
    assert adjusted_rand_index(true, true, valid)[0] == 1.0


def test_ari_matches_sklearn_on_random_partitions() -> None:
    rng = np.random.default_rng(0)
    g, n = 400, 12
    true = rng.integers(0, 4, (g, n))
    pred = rng.integers(0, 5, (g, n))
    pred[:50] = true[:50]  # some perfect answers
    true[50:80] = 0  # some single-cluster truths
    lengths = rng.integers(1, n + 1, g)
    valid = np.arange(n)[None, :] < lengths[:, None]
    ours = adjusted_rand_index(true, pred, valid)
    ref = [adjusted_rand_score(t[v], p[v]) for t, p, v in zip(true, pred, valid, strict=True)]
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_connected_components_and_padding() -> None:
    adjacency = np.zeros((1, 5, 5), dtype=bool)
    for a, b in [(0, 2), (2, 4), (1, 3)]:
        adjacency[0, a, b] = adjacency[0, b, a] = True
    valid = np.array([[1, 1, 1, 1, 0]], dtype=bool)  # node 4 is padding: breaks nothing it links
    assert connected_components(adjacency, valid).tolist() == [[0, 1, 0, 1, -1]]
    valid[0, 4] = True
    assert connected_components(adjacency, valid).tolist() == [[0, 1, 0, 1, 0]]


def test_secondary_vertex_count_and_bins() -> None:
    vertex = np.array([[0, 1, 1, 2, -1], [0, 0, 0, -1, -1], [3, 1, 2, 4, 0]])
    valid = vertex >= 0
    n_sv = n_secondary_vertices(vertex, valid)
    assert n_sv.tolist() == [2, 0, 4]
    assert binned_mean(np.array([0.5, 1.0, 0.25]), n_sv, [0, 1, 2, 3]) == {"0": 1.0, "2": 0.5, "3+": 0.25}


def test_balanced_accuracy_hand_computed() -> None:
    from sklearn.metrics import balanced_accuracy_score

    true = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 0, 0])
    # recalls 2/3, 1/2, 0 → mean 7/18
    assert balanced_accuracy(true, pred) == pytest.approx(7 / 18)
    assert balanced_accuracy(true, pred) == pytest.approx(balanced_accuracy_score(true, pred))
    # classes absent from the truth do not count, even when predicted
    assert balanced_accuracy(np.array([1, 1]), np.array([1, 3])) == 0.5


def test_accuracy_and_confusion_hand_computed() -> None:
    true, pred = np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1])
    assert accuracy(true, pred) == 0.5
    assert confusion_matrix(true, pred, 3).tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]


def test_sic_hand_computed() -> None:
    background = np.arange(100) / 100.0  # 0.00 … 0.99
    signal = np.array([1.5, 1.4, 1.3, 0.985, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    scores = np.concatenate([background, signal])
    is_signal = np.r_[np.zeros(100, bool), np.ones(10, bool)]
    # fpr = 1 %: a cut at 0.985 passes one background jet (0.99) and four signal jets
    assert sic_at_rejection(scores, is_signal, 0.99) == pytest.approx(0.4 / 0.1)
    # fpr = 2 %: a cut at 0.98 passes two background jets and still four signal jets
    assert sic_at_rejection(scores, is_signal, 0.98) == pytest.approx(0.4 / np.sqrt(0.02))
    # fpr = 1.5 %: between the 1 % and 2 % working points, both at tpr 0.4
    assert sic_at_rejection(scores, is_signal, 0.985) == pytest.approx(0.4 / np.sqrt(0.015))
    # fpr = 0.5 %: between (0, 0.3) at a cut at 1.3 and (0.01, 0.3) at a cut at 0.99
    assert sic_at_rejection(scores, is_signal, 0.995) == pytest.approx(0.3 / np.sqrt(0.005))


def test_sic_of_a_random_classifier() -> None:
    rng = np.random.default_rng(0)
    is_signal = rng.random(200_000) < 0.5
    assert sic_at_rejection(rng.random(200_000), is_signal, 0.99) == pytest.approx(0.1, abs=0.01)
    with pytest.raises(ValueError, match="both signal and background"):
        sic_at_rejection(np.ones(3), np.ones(3, bool))


def test_roc_points_are_thinned_in_log_fpr() -> None:
    rng = np.random.default_rng(1)
    is_signal = rng.random(5000) < 0.5
    roc = roc_points(rng.normal(size=5000) + is_signal, is_signal, max_points=50)
    assert len(roc["fpr"]) <= 50 and roc["fpr"][0] == 0.0 and roc["fpr"][-1] == 1.0
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)


def test_bin_masks_last_bin_collects_the_rest() -> None:
    keys = np.array([1, 2, 2, 5, 9])
    masks = bin_masks(keys, [1, 2, 3, 4])
    assert {k: int(v.sum()) for k, v in masks.items()} == {"1": 1, "2": 2, "4+": 2}


def test_bin_labels_sort_naturally() -> None:
    from jetfm.downstream.metrics import bin_sort_key

    assert sorted(["3+", "10", "2", "0", "8+", "8"], key=bin_sort_key) == ["0", "2", "3+", "8", "8+", "10"]
