"""The jet_generation figure: each observable's distribution for true, reconstructed and generated
jets, with the ratio to the reference half below it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jetfm.jet_generation.observables import OBSERVABLE_LABELS, OBSERVABLES
from jetfm.report.figures import save_png

LOG_Y = ("constituent_pt", "jet_mass", "d2")


def _curves(result: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, float]]]:
    """(label, histograms, W1/σ per observable) per curve: the second true half, each backbone's
    reconstruction and its generated jets (histograms and distances averaged over seeds)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in result["rows"]:
        groups.setdefault((row["backbone"], row["mode"]), []).append(row)
    order = {"baseline": 0, "reconstructed": 1, "generated": 2}
    curves = []
    for (backbone, mode), rows in sorted(groups.items(), key=lambda kv: (order.get(kv[0][1], 3), kv[0][0])):
        hist = {k: np.mean([r["hist"][k] for r in rows], axis=0) for k in rows[0]["hist"]}
        w1 = {k: float(np.mean([r["bins"][k] for r in rows])) for k in rows[0]["bins"]}
        label = {"baseline": "second true half (floor)",
                 "reconstructed": f"{backbone} tokenizer reconstruction (ceiling)"}.get(
            mode, f"{backbone} generated ({len(rows)} seed{'s' if len(rows) > 1 else ''})")
        curves.append((label, hist, w1))
    return curves


def generation_caption(result: dict[str, Any]) -> str:
    """What the jet_generation figure shows."""
    n_ref = result["rows"][0].get("n_reference") if result["rows"] else None
    curves = "; ".join(label for label, _, _ in _curves(result))
    return (f"jet_generation: normalised distribution of each jet and constituent observable for the true "
            f"jets of reference half A ({n_ref} jets, grey fill) and for each candidate ({curves}), with the "
            "candidate / reference ratio below each panel; the number in each panel is the candidate's "
            "W1 distance to the reference divided by the reference's standard deviation (the headline is its "
            "mean over the six jet observables; the second true half is the floor, the tokenizer "
            "reconstruction the ceiling).")


def plot_generation(result: dict[str, Any], out: Path) -> str:
    """A 3 × 3 grid of observables, each a density panel over a ratio-to-reference panel; one legend
    for the figure, and in each panel every curve's W1/σ in its colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import NullFormatter

    plt.style.use(mplhep.style.ROOT)
    reference_row = result["rows"][0]  # every row shares the reference half's edges and counts
    curves = _curves(result)
    colours = ["black", "tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange"]
    styles = ["--" if label.startswith("second") else "-" for label, _, _ in curves]
    fig = plt.figure(figsize=(21, 20))
    grid = fig.add_gridspec(3, 3, hspace=0.28, wspace=0.25)
    for i, name in enumerate(OBSERVABLES):
        cell = grid[divmod(i, 3)].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.05)
        ax = fig.add_subplot(cell[0])
        ratio_ax = fig.add_subplot(cell[1], sharex=ax)
        edges = np.asarray(reference_row["edges"][name])
        widths = np.diff(edges)
        reference = np.asarray(reference_row["reference_hist"][name], dtype=float)
        ref_density = reference / max(reference.sum(), 1) / widths
        ax.stairs(ref_density, edges, fill=True, color="0.85")
        for k, ((_, hist, w1), colour, style) in enumerate(zip(curves, colours, styles, strict=False)):
            counts = np.asarray(hist[name], dtype=float)
            density = counts / max(counts.sum(), 1) / widths
            ax.stairs(density, edges, color=colour, ls=style, lw=1.8)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio_ax.stairs(np.where(ref_density > 0, density / ref_density, np.nan), edges, color=colour,
                                ls=style, lw=1.5)
            ax.text(0.97, 0.95 - 0.075 * k, f"W1/σ {w1[name]:.3f}", color=colour, fontsize=12,
                    ha="right", va="top", transform=ax.transAxes)
        if name in LOG_Y:
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(top=ax.get_ylim()[1] * (8 if name in LOG_Y else 1.35))  # room for the W1/σ column
        ax.set_ylabel("density", fontsize=13)
        ax.tick_params(labelbottom=False, labelsize=11)
        ratio_ax.axhline(1.0, color="0.5", lw=1)
        ratio_ax.set_ylim(0.5, 1.5)
        ratio_ax.set_ylabel("ratio", fontsize=12)
        ratio_ax.set_xlabel(OBSERVABLE_LABELS[name], fontsize=14)
        ratio_ax.tick_params(labelsize=11)
        ratio_ax.ticklabel_format(axis="both", useOffset=False)
        if name not in LOG_Y:
            ax.ticklabel_format(axis="y", useOffset=False)
    handles = [Patch(color="0.85", label="true jets (reference half A)")]
    handles += [Line2D([], [], color=c, ls=st, lw=2, label=label)
                for (label, _, _), c, st in zip(curves, colours, styles, strict=False)]
    fig.legend(handles=handles, loc="upper center", ncol=min(4, len(handles)), fontsize=14, frameon=False,
               bbox_to_anchor=(0.5, 0.925))
    n_ref = reference_row.get("n_reference")
    fig.suptitle(f"jet_generation: distributions against {n_ref} held-out true jets; ratios to A below "
                 f"(headline: mean W1/σ over the six jet observables)", fontsize=17, y=0.95)
    return save_png(fig, Path(out))
