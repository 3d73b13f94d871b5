"""results/report.html: every benchmark table and plot, the other figures and the config, in one file."""

from __future__ import annotations

import base64
import html
import importlib.metadata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from jetfm.config import config_hash
from jetfm.downstream.metrics import bin_sort_key
from jetfm.provenance import atomic_output
from jetfm.report.benchmark_plots import METRIC_LABELS, figure_caption
from jetfm.report.summary import config_scale, reading
from jetfm.results import LOWER_IS_BETTER, group_key, read_result, summarise

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#eee}td:first-child,td:nth-child(2){text-align:left}
img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:1em;font-size:12px;overflow:auto}
figure{margin:1em 0}figcaption{font-size:13px;color:#444;margin-top:4px}
p.warn{background:#fff4e0;border-left:4px solid #e69500;padding:6px 10px}
td.bad{background:#fde8e8}"""

# reference models always known by name (config `references` adds the others)
DEFAULT_REFERENCES = ("part",)
# libraries whose versions the report states from its own environment
REPORT_LIBRARIES = ("jetfm", "weaver-core")
# benchmark → (header over the bin columns, unit of one bin label in the singular and the plural)
BIN_KINDS: dict[str, tuple[str, str, str]] = {
    "btag_vertex_ari": ("{metric} per number of true secondary vertices (SV) in the jet", "SV", "SVs"),
    "btag_track_id": ("{metric} per number of tracks in the jet", "track", "tracks"),
    "jet_generation": ("W1/σ to the reference half, per observable", "", ""),
}
# pre-training, tokenizer and validation figures: file stem → what the figure shows
FIGURE_CAPTIONS = {
    "d0_significance_by_flavour": "Generated b-tagging sample: lifetime-signed track impact-parameter "
                                  "significance d0/σ(d0) per jet flavour (normalised; edge bins hold the "
                                  "overflow).",
    "track_multiplicity_by_flavour": "Generated b-tagging sample: tracks per jet, per jet flavour "
                                     "(normalised).",
    "secondary_vertices_by_flavour": "Generated b-tagging sample: true secondary vertices with a track per "
                                     "jet, per jet flavour (normalised).",
    "b_hadron_decay_length": "Generated events: B-meson proper decay length cτ per species, against the "
                             "exponential of the mean PDG cτ.",
    "delta_pp_mass": "Generated events: Δ++ (id 2224) mass, against the PDG mass 1.232 GeV.",
    "final_state_pz": "Generated events: longitudinal momentum pz of the final-state particles.",
    "boosted_jet_mass_by_class": "Boosted-jet sample: jet mass per JetClass-like class (normalised; dashed: "
                                 "W, Z, H and t masses).",
    "boosted_constituents_by_class": "Boosted-jet sample: constituents per jet, per class (normalised).",
    "boosted_tau21_by_class": "Boosted-jet sample: N-subjettiness ratio τ21 per class (normalised).",
    "boosted_tau32_by_class": "Boosted-jet sample: N-subjettiness ratio τ32 per class (normalised).",
}


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.name)}">'


def _figure(path: Path, caption: str) -> str:
    return f"<figure>{_image(path)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def other_figure_caption(path: Path) -> str:
    """What a pre-training, tokenizer or validation figure shows, from its path."""
    path = Path(path)
    if path.name.endswith(".metrics.png"):
        return (f"Pre-training of backbone {path.name.removesuffix('.metrics.png')}: training (thin) and "
                "validation (dashed, dots) loss per task against step, and linear-probe accuracy "
                "(right axis).")
    if path.parent.name == "tokenizers":
        return (f"Tokenizer {path.stem}: code usage (codes sorted by frequency) and, per constituent "
                "feature, the reconstructed − original residual in preprocessed units on held-out "
                "constituents.")
    if path.stem in FIGURE_CAPTIONS:
        return FIGURE_CAPTIONS[path.stem]
    return f"{path.stem.replace('_', ' ')} ({path.name})."


def _fmt(mean: float, std: float, n: int) -> str:
    return f"{mean:.4f}" + (f" ± {std:.4f}" if n > 1 else "")


def _point(s: dict[str, Any]) -> str:
    """A sweep point in words: CWoLa's signal jets injected, every other benchmark's training jets."""
    if s.get("n_signal") is not None:
        return f"{s['n_signal']} signal jets"
    if s["mode"] == "baseline" or s.get("n_train") is None:
        return "–"
    return f"{s['n_train']} training jets"


def _cells(cells: Iterable[str], bad: Sequence[bool] = ()) -> str:
    flags = list(bad)
    return "<tr>" + "".join(
        f"<td{' class=bad' if i < len(flags) and flags[i] else ''}>{html.escape(c)}</td>"
        for i, c in enumerate(cells)) + "</tr>"


def reference_names(config: dict[str, Any]) -> set[str]:
    """Reference models (ParT): the config's ``references`` and the default names."""
    return {*(config.get("references") or {}), *DEFAULT_REFERENCES}


def _groups(result: dict[str, Any]) -> list[dict[str, Any]]:
    return result.get("summary") or summarise(result["rows"])


def _runs(result: dict[str, Any], s: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of one summary group, by seed."""
    return sorted((r for r in result["rows"] if group_key(r) == group_key(s)), key=lambda r: r["seed"])


def _failed_pairs(result: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["backbone"], c["mode"]) for c in result.get("checks", []) if not c["passed"]}


def _status(result: dict[str, Any], s: dict[str, Any]) -> str:
    """Whether a summary group converged: every seed stopped on its patience and no check fails."""
    runs = [r for r in _runs(result, s) if r.get("stop_reason")]
    if s["mode"] == "baseline" or not runs:
        return "–"
    at_max = sum(r["stop_reason"] == "max_steps" for r in runs)
    if at_max:
        return f"no: {at_max} of {len(runs)} at step maximum"
    if (s["backbone"], s["mode"]) in _failed_pairs(result):
        return "no: sanity check fails"
    return "yes"


def bin_headers(result: dict[str, Any], bins: Sequence[str]) -> tuple[str, list[str]]:
    """A header over the bin columns saying what a bin is, and one per bin label (e.g. ``3+ SVs``)."""
    what, one, many = BIN_KINDS.get(result["benchmark"], ("{metric} per bin", "", ""))
    what = what.format(metric=METRIC_LABELS.get(result["metric"], result["metric"]))
    return f"{what} (mean over seeds)", [f"{b} {one if b == '1' else many}".strip() for b in bins]


def _summary_table(result: dict[str, Any]) -> str:
    groups = _groups(result)
    bins = sorted({b for s in groups for b in s.get("bins_mean", {})}, key=bin_sort_key)
    fixed = ["backbone", "mode", "sweep point", "seeds", "mean ± std", "converged"]
    head = "".join(f"<th rowspan={2 if bins else 1}>{html.escape(h)}</th>" for h in fixed)
    sub = ""
    if bins:
        what, heads = bin_headers(result, bins)
        head += f"<th colspan={len(bins)}>{html.escape(what)}</th>"
        sub = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in heads) + "</tr>"
    body = []
    for s in groups:
        status = _status(result, s)
        cells = [s["backbone"], s["mode"], _point(s), str(s["n_seeds"]),
                 _fmt(s["mean"], s["std"], s["n_seeds"]), status]
        cells += [f"{s['bins_mean'][b]:.3f}" if b in s.get("bins_mean", {}) else "–" for b in bins]
        body.append(_cells(cells, [False] * 5 + [status.startswith("no")]))
    return f"<table><tr>{head}</tr>{sub}{''.join(body)}</table>"


def _convergence_table(result: dict[str, Any]) -> str:
    """Per trained group: how its runs stopped (on their patience or at the step maximum), best and
    last steps per seed."""
    body = []
    for s in _groups(result):
        runs = [r for r in _runs(result, s) if r.get("stop_reason")]
        if not runs:
            continue
        at_max = [str(r["seed"]) for r in runs if r["stop_reason"] == "max_steps"]
        on_patience = [str(r["seed"]) for r in runs if r["stop_reason"] == "patience"]
        cells = [s["backbone"], s["mode"], _point(s), ", ".join(on_patience) or "–", ", ".join(at_max) or "–",
                 " / ".join(str(r.get("best_step", "–")) for r in runs),
                 " / ".join(str(r.get("stopped_step", "–")) for r in runs)]
        body.append(_cells(cells, [False] * 4 + [bool(at_max)]))
    if not body:
        return ""
    heads = ["backbone", "mode", "sweep point", "seeds stopped on patience (converged)",
             "seeds stopped at step maximum (not converged)", "best step per seed", "last step per seed"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    table = f"<table><tr>{head}</tr>{''.join(body)}</table>"
    return f"<details open><summary>Convergence: how each run stopped</summary>{table}</details>"


TINY_SCALE_NOTE = (" This report is at the tiny test scale, whose runs are far too short to converge: rows "
                   "at or near the baselines here are expected and do not mean a broken install.")


def _unconverged(result: dict[str, Any]) -> tuple[int, int, int]:
    """Runs that stopped at their step maximum, runs with a stop reason, failed sanity checks."""
    runs = [r for r in result["rows"] if r.get("stop_reason")]
    at_max = sum(r["stop_reason"] == "max_steps" for r in runs)
    return at_max, len(runs), sum(not c["passed"] for c in result.get("checks", []))


def _convergence_note(result: dict[str, Any], scale: str) -> str:
    """A warning when runs stopped at their step maximum or sanity checks fail: such rows are not
    converged results."""
    at_max, n_runs, failed = _unconverged(result)
    if not at_max and not failed:
        return ""
    why = []
    if at_max:
        why.append(f"{at_max} of {n_runs} runs stopped at their step maximum instead of on their patience")
    if failed:
        why.append(f"{failed} sanity check{'s' if failed > 1 else ''} fail")
    text = (f"Not converged: {' and '.join(why)}. Rows marked “no” in the converged column are not converged "
            "results: read them as unfinished training, not as what the model reaches.")
    if scale == "tiny":
        text += TINY_SCALE_NOTE
    else:
        text += " Raise the benchmark's steps (or its patience) before quoting these rows."
    return f"<p class=warn>{html.escape(text)}</p>"


def _checks(result: dict[str, Any]) -> str:
    """The sanity checks of a benchmark file: a count, and every failure spelled out."""
    checks = result.get("checks", [])
    if not checks:
        return ""
    failed = [c for c in checks if not c["passed"]]
    items = "".join(f"<li><b>FAILED</b> {html.escape(c['check'])} {html.escape(c['backbone'])} · "
                    f"{html.escape(c['mode'])}: {html.escape(c['detail'])}</li>" for c in failed)
    where = " (docs/stages/downstream.md)" if failed else ""
    text = f"<p>Sanity checks: {len(checks) - len(failed)} of {len(checks)} passed{where}.</p>"
    return text + (f"<ul>{items}</ul>" if items else "")


def _best(groups: Sequence[dict[str, Any]], sign: float) -> dict[str, Any] | None:
    """The group at the largest sweep point with the best mean."""
    def key(s: dict[str, Any]) -> tuple[float, float, float]:
        return (s.get("n_signal") or 0, s.get("n_train") or 0, sign * s["mean"])

    return max(groups, key=key, default=None)


def _reference_cell(groups: Sequence[dict[str, Any]], best: dict[str, Any], references: set[str],
                    sign: float) -> str:
    """Each reference model in the best backbone's mode (else from scratch), at its point if it has it."""
    out = []
    for name in sorted({s["backbone"] for s in groups} & references):
        own = [s for s in groups if s["backbone"] == name]
        same_mode = ([s for s in own if s["mode"] == best["mode"]]
                     or [s for s in own if s["mode"] == "scratch"])
        if not same_mode:
            continue
        at_point = [s for s in same_mode if (s.get("n_train"), s.get("n_signal"))
                    == (best.get("n_train"), best.get("n_signal"))]
        ref = _best(at_point or same_mode, sign)
        assert ref is not None
        where = "" if at_point else f", {_point(ref)}"
        out.append(f"{name} · {ref['mode']}{where}: {_fmt(ref['mean'], ref['std'], ref['n_seeds'])}")
    return "; ".join(out) or "–"


def _headline_rows(result: dict[str, Any], references: set[str]) -> list[str]:
    groups = [s for s in _groups(result) if s["mode"] != "baseline"]
    sign = -1.0 if result["metric"] in LOWER_IS_BETTER else 1.0
    rows = []
    for mode in dict.fromkeys(s["mode"] for s in groups):
        best = _best([s for s in groups if s["mode"] == mode and s["backbone"] not in references], sign)
        if best is None:
            continue
        status = _status(result, best)
        cells = [result["benchmark"], mode, best["backbone"], _point(best), _fmt(best["mean"], best["std"],
                 best["n_seeds"]), status, _reference_cell(groups, best, references, sign)]
        rows.append(_cells(cells, [False] * 5 + [status.startswith("no")]))
    return rows


def _headline_note(results: list[dict[str, Any]], scale: str) -> str:
    """Which benchmarks hold rows that are not converged."""
    names = []
    for result in results:
        at_max, _, failed = _unconverged(result)
        if at_max or failed:
            names.append(result["benchmark"])
    if not names:
        return ""
    text = ("Not converged rows (runs at their step maximum or failed sanity checks) in: "
            f"{', '.join(names)}; rows marked “no” are not converged results.")
    text += TINY_SCALE_NOTE if scale == "tiny" else ""
    return f"<p class=warn>{html.escape(text)}</p>"


def _headline(results: list[dict[str, Any]], references: set[str]) -> str:
    """Per benchmark and mode, the best backbone (reference models excluded) at the largest sweep point
    (lowest distance for jet generation), and beside it each reference model."""
    rows = [row for result in results for row in _headline_rows(result, references)]
    heads = ["benchmark", "mode", "best backbone", "sweep point", "mean ± std", "converged",
             "reference model (same point)"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    note = ("<p>Best backbone: among the pre-trained backbones only; the reference models "
            f"({html.escape(', '.join(sorted(references)))}) are shown beside it, not ranked with them.</p>")
    return f"{note}<table><tr>{head}</tr>{''.join(rows)}</table>"


def report_libraries(libraries: dict[str, str]) -> dict[str, str]:
    """The results' library versions and the report's own jetfm and weaver-core."""
    out = dict(libraries)
    for name in REPORT_LIBRARIES:
        try:
            out.setdefault(name, importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            out.setdefault(name, "not installed")
    return out


def _benchmark_section(result: dict[str, Any], plot: Path | None, scale: str) -> list[str]:
    name = result["benchmark"]
    tier = config_scale(result) or scale
    lines = reading(result)
    what = ("<p><b>What the numbers say</b> (per sweep point, best first):</p><ul>"
            + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>") if lines else ""
    parts = [f"<h2 id='{html.escape(name)}'>{html.escape(name)} "
             f"<small>({html.escape(result['metric'])}; tier: {html.escape(tier)})</small></h2>",
             _convergence_note(result, scale), what, _summary_table(result), _checks(result),
             _convergence_table(result)]
    if plot is not None:
        parts.append(_figure(plot, figure_caption(result)))
    return parts


def build_report(results: list[Path], plots: list[Path], figures: list[Path], config: dict[str, Any],
                 out: Path) -> None:
    """Write the self-contained HTML report. Missing results or plots are errors; missing
    extra figures are skipped."""
    for path in [*results, *plots]:
        if not Path(path).exists():
            raise FileNotFoundError(f"report input not found: {path}")
    loaded = [read_result(p) for p in results]
    plot_for = {Path(p).stem: Path(p) for p in plots}
    scale = str(config.get("scale", ""))
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>jetfm report</title>",
             f"<style>{STYLE}</style></head><body><h1>jetfm report</h1>",
             f"<p>config hash <code>{config_hash(config)}</code>, "
             f"scale <code>{html.escape(scale)}</code></p>",
             "<h2>Headline</h2>", _headline(loaded, reference_names(config)), _headline_note(loaded, scale)]
    libraries: dict[str, str] = {}
    for result in loaded:
        parts += _benchmark_section(result, plot_for.get(result["benchmark"]), scale)
        libraries.update(result.get("libraries", {}))
    present = [Path(f) for f in figures if Path(f).exists()]
    if present:
        parts.append("<h2>Other figures</h2>")
        parts += [_figure(f, other_figure_caption(f)) for f in present]
    parts.append("<h2>Configuration</h2>")
    parts.append(f"<pre>{html.escape(yaml.safe_dump(config, sort_keys=False))}</pre>")
    parts.append("<h2>Libraries</h2><table>" + "".join(
        _cells([k, str(v)]) for k, v in sorted(report_libraries(libraries).items())) + "</table>")
    parts.append("</body></html>")
    with atomic_output(out) as tmp:
        tmp.write_text("\n".join(p for p in parts if p))
