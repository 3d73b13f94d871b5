"""One figure per benchmark result: the metric curve with seed bands, ROC curves, a confusion matrix."""

from __future__ import annotations

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


def _style() -> None:
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.ROOT)


def _groups(result: dict[str, Any]) -> list[dict[str, Any]]:
    return result.get("summary") or summarise(result["rows"])


def _label(s: dict[str, Any]) -> str:
    return s["backbone"] if s["mode"] == "baseline" else f"{s['backbone']} · {s['mode']}"


def _curve_axis(result: dict[str, Any]) -> tuple[str, str, bool] | None:
    """The curve's x axis: the benchmark's own, or training jets when a sweep has several points."""
    if result["benchmark"] in CURVE_AXES:
        return CURVE_AXES[result["benchmark"]]
    sizes = {r.get("n_train") for r in result["rows"] if r["mode"] != "baseline"}
    return ("n_train", "training jets", True) if len(sizes) > 1 else None


def _curve_panel(ax: Any, result: dict[str, Any]) -> None:
    """Mean over seeds with a ±1σ band per (backbone, mode); baselines as dashed lines."""
    axis = _curve_axis(result)
    assert axis is not None
    field, xlabel, logx = axis
    groups = _groups(result)
    lines: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in groups:
        lines.setdefault((s["backbone"], s["mode"]), []).append(s)
    labels = {b for s in groups for b in s.get("bins_mean", {})} if field == "bins" else set()
    bins = sorted(labels, key=bin_sort_key)
    for (_, mode), members in lines.items():
        if field == "bins":
            s = members[0]
            x = np.array([i for i, b in enumerate(bins) if b in s["bins_mean"]], dtype=float)
            y = np.array([s["bins_mean"][b] for b in bins if b in s["bins_mean"]])
            err = np.array([s["bins_std"].get(b, 0.0) for b in bins if b in s["bins_mean"]])
        else:
            members = sorted(members, key=lambda s: s.get(field) or 0)
            x = np.array([s.get(field) or 0 for s in members], dtype=float)
            y = np.array([s["mean"] for s in members])
            err = np.array([s["std"] for s in members])
        if mode == "baseline" and field == "bins":
            ax.plot(x, y, ls="--", marker="_", color="grey", label=_label(members[0]))
            continue
        if mode == "baseline" or (len(set(x)) == 1 and mode == "supervised"):
            ax.axhline(float(np.mean(y)), ls="--", lw=1.5, color="grey" if mode == "baseline" else "black",
                       label=_label(members[0]))
            continue
        line, = ax.plot(x, y, marker="o", label=_label(members[0]))
        if np.any(err > 0):
            ax.fill_between(x, y - err, y + err, color=line.get_color(), alpha=0.2)
    if field == "bins":
        ax.set_xticks(range(len(bins)), bins)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(METRIC_LABELS.get(result["metric"], result["metric"]))
    ax.legend(fontsize=10, loc="best")


def _points_panel(ax: Any, result: dict[str, Any]) -> None:
    """Mean ± σ per (backbone, mode) as points on a categorical axis; baselines dashed."""
    trained = [s for s in _groups(result) if s["mode"] != "baseline"]
    for i, s in enumerate(trained):
        ax.errorbar(i, s["mean"], yerr=s["std"], marker="o", capsize=4, ls="none")
    for s in _groups(result):
        if s["mode"] == "baseline":
            ax.axhline(s["mean"], ls="--", color="grey", label=s["backbone"])
    ax.set_xticks(range(len(trained)), [_label(s).replace(" · ", "\n") for s in trained], fontsize=10)
    ax.set_ylabel(METRIC_LABELS.get(result["metric"], result["metric"]))
    if any(s["mode"] == "baseline" for s in _groups(result)):
        ax.legend(fontsize=10)


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


def _learning_panel(ax: Any, result: dict[str, Any]) -> None:
    """Validation loss against step per (backbone, mode) at the largest sweep point (lowest seed),
    the selected step marked: a curve still falling at its end has not converged."""
    for (backbone, mode), r in _representative(result["rows"], "learning_curve").items():
        curve = r["learning_curve"]
        steps = [c["step"] for c in curve]
        line, = ax.plot(steps, [c["val_loss"] for c in curve], label=f"{backbone} · {mode}")
        best = next(c for c in curve if c["step"] == r["best_step"]) if any(
            c["step"] == r["best_step"] for c in curve) else None
        if best is not None:
            ax.plot([best["step"]], [best["val_loss"]], "o", color=line.get_color())
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss")
    ax.set_title("learning curves (dots: selected step)", fontsize=11)
    ax.legend(fontsize=9)


def _roc_panel(ax: Any, result: dict[str, Any]) -> None:
    for (backbone, mode), r in _representative(result["rows"], "roc").items():
        fpr, tpr = np.array(r["roc"]["fpr"]), np.array(r["roc"]["tpr"])
        keep = fpr > 0
        ax.plot(tpr[keep], 1.0 / fpr[keep], label=f"{backbone} · {mode}")
    rows = [r for r in result["rows"] if "roc" in r]
    if rows:
        roc = rows[0]["roc"]
        ax.set_xlabel(f"{roc['signal']} efficiency")
        ax.set_ylabel(f"{roc['background']} rejection")
    ax.set_yscale("log")
    ax.legend(fontsize=10)


def _confusion_panel(ax: Any, result: dict[str, Any]) -> None:
    rows = _representative(result["rows"], "confusion")
    if not rows:
        ax.set_axis_off()
        return
    preferred = [k for k in rows if k[1] == "finetune"] or list(rows)
    key = preferred[0]
    r = rows[key]
    counts = np.array(r["confusion"], dtype=float)
    norm = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    names = r.get("class_names", [str(i) for i in range(len(norm))])
    ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 4 else 0, fontsize=10)
    ax.set_yticks(range(len(names)), names, fontsize=10)
    if len(names) <= 10:
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{key[0]} · {key[1]}, n_train {r.get('n_train')}", fontsize=11)


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
    has_roc = any("roc" in r for r in result["rows"])
    has_confusion = any("confusion" in r for r in result["rows"]) and benchmark != "cwola_sic"
    panels = [_curve_panel if _curve_axis(result) is not None else _points_panel]
    panels += [_learning_panel] if any("learning_curve" in r for r in result["rows"]) else []
    panels += [_roc_panel] if has_roc else []
    panels += [_confusion_panel] if has_confusion else []
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 6.5), squeeze=False)
    for panel, ax in zip(panels, axes[0], strict=True):
        panel(ax, result)
    fig.suptitle(f"{benchmark} ({METRIC_LABELS.get(result['metric'], result['metric'])})", fontsize=16)
    fig.tight_layout()
    return save_png(fig, Path(out))
