"""Headline table of a result file, for the terminal."""

from __future__ import annotations

from typing import Any

from jetfm.downstream.metrics import bin_sort_key
from jetfm.results import summarise


def format_summary(result: dict[str, Any]) -> str:
    """One line per (backbone, mode, sweep point): seeds, mean ± std over seeds, per-bin means."""
    groups = result.get("summary") or summarise(result["rows"])
    bins = sorted({b for r in result["rows"] for b in r.get("bins", {})}, key=bin_sort_key)
    point = "signal" if any(s.get("n_signal") is not None for s in groups) else "n_train"
    header = f"{'backbone':<22} {'mode':<10} {point:>8} {'seeds':>5} {'mean ± std':>17}"
    header += "".join(f" {b:>6}" for b in bins)
    lines = [f"{result['benchmark']} ({result['metric']})", header, "-" * len(header)]
    for s in groups:
        bins_mean = s.get("bins_mean")
        if bins_mean is None:  # summaries written before per-bin statistics existed
            same = [r for r in result["rows"] if (r["backbone"], r["mode"]) == (s["backbone"], s["mode"])]
            bins_mean = summarise(same)[0]["bins_mean"]
        where = s.get("n_signal") if point == "signal" else s.get("n_train")
        value = f"{s['mean']:.4f}" + (f" ± {s['std']:.4f}" if s["n_seeds"] > 1 else "")
        line = f"{s['backbone']:<22} {s['mode']:<10} {'' if where is None else where:>8} {s['n_seeds']:>5} "
        line += f"{value:>17}" + "".join(f" {bins_mean[b]:>6.3f}" if b in bins_mean else f" {'-':>6}"
                                         for b in bins)
        lines.append(line)
    checks = result.get("checks", [])
    failed = [c for c in checks if not c["passed"]]
    if checks:
        lines.append(f"sanity checks: {len(checks) - len(failed)} of {len(checks)} passed")
    lines += [f"  FAILED {c['check']} {c['backbone']}/{c['mode']}: {c['detail']}" for c in failed]
    return "\n".join(lines)
