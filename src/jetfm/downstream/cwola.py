"""Classification without labels (CWoLa): two mixed samples built from labelled jets.

The training background jets are split at random into two equal halves; ``n_signal`` signal
jets are added to the second. A classifier trained to tell half 1 (target 0) from half 2
(target 1) learns signal vs background to the extent that signal is present. The test set
keeps its true labels.
"""

from __future__ import annotations

import numpy as np


def cwola_training_set(labels: np.ndarray, background: int, signal: int, n_signal: int,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``labels`` and their CWoLa targets (0 = half 1, 1 = half 2 + signal)."""
    rng = np.random.default_rng(seed)
    bkg = rng.permutation(np.flatnonzero(labels == background))
    sig = rng.permutation(np.flatnonzero(labels == signal))
    if len(bkg) < 2:
        raise ValueError(f"CWoLa needs background jets (class {background}); the training set has {len(bkg)}")
    if n_signal > len(sig):
        raise ValueError(f"CWoLa: {n_signal} signal jets requested, the training set has {len(sig)} "
                         f"of class {signal}")
    half = len(bkg) // 2
    index = np.concatenate([bkg[:half], bkg[half:2 * half], sig[:n_signal]])
    target = np.concatenate([np.zeros(half, np.int64), np.ones(half + n_signal, np.int64)])
    return index, target


def supervised_training_set(labels: np.ndarray, background: int, signal: int
                            ) -> tuple[np.ndarray, np.ndarray]:
    """All background and signal training jets with their true labels (the idealised reference)."""
    index = np.flatnonzero((labels == background) | (labels == signal))
    return index, (labels[index] == signal).astype(np.int64)


def labelled_test_set(labels: np.ndarray, background: int, signal: int) -> tuple[np.ndarray, np.ndarray]:
    """Background and signal test jets, target 1 for signal."""
    return supervised_training_set(labels, background, signal)
