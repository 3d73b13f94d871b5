"""One figure per benchmark result: the metric curve with seed error bars, learning curves, ROC curves and a
confusion matrix, as panels (a), (b), ... that :func:`figure_caption` describes.

Styles tell the kinds of row apart: trained rows are solid lines with a marker each (offset slightly
along x so that equal curves stay visible), supervised references dash-dotted, baselines grey and
dotted; horizontal lines of equal value are drawn nested (wider first) so that each shows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jetfm.downstream.metrics import bin_sort_key
from jetfm.report.figures import save_png
from jetfm.results import summarise

CURVE_AXES = {  # benchmark → (x field or "bins", x label, log x)
    "jetclass_accuracy": ("n_train", "training jets", True),
    "cwola_sic": ("n_signal", "signal jets injected", False),
    "btag_vertex_ari": ("bins", "true secondary vertices", False),
    "btag_track_id": ("bins", "tracks in the jet", False),
}
METRIC_LABELS = {"accuracy": "accuracy", "adjusted_rand_index": "adjusted Rand index",
                 "balanced_accuracy": "balanced accuracy", "sic_at_rejection": "SIC at 99 % rejection",
                 "mean_w1_over_std": "mean W1 / σ of the jet observables"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
LINESTYLES = ("-", "--", "-.", ":")
TRAINED_COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:cyan", "tab:olive")
SUPERVISED_COLOURS = ("black", "tab:brown", "tab:pink", "darkgoldenrod")
SUPERVISED_LS = "-."
BASELINE_COLOURS = ("0.35", "0.6", "0.2", "0.75")
BASELINE_LS = ":"
KIND_LAYERS = {"trained": (4.4, 2.0), "supervised": (3.0, 20.0), "baseline": (2.4, 30.0)}  # widest, z-order

Panel = Callable[[Any, dict[str, Any]], None]


def _style() -> None:
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.ROOT)


def _groups(result: dict[str, Any]) -> list[dict[str, Any]]:
    return result.get("summary") or summarise(result["rows"])


def _metric(result: dict[str, Any]) -> str:
    return METRIC_LABELS.get(result["metric"], result["metric"])


def row_kind(mode: str) -> str:
    """``baseline``, ``supervised`` (CWoLa's fully supervised references) or ``trained``."""
    return mode if mode in ("baseline", "supervised") else "trained"


def _label(backbone: str, mode: str) -> str:
    kind = row_kind(mode)
    if kind == "baseline":
        return f"{backbone} (baseline)"
    return f"{backbone} · supervised (reference)" if kind == "supervised" else f"{backbone} · {mode}"


def _layer(kind: str, i: int) -> dict[str, float]:
    """Line width and z-order of the ``i``-th line of a kind: each line narrower than the one below it
    (trained rows lowest, then supervised references, baselines on top), so that equal lines all show."""
    widest, base = KIND_LAYERS[kind]
    return {"lw": max(widest - 0.7 * i, 1.0), "zorder": base + i}


def _dodge(x: np.ndarray, i: int, n: int, scale: str) -> np.ndarray:
    """``x`` shifted a little per line (``i`` of ``n``): lines of equal values do not hide each other."""
    shift = i - (n - 1) / 2
    if scale == "log":
        return x * 10 ** (0.02 * shift)
    if scale == "categorical":
        return x + 0.07 * shift
    span = float(np.ptp(x)) if len(x) > 1 and np.ptp(x) > 0 else 1.0
    return x + 0.012 * span * shift


def _no_offset(ax: Any) -> None:
    """Plain tick labels on linear axes: no '+1e0'-style offset that hides the values."""
    from matplotlib.ticker import ScalarFormatter

    for axis in (ax.xaxis, ax.yaxis):
        formatter = axis.get_major_formatter()
        if isinstance(formatter, ScalarFormatter):
            formatter.set_useOffset(False)


def _curve_axis(result: dict[str, Any]) -> tuple[str, str, bool] | None:
    """The curve's x axis: the benchmark's own, or training jets when a sweep has several points."""
    if result["benchmark"] in CURVE_AXES:
        return CURVE_AXES[result["benchmark"]]
    sizes = {r.get("n_train") for r in result["rows"] if r["mode"] != "baseline"}
    return ("n_train", "training jets", True) if len(sizes) > 1 else None


def _series(members: list[dict[str, Any]], field: str, bins: list[str]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, mean and σ of one (backbone, mode): per bin, or per sweep point."""
    if field == "bins":
        s = members[0]
        present = [b for b in bins if b in s["bins_mean"]]
        return (np.array([bins.index(b) for b in present], dtype=float),
                np.array([s["bins_mean"][b] for b in present]),
                np.array([s.get("bins_std", {}).get(b, 0.0) for b in present]))
    members = sorted(members, key=lambda s: s.get(field) or 0)
    x = np.array([s.get(field) or 0 for s in members], dtype=float)
    return x, np.array([s["mean"] for s in members]), np.array([s["std"] for s in members])


def _draw_series(ax: Any, kind: str, i: int, n: int, series: tuple[np.ndarray, np.ndarray, np.ndarray],
                 label: str, scale: str) -> None:
    """One (backbone, mode): a horizontal line when a reference or baseline has a single value, else a
    dodged line with markers and ±1σ error bars."""
    x, y, err = series
    if kind == "baseline":
        colour, ls = BASELINE_COLOURS[i % len(BASELINE_COLOURS)], BASELINE_LS
    elif kind == "supervised":
        colour, ls = SUPERVISED_COLOURS[i % len(SUPERVISED_COLOURS)], SUPERVISED_LS
    else:
        colour, ls = TRAINED_COLOURS[i % len(TRAINED_COLOURS)], "-"
    if kind != "trained" and len(set(x)) <= 1:
        ax.axhline(float(np.mean(y)), color=colour, ls=ls, label=label, **_layer(kind, i))
        return
    x = _dodge(x, i, n, scale)
    marker = {"baseline": "x", "supervised": "*"}.get(kind, MARKERS[i % len(MARKERS)])
    ax.errorbar(x, y, yerr=err if np.any(err > 0) else None, color=colour, ls=ls, marker=marker, ms=8,
                capsize=3, label=label, **_layer(kind, i))


def _point_ticks(ax: Any, points: list[float]) -> None:
    """Ticks at the sweep points, labelled with plain numbers (no 4×10^1 on a log axis)."""
    from matplotlib.ticker import NullLocator

    if points:
        ax.set_xticks(points, [f"{p:g}" for p in points])
        ax.xaxis.set_minor_locator(NullLocator())


def _curve_panel(ax: Any, result: dict[str, Any]) -> None:
    """Mean over seeds with ±1σ error bars per (backbone, mode); references and baselines styled apart."""
    axis = _curve_axis(result)
    assert axis is not None
    field, xlabel, logx = axis
    groups = _groups(result)
    lines: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in groups:
        lines.setdefault((s["backbone"], s["mode"]), []).append(s)
    labels = {b for s in groups for b in s.get("bins_mean", {})} if field == "bins" else set()
    bins = sorted(labels, key=bin_sort_key)
    scale = "categorical" if field == "bins" else "log" if logx else "linear"
    for kind in ("baseline", "supervised", "trained"):
        mine = [(k, m) for k, m in lines.items() if row_kind(k[1]) == kind]
        for i, ((backbone, mode), members) in enumerate(mine):
            _draw_series(ax, kind, i, len(mine), _series(members, field, bins), _label(backbone, mode), scale)
    if logx:
        ax.set_xscale("log")
    if field == "bins":
        ax.set_xticks(range(len(bins)), bins)
    else:
        trained = [s for s in groups if row_kind(s["mode"]) == "trained"]
        _point_ticks(ax, sorted({float(s.get(field) or 0) for s in trained}))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_metric(result))
    _no_offset(ax)
    ax.legend(fontsize=13, loc="best", framealpha=0.8)


def _points_panel(ax: Any, result: dict[str, Any]) -> None:
    """Mean ± σ per (backbone, mode) as points on a categorical axis; references and baselines apart."""
    groups = _groups(result)
    shown = [s for s in groups if row_kind(s["mode"]) != "baseline"]
    for i, s in enumerate(shown):
        kind = row_kind(s["mode"])
        colour = SUPERVISED_COLOURS[0] if kind == "supervised" else TRAINED_COLOURS[i % len(TRAINED_COLOURS)]
        marker = "*" if kind == "supervised" else MARKERS[i % len(MARKERS)]
        ax.errorbar(i, s["mean"], yerr=s["std"], marker=marker, ms=9, capsize=4, ls="none", color=colour,
                    label=_label(s["backbone"], s["mode"]))
    baselines = [s for s in groups if row_kind(s["mode"]) == "baseline"]
    for i, s in enumerate(baselines):
        ax.axhline(s["mean"], color=BASELINE_COLOURS[i % len(BASELINE_COLOURS)], ls=BASELINE_LS,
                   label=_label(s["backbone"], s["mode"]), **_layer("baseline", i))
    ax.set_xticks(range(len(shown)), [_label(s["backbone"], s["mode"]).replace(" · ", "\n") for s in shown],
                  fontsize=12)
    ax.set_xlim(-0.6, max(len(shown), 1) - 0.4)
    ax.set_ylabel(_metric(result))
    _no_offset(ax)
    ax.legend(fontsize=13, framealpha=0.8)


def _representative(rows: list[dict[str, Any]], key: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (backbone, mode) the row with ``key`` at the largest sweep point and the lowest seed."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if key not in r:
            continue
        point = (r.get("n_signal") or 0, r.get("n_train") or 0, -r["seed"])
        k = (r["backbone"], r["mode"])
        if k not in best or point > best[k]["_point"]:
            best[k] = r | {"_point": point}
    return best


def _line_style(i: int, mode: str) -> dict[str, Any]:
    """Colour, line style and width of the ``i``-th curve of a panel: supervised references dash-dotted;
    each curve narrower than the one before, drawn above it, so that equal curves all show."""
    width = {"lw": max(4.6 - 0.6 * i, 1.2), "zorder": 2 + i}
    if row_kind(mode) == "supervised":
        return {"color": SUPERVISED_COLOURS[i % len(SUPERVISED_COLOURS)], "ls": SUPERVISED_LS} | width
    return {"color": TRAINED_COLOURS[i % len(TRAINED_COLOURS)], "ls": LINESTYLES[i % len(LINESTYLES)]} | width


def _learning_panel(ax: Any, result: dict[str, Any]) -> None:
    """Validation loss against step per (backbone, mode) at the largest sweep point (lowest seed), the
    selected step marked, and a run's last step crossed when it stopped at the step maximum."""
    for i, ((backbone, mode), r) in enumerate(_representative(result["rows"], "learning_curve").items()):
        curve = r["learning_curve"]
        style = _line_style(i, mode)
        ax.plot([c["step"] for c in curve], [c["val_loss"] for c in curve], label=_label(backbone, mode),
                marker=MARKERS[i % len(MARKERS)], ms=4, **style)
        best = [c for c in curve if c["step"] == r.get("best_step")]
        if best:
            ax.plot([best[0]["step"]], [best[0]["val_loss"]], "o", ms=10, mfc="none", mew=2,
                    color=style["color"])
        if r.get("stop_reason") == "max_steps":
            ax.plot([curve[-1]["step"]], [curve[-1]["val_loss"]], "x", ms=12, mew=2.5, color=style["color"])
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss")
    _no_offset(ax)
    ax.legend(fontsize=13, framealpha=0.8)


def _roc_panel(ax: Any, result: dict[str, Any]) -> None:
    for i, ((backbone, mode), r) in enumerate(_representative(result["rows"], "roc").items()):
        fpr, tpr = np.array(r["roc"]["fpr"]), np.array(r["roc"]["tpr"])
        keep = fpr > 0
        ax.plot(tpr[keep], 1.0 / fpr[keep], label=_label(backbone, mode), **_line_style(i, mode))
    rows = [r for r in result["rows"] if "roc" in r]
    if rows:
        roc = rows[0]["roc"]
        ax.set_xlabel(f"{roc['signal']} efficiency")
        ax.set_ylabel(f"{roc['background']} rejection")
    ax.set_yscale("log")
    _no_offset(ax)
    ax.legend(fontsize=13, framealpha=0.8)


def _confusion_choice(result: dict[str, Any]) -> tuple[tuple[str, str], dict[str, Any]] | None:
    rows = _representative(result["rows"], "confusion")
    if not rows:
        return None
    key = ([k for k in rows if k[1] == "finetune"] or list(rows))[0]
    return key, rows[key]


def confusion_fractions(counts: Any) -> np.ndarray:
    """Counts [true][predicted] as fractions of each true class (rows sum to one; empty rows zero)."""
    counts = np.asarray(counts, dtype=float)
    return counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)


def _confusion_panel(ax: Any, result: dict[str, Any]) -> None:
    """The row-normalised confusion matrix of one run, each cell annotated in % of its true class."""
    choice = _confusion_choice(result)
    if choice is None:
        ax.set_axis_off()
        return
    _, r = choice
    norm = confusion_fractions(r["confusion"])
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="fraction of true class")
    n = len(norm)
    names = r.get("class_names", [str(i) for i in range(n)])
    many = n > 4
    ax.set_xticks(range(n), names, rotation=45 if many else 0, ha="right" if many else "center", fontsize=16)
    ax.set_yticks(range(n), names, fontsize=16)
    ax.minorticks_off()
    size = 20 if n <= 4 else 16 if n <= 8 else 13
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center", fontsize=size,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")


def _panels(result: dict[str, Any]) -> list[Panel]:
    has_confusion = any("confusion" in r for r in result["rows"]) and result["benchmark"] != "cwola_sic"
    panels: list[Panel] = [_curve_panel if _curve_axis(result) is not None else _points_panel]
    panels += [_learning_panel] if any("learning_curve" in r for r in result["rows"]) else []
    panels += [_roc_panel] if any("roc" in r for r in result["rows"]) else []
    panels += [_confusion_panel] if has_confusion else []
    return panels


def _panel_title(panel: Panel, result: dict[str, Any]) -> str:
    """A short title per panel; :func:`_panel_caption` says the rest."""
    if panel is _confusion_panel:
        choice = _confusion_choice(result)
        assert choice is not None
        (backbone, mode), r = choice
        return f"{backbone} · {mode}, {r.get('n_train')} training jets: % of true class"
    return {_curve_panel: _metric(result), _points_panel: _metric(result),
            _learning_panel: "validation loss (circle: selected step; cross: stopped at step maximum)",
            _roc_panel: "ROC curves"}[panel]


def _panel_caption(panel: Panel, result: dict[str, Any]) -> str:
    metric = _metric(result)
    if panel is _curve_panel:
        axis = _curve_axis(result)
        assert axis is not None
        return (f"{metric} against {axis[1]}: mean over seeds, error bars ±1σ; trained rows solid with "
                "markers (slightly offset along x so that equal curves stay visible), supervised references "
                "dash-dotted, baselines grey dotted")
    if panel is _points_panel:
        return (f"{metric} per backbone and mode, mean ± σ over seeds (stars: supervised references); "
                "baselines as grey dotted lines")
    if panel is _learning_panel:
        return ("validation loss against training step for each backbone and mode at the largest sweep point "
                "(lowest seed); circle: the selected step whose weights scored the test set; cross: the last "
                "step of a run that stopped at its step maximum (not converged)")
    if panel is _roc_panel:
        roc = next(r["roc"] for r in result["rows"] if "roc" in r)
        return (f"ROC curves at the largest sweep point (lowest seed): {roc['background']} rejection against "
                f"{roc['signal']} efficiency")
    choice = _confusion_choice(result)
    assert choice is not None
    (backbone, mode), _ = choice
    return (f"confusion matrix of {backbone} · {mode} at the largest sweep point, normalised by true class: "
            "each row sums to 100 %")


def figure_caption(result: dict[str, Any]) -> str:
    """What the figure of ``result`` shows, panel by panel."""
    if result["benchmark"] == "jet_generation":
        from jetfm.report.generation_plots import generation_caption

        return generation_caption(result)
    parts = [f"({chr(97 + i)}) {_panel_caption(p, result)}" for i, p in enumerate(_panels(result))]
    return f"{result['benchmark']}: " + "; ".join(parts) + "."


def plot_benchmark(result: dict[str, Any], out: Path) -> str:
    """Write one PNG for an aggregated benchmark result; returns its file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benchmark = result["benchmark"]
    if benchmark == "jet_generation":
        from jetfm.report.generation_plots import plot_generation

        return plot_generation(result, out)
    _style()
    panels = _panels(result)
    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(9.5 * ncols, 8 * nrows), squeeze=False)
    for i, (panel, ax) in enumerate(zip(panels, axes.flat, strict=False)):
        panel(ax, result)
        ax.set_title(f"({chr(97 + i)}) {_panel_title(panel, result)}", fontsize=14)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    fig.suptitle(f"{benchmark} ({_metric(result)})", fontsize=18)
    fig.tight_layout()
    return save_png(fig, Path(out))
