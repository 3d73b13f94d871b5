from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from jetfm.downstream.metrics import adjusted_rand_index, binned_mean, n_secondary_vertices
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
