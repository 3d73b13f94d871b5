"""The pre-training curves of one backbone: losses, validation losses and the linear probe."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
from matplotlib.ticker import LogFormatter

from jetfm.report.figures import save_png

matplotlib.use("Agg")


def plot_metrics_file(metrics: str | Path, path: str | Path, title: str = "") -> str:
    """The figure of a pre-training's metrics CSV (models/backbones/{name}.metrics.csv): one row
    per logged step, a cell left empty where that step has no such metric."""
    with open(metrics, newline="") as handle:
        rows = list(csv.DictReader(handle))
    history = [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in rows]
    return plot_pretraining(history, path, title)


def plot_pretraining(history: Sequence[dict[str, float]], path: str | Path, title: str = "") -> str:
    """Training and validation loss per task vs step (log y), probe accuracy on a second axis."""
    import matplotlib.pyplot as plt
    import mplhep

    mplhep.style.use("ROOT")
    fig, ax = plt.subplots(figsize=(8, 5.5))
    keys = sorted({k for row in history for k in row if k.startswith("loss")})
    for i, key in enumerate(keys):
        colour = f"C{i}"
        steps = [row["step"] for row in history if key in row]
        ax.plot(steps, [row[key] for row in history if key in row], color=colour, lw=1, alpha=0.6,
                label=f"train {key[5:] or 'total'}" if key != "loss" else "train total")
        val = [(row["step"], row[f"val_{key}"]) for row in history if f"val_{key}" in row]
        if val:
            ax.plot(*zip(*val, strict=True), color=colour, lw=2, ls="--", marker="o", ms=3,
                    label=f"val {key[5:] or 'total'}" if key != "loss" else "val total")
    positive = all(row[k] > 0 for row in history for k in keys if k in row)
    ax.set_yscale("log" if positive else "linear")
    ax.ticklabel_format(axis="x", useOffset=False)
    if positive:  # plain numbers (2, 3, 4) rather than 2×10^0
        ax.yaxis.set_major_formatter(LogFormatter())
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))
    else:
        ax.ticklabel_format(axis="y", useOffset=False)  # no '+1e0' offset hiding the loss values
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    probe = [(row["step"], row["probe_acc"]) for row in history
             if "probe_acc" in row and not math.isnan(row["probe_acc"])]
    if probe:
        twin = ax.twinx()
        twin.plot(*zip(*probe, strict=True), color="black", marker="s", lw=1.5, label="linear probe")
        twin.set_ylabel("linear-probe accuracy")
        twin.ticklabel_format(axis="y", useOffset=False)
        twin.legend(loc="upper center", fontsize=11)
    ax.legend(loc="upper right", fontsize=10, ncols=2)
    ax.set_title(title, fontsize=14)
    return save_png(fig, Path(path))
