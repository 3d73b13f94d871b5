"""Quality of a constituent tokenizer: code usage and how well tokens reconstruct the features."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from jetfm.contract import CONTINUOUS_FEATURES
from jetfm.report.figures import save_png

matplotlib.use("Agg")

# Axis labels of the preprocessed features (data/features.py transforms).
_FEATURE_LABELS = {
    "pt": "log pT", "deta": "Δη / 0.4", "dphi": "Δφ / 0.4", "d0": "asinh(d0 / 50 µm) / 3",
    "z0": "asinh(z0 / 100 µm) / 3", "d0_err": "log(σ(d0) / 20 µm)", "z0_err": "log(σ(z0) / 50 µm)",
}


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


def plot_tokenizer_report(tokens: np.ndarray, n_tokens: int, original: np.ndarray,
                          reconstructed: np.ndarray, path: str | Path, title: str = "",
                          feature_names: Sequence[str] = CONTINUOUS_FEATURES) -> str:
    """PNG: code usage sorted by frequency, and one residual histogram per feature."""
    import matplotlib.pyplot as plt
    import mplhep

    mplhep.style.use("ROOT")
    counts = np.sort(np.bincount(np.asarray(tokens, dtype=np.int64), minlength=n_tokens))[::-1]
    residual = np.asarray(reconstructed, dtype=np.float64) - np.asarray(original, dtype=np.float64)
    n_cols = min(4, len(feature_names) + 1)
    n_rows = -(-(len(feature_names) + 1) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(6.5 * n_cols, 6.5 * n_rows), layout="constrained",
                             squeeze=False)
    ax = axes.flat[0]
    ax.bar(np.arange(n_tokens), counts, width=1.0, color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("code (sorted by frequency)", fontsize=16)
    ax.set_ylabel("constituents", fontsize=16)
    ax.set_title(f"code usage: {(counts > 0).sum()} / {n_tokens} used", fontsize=18)
    for i, name in enumerate(feature_names):
        ax = axes.flat[i + 1]
        values = residual[:, i]
        width = half_width_68(values)
        # range set by the bulk so one outlier does not squash the histogram
        span = 5 * width if np.isfinite(width) and width > 0 else 1.0
        ax.hist(np.clip(values, -span, span), bins=60, range=(-span, span), histtype="step", color="tab:red",
                label=f"68% half-width {width:.3g}\nRMS {np.sqrt((values ** 2).mean()):.3g}")
        ax.set_yscale("log")
        ax.set_ylim(top=ax.get_ylim()[1] * 10)  # headroom for the legend
        ax.set_xlabel("reconstructed − original", fontsize=16)
        ax.set_ylabel("constituents", fontsize=16)
        ax.set_title(_FEATURE_LABELS[name], fontsize=18)
        ax.legend(fontsize=14, loc="upper right")
    for ax in axes.flat[len(feature_names) + 1:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=20)
    return save_png(fig, Path(path))
