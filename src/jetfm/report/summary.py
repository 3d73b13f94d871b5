"""Headline table of a result file, for the terminal."""

from __future__ import annotations

from typing import Any

from jetfm.results import summarise


def format_summary(result: dict[str, Any]) -> str:
    rows = result.get("summary") or summarise(result["rows"])
    bins = sorted({b for r in result["rows"] for b in r.get("bins", {})})
    header = f"{'backbone':<24} {'mode':<9} {'seeds':>5} {'mean ± std':>18}"
    header += "".join(f" {('bin ' + b):>9}" for b in bins)
    lines = [f"{result['benchmark']} ({result['metric']})", header, "-" * len(header)]
    for s in rows:
        per_bin = {}
        for r in result["rows"]:
            if (r["backbone"], r["mode"]) == (s["backbone"], s["mode"]):
                for b, v in r.get("bins", {}).items():
                    per_bin.setdefault(b, []).append(v)
        value = f"{s['mean']:.4f}" + (f" ± {s['std']:.4f}" if s["n_seeds"] > 1 else "")
        line = f"{s['backbone']:<24} {s['mode']:<9} {s['n_seeds']:>5} {value:>18}"
        line += "".join(
            f" {sum(per_bin[b]) / len(per_bin[b]):>9.4f}" if b in per_bin else f" {'-':>9}" for b in bins)
        lines.append(line)
    return "\n".join(lines)
