"""The figure of a fitted tokenizer: code usage and the reconstruction residual of each feature
on the validation jets (models/tokenizers/{name}.png), drawn from the tokenizer file and the
jets; the numbers are in its quality report (:mod:`jetfm.tokenize.report`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

from jetfm.contract import CONTINUOUS_FEATURES
from jetfm.report.figures import save_png
from jetfm.tokenize.report import half_width_68

matplotlib.use("Agg")

# Axis labels of the preprocessed features (data/features.py transforms).
_FEATURE_LABELS = {
    "pt": "log pT", "deta": "Δη / 0.4", "dphi": "Δφ / 0.4", "d0": "asinh(d0 / 50 µm) / 3",
    "z0": "asinh(z0 / 100 µm) / 3", "d0_err": "log(σ(d0) / 20 µm)", "z0_err": "log(σ(z0) / 50 µm)",
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


def draw_tokenizer_figure(tokenizer_file: str | Path, val_file: str | Path, path: str | Path) -> str:
    """The figure of the tokenizer in ``tokenizer_file`` on the validation jets ``val_file`` (a
    Parquet file or a split's manifest), the jets its quality report measured."""
    from jetfm.tokenize import load_tokenizer, validation_arrays

    tokenizer = load_tokenizer(tokenizer_file)
    config = tokenizer.info.get("config", {})
    sample, settings = config.get("sample"), config.get("tokenizer", {})
    tokens, original, reconstructed = validation_arrays(tokenizer, val_file, sample, settings.get("fit_jets"))
    kind = settings.get("kind", "kmeans")
    title = f"tokenizer {config.get('name', Path(tokenizer_file).stem)} ({kind}, {sample}), validation jets"
    return plot_tokenizer_report(tokens, tokenizer.n_tokens, original, reconstructed, path, title=title,
                                 feature_names=tokenizer.feature_names)
