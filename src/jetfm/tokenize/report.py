"""Quality of a constituent tokenizer: code usage and how well tokens reconstruct the features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jetfm.contract import CONTINUOUS_FEATURES


def half_width_68(values: np.ndarray) -> float:
    """Half the width of the central 68% interval: a tail-robust resolution (σ for a Gaussian)."""
    if len(values) == 0:
        return float("nan")
    low, high = np.quantile(values, [0.16, 0.84])
    return float(high - low) / 2


def tokenizer_quality(tokens: np.ndarray, n_tokens: int, original: np.ndarray, reconstructed: np.ndarray,
                      feature_names: Sequence[str] = CONTINUOUS_FEATURES) -> dict[str, Any]:
    """Usage and resolution numbers of a tokenizer on a set of constituents.

    ``tokens`` [n] (codes of valid constituents only), ``original`` and ``reconstructed``
    [n, F] preprocessed features, F = ``feature_names``. Residuals are reconstructed −
    original in preprocessed units; the relative pT resolution inverts the log-pT
    transform: pT_rec/pT_true − 1 = exp(Δ log pT) − 1.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    original = np.asarray(original, dtype=np.float64)
    reconstructed = np.asarray(reconstructed, dtype=np.float64)
    f = len(feature_names)
    if original.shape != reconstructed.shape or original.shape != (len(tokens), f):
        raise ValueError(f"tokenizer_quality: shapes tokens {tokens.shape}, original {original.shape}, "
                         f"reconstructed {reconstructed.shape} do not match [n], [n, {f}], [n, {f}]")
    if len(tokens) and (tokens.min() < 0 or tokens.max() >= n_tokens):
        raise ValueError(f"tokenizer_quality: tokens outside [0, {n_tokens})")
    counts = np.bincount(tokens, minlength=n_tokens)
    usage = counts / max(len(tokens), 1)
    used = usage[usage > 0]
    residual = reconstructed - original
    pt_relative = np.expm1(residual[:, list(feature_names).index("pt")]) if "pt" in feature_names \
        else np.zeros(0)
    return {
        "n_constituents": len(tokens),
        "n_tokens": n_tokens,
        "utilisation": float((counts > 0).mean()),
        "perplexity": float(np.exp(-(used * np.log(used)).sum())),
        "rms_residual": float(np.sqrt((residual ** 2).mean())) if len(tokens) else float("nan"),
        "resolution": {
            name: {"rms": float(np.sqrt((residual[:, i] ** 2).mean())) if len(tokens) else float("nan"),
                   "half_width_68": half_width_68(residual[:, i])}
            for i, name in enumerate(feature_names)
        },
        "pt_relative_half_width_68": half_width_68(pt_relative),
    }
