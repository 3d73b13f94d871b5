"""results/report.html: every benchmark table and plot, the other figures and the config, in one file."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import yaml

from jetfm.config import config_hash
from jetfm.downstream.metrics import bin_sort_key
from jetfm.provenance import atomic_output
from jetfm.results import LOWER_IS_BETTER, read_result, summarise

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#eee}td:first-child,td:nth-child(2){text-align:left}
img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:1em;font-size:12px;overflow:auto}
figure{margin:1em 0}figcaption{font-size:12px;color:#555}"""


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.name)}">'


def _fmt(mean: float, std: float, n: int) -> str:
    return f"{mean:.4f}" + (f" ± {std:.4f}" if n > 1 else "")


def _point(s: dict[str, Any]) -> str:
    if s.get("n_signal") is not None:
        return f"{s['n_signal']} signal"
    return "" if s.get("n_train") is None else str(s["n_train"])


def _summary_table(result: dict[str, Any]) -> str:
    groups = result.get("summary") or summarise(result["rows"])
    bins = sorted({b for s in groups for b in s.get("bins_mean", {})}, key=bin_sort_key)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in
                   ["backbone", "mode", "training jets / point", "seeds", "mean ± std", *bins])
    body = []
    for s in groups:
        cells = [s["backbone"], s["mode"], _point(s), str(s["n_seeds"]),
                 _fmt(s["mean"], s["std"], s["n_seeds"])]
        cells += [f"{s['bins_mean'][b]:.3f}" if b in s.get("bins_mean", {}) else "–" for b in bins]
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


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


def _headline(results: list[dict[str, Any]]) -> str:
    """Per benchmark and mode, the best backbone at the largest sweep point (lowest distance for
    jet generation)."""
    rows = []
    for result in results:
        groups = [s for s in (result.get("summary") or summarise(result["rows"])) if s["mode"] != "baseline"]
        sign = -1.0 if result["metric"] in LOWER_IS_BETTER else 1.0
        best: dict[str, dict[str, Any]] = {}
        for s in groups:
            key = (s.get("n_signal") or 0, s.get("n_train") or 0, sign * s["mean"])
            if s["mode"] not in best or key > best[s["mode"]]["_key"]:
                best[s["mode"]] = s | {"_key": key}
        for mode, s in best.items():
            cells = [result["benchmark"], mode, s["backbone"], _point(s),
                     _fmt(s["mean"], s["std"], s["n_seeds"])]
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ["benchmark", "mode", "best backbone", "point", "mean ± std"])
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def build_report(results: list[Path], plots: list[Path], figures: list[Path], config: dict[str, Any],
                 out: Path) -> None:
    """Write the self-contained HTML report. Missing results or plots are errors; missing
    extra figures are skipped."""
    for path in [*results, *plots]:
        if not Path(path).exists():
            raise FileNotFoundError(f"report input not found: {path}")
    loaded = [read_result(p) for p in results]
    plot_for = {Path(p).stem: Path(p) for p in plots}
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>jetfm report</title>",
             f"<style>{STYLE}</style></head><body><h1>jetfm report</h1>",
             f"<p>config hash <code>{config_hash(config)}</code>, scale "
             f"<code>{html.escape(str(config.get('scale', '')))}</code></p>",
             "<h2>Headline</h2>", _headline(loaded)]
    libraries: dict[str, str] = {}
    for result in loaded:
        name = result["benchmark"]
        parts.append(f"<h2 id='{html.escape(name)}'>{html.escape(name)} "
                     f"<small>({html.escape(result['metric'])})</small></h2>")
        parts.append(_summary_table(result))
        parts.append(_checks(result))
        if name in plot_for:
            parts.append(f"<figure>{_image(plot_for[name])}</figure>")
        libraries.update(result.get("libraries", {}))
    present = [Path(f) for f in figures if Path(f).exists()]
    if present:
        parts.append("<h2>Other figures</h2>")
        parts += [f"<figure>{_image(f)}<figcaption>{html.escape(str(f))}</figcaption></figure>"
                  for f in present]
    parts.append("<h2>Configuration</h2>")
    parts.append(f"<pre>{html.escape(yaml.safe_dump(config, sort_keys=False))}</pre>")
    if libraries:
        parts.append("<h2>Libraries</h2><table>" + "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in sorted(libraries.items())) + "</table>")
    parts.append("</body></html>")
    with atomic_output(out) as tmp:
        tmp.write_text("\n".join(parts))
