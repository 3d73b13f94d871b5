"""Distances between two samples of one observable: Wasserstein-1 and a binned KL divergence.

- W1 (earth mover's distance) of the two empirical distributions, in the observable's
  units (``scipy.stats.wasserstein_distance``); divided by the reference's standard
  deviation it is comparable between observables (0 = identical, 1 = a shift by one σ).
- KL(reference ‖ other) = Σ p log(p / q) over shared bins: edges from the reference's
  0.1–99.9 % quantiles (integer observables: unit-aligned bins), values outside in the end
  bins, half a count added to every bin of both histograms so that an empty bin costs a
  finite amount. In nats.
- The OmniJet-α KL (:func:`quantile_kl`): 50 bins whose edges are the reference's quantiles
  0.001 … 0.999, histogram densities + 1e-8, normalised and compared (``scipy.stats.entropy``);
  values outside the edges left out. :func:`bootstrap_distances` gives it and W1 as mean ±
  std over bootstrap batches.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import entropy, wasserstein_distance


def finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def histogram_edges(reference: np.ndarray, bins: int, integer: bool = False) -> np.ndarray:
    """Bin edges from the reference's central 99.8 %: ``bins`` equal bins, or for integer values
    bins of a whole number of units centred on the integers."""
    values = finite(reference)
    if len(values) == 0:
        return np.linspace(0.0, 1.0, bins + 1)
    low, high = np.quantile(values, [0.001, 0.999])
    if integer:
        low, high = math.floor(low), math.ceil(high)
        step = max(1, math.ceil((high - low + 1) / bins))
        return np.arange(low - 0.5, high + 0.5 + step, step, dtype=np.float64)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in ``edges``; values beyond the first or last edge count in the end bins."""
    values = np.clip(finite(values), edges[0], edges[-1])
    return np.histogram(values, bins=edges)[0]


def binned_kl(reference_counts: np.ndarray, other_counts: np.ndarray, pseudo_count: float = 0.5) -> float:
    """KL(reference ‖ other) of two histograms on the same bins, in nats."""
    p = np.asarray(reference_counts, dtype=np.float64) + pseudo_count
    q = np.asarray(other_counts, dtype=np.float64) + pseudo_count
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def wasserstein_1(reference: np.ndarray, other: np.ndarray) -> float:
    """W1 of two samples (non-finite values dropped); NaN if either is empty."""
    a, b = finite(reference), finite(other)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(wasserstein_distance(a, b))


def quantile_kl(reference: np.ndarray, other: np.ndarray, bins: int = 50, epsilon: float = 1e-8) -> float:
    """KL(reference ‖ other) in nats on ``bins`` bins whose edges are the reference's quantiles
    0.001 … 0.999 (repeated edges of a discrete observable merged), from histogram densities
    + ``epsilon``; NaN if either sample is empty."""
    a, b = finite(reference), finite(other)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    edges = np.unique(np.quantile(a, np.linspace(0.001, 0.999, bins + 1)))
    if len(edges) < 2:
        return 0.0 if np.all(b == edges[0]) else float("inf")

    def density(values: np.ndarray) -> np.ndarray:
        counts = np.histogram(values, bins=edges)[0].astype(np.float64)
        total = counts.sum()
        return (counts / (total * np.diff(edges)) if total > 0 else counts) + epsilon

    return float(entropy(density(a), density(b)))


def bootstrap_distances(reference: np.ndarray, other: np.ndarray, batches: int, seed: int
                        ) -> dict[str, list[float]]:
    """KL (:func:`quantile_kl`) and W1 of ``batches`` bootstrap batches, each drawn with
    replacement from both samples with the smaller sample's size: {"kl": [mean, std], "w1":
    [mean, std]}."""
    a, b = finite(reference), finite(other)
    if len(a) == 0 or len(b) == 0:
        return {"kl": [float("nan")] * 2, "w1": [float("nan")] * 2}
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    kl, w1 = [], []
    for _ in range(batches):
        x, y = a[rng.integers(0, len(a), n)], b[rng.integers(0, len(b), n)]
        kl.append(quantile_kl(x, y))
        w1.append(wasserstein_1(x, y))
    return {"kl": [float(np.mean(kl)), float(np.std(kl))], "w1": [float(np.mean(w1)), float(np.std(w1))]}
