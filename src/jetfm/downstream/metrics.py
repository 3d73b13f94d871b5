"""Clustering metrics, vectorised over jets."""

from __future__ import annotations

import numpy as np


def adjusted_rand_index(true: np.ndarray, pred: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """ARI of two partitions per row, as sklearn.metrics.adjusted_rand_score computes it.

    true, pred: int [G, N] cluster labels in [0, N]; valid: bool [G, N]. Returns [G].
    Built on the pair-confusion matrix, so identical partitions give exactly 1.
    """
    g, n = true.shape
    width = int(max(true.max(initial=0), pred.max(initial=0))) + 1
    one_t = np.zeros((g, n, width))
    one_p = np.zeros((g, n, width))
    rows, cols = np.nonzero(valid)
    one_t[rows, cols, true[rows, cols]] = 1.0
    one_p[rows, cols, pred[rows, cols]] = 1.0
    contingency = np.einsum("gnk,gnl->gkl", one_t, one_p)
    n_samples = valid.sum(axis=1).astype(np.float64)
    size_true = contingency.sum(axis=2)
    size_pred = contingency.sum(axis=1)
    sum_squares = (contingency**2).sum(axis=(1, 2))
    tp = sum_squares - n_samples
    fp = np.einsum("gkl,gl->g", contingency, size_pred) - sum_squares
    fn = np.einsum("gkl,gk->g", contingency, size_true) - sum_squares
    tn = n_samples**2 - fp - fn - sum_squares
    denominator = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
    with np.errstate(invalid="ignore", divide="ignore"):
        ari = 2.0 * (tp * tn - fn * fp) / denominator
    return np.where((fn == 0) & (fp == 0), 1.0, ari)


def n_secondary_vertices(vertex: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Distinct secondary-vertex ids (> 0) per jet."""
    width = int(vertex.max(initial=0)) + 1
    present = np.zeros((vertex.shape[0], width), dtype=bool)
    rows, cols = np.nonzero(valid & (vertex > 0))
    present[rows, vertex[rows, cols]] = True
    return present.sum(axis=1)


def binned_mean(values: np.ndarray, keys: np.ndarray, edges: list[int]) -> dict[str, float]:
    """Mean of ``values`` per integer bin: one bin per edge, the last collecting edge+."""
    out = {}
    for i, lo in enumerate(edges):
        last = i == len(edges) - 1
        sel = keys >= lo if last else keys == lo
        if sel.any():
            out[f"{lo}+" if last else str(lo)] = float(values[sel].mean())
    return out
