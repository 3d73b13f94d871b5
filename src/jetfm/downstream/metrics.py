"""Benchmark metrics: clustering (ARI), classification (accuracy, balanced accuracy, ROC, SIC)."""

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


def bin_masks(keys: np.ndarray, edges: list[int]) -> dict[str, np.ndarray]:
    """Selection per integer bin: one bin per edge (``"3"``), the last collecting edge+ (``"8+"``)."""
    out = {}
    for i, lo in enumerate(edges):
        last = i == len(edges) - 1
        sel = keys >= lo if last else keys == lo
        if sel.any():
            out[f"{lo}+" if last else str(lo)] = sel
    return out


def bin_sort_key(label: str) -> tuple[int, bool, str]:
    """Natural order of the labels of :func:`bin_masks`: ``"2"`` < ``"10"`` < ``"10+"``."""
    number = label.rstrip("+")
    return (int(number) if number.isdigit() else 0, label.endswith("+"), label)


def binned_mean(values: np.ndarray, keys: np.ndarray, edges: list[int]) -> dict[str, float]:
    """Mean of ``values`` per integer bin of ``keys`` (see :func:`bin_masks`)."""
    return {label: float(values[sel].mean()) for label, sel in bin_masks(keys, edges).items()}


def accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    return float((np.asarray(true) == np.asarray(pred)).mean())


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts [true class, predicted class]."""
    flat = np.asarray(true, dtype=np.int64) * n_classes + np.asarray(pred, dtype=np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def balanced_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``true`` (sklearn's balanced_accuracy_score)."""
    true, pred = np.asarray(true), np.asarray(pred)
    classes = np.unique(true)
    return float(np.mean([(pred[true == c] == c).mean() for c in classes]))


def roc_points(scores: np.ndarray, is_signal: np.ndarray, max_points: int = 200) -> dict[str, list[float]]:
    """ROC curve (fpr, tpr), thinned to at most ``max_points`` spread evenly in log fpr."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(is_signal, dtype=bool), scores)
    if len(fpr) > max_points:
        positive = np.flatnonzero(fpr > 0)
        targets = np.geomspace(fpr[positive[0]], 1.0, max_points - 1)
        keep = np.unique(np.concatenate([[0], np.searchsorted(fpr, targets).clip(max=len(fpr) - 1)]))
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": [round(float(x), 6) for x in fpr], "tpr": [round(float(x), 6) for x in tpr]}


def sic_at_rejection(scores: np.ndarray, is_signal: np.ndarray, rejection: float = 0.99) -> float:
    """Significance improvement tpr/√fpr at background rejection 1 − fpr = ``rejection``.

    The tpr is the best working point at fpr ≤ 1 − rejection, linearly interpolated towards
    the next working point when none sits exactly there.
    """
    from sklearn.metrics import roc_curve

    is_signal = np.asarray(is_signal, dtype=bool)
    if is_signal.all() or not is_signal.any():
        raise ValueError("SIC needs both signal and background jets")
    fpr, tpr, _ = roc_curve(is_signal, scores, drop_intermediate=False)
    target = 1.0 - rejection
    i = int(np.searchsorted(fpr, target, side="right")) - 1
    at = tpr[i]
    if fpr[i] < target and i + 1 < len(fpr):
        at += (tpr[i + 1] - tpr[i]) * (target - fpr[i]) / (fpr[i + 1] - fpr[i])
    return float(at / np.sqrt(target))
