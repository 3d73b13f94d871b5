"""Headline table of a result file, for the terminal."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from jetfm.downstream.metrics import bin_sort_key
from jetfm.results import group_key, group_rows, summarise

# how a trained run stopped (row field ``stop_reason``): on its patience is converged; at the step
# maximum (``max_steps``) or at the time limit (``max_seconds``) it is not
CONVERGED = "patience"


def seed_ranges(seeds: Sequence[int]) -> str:
    """Seeds as a compact list of ranges: ``[0, 1, 2, 5]`` → ``0-2,5``."""
    parts: list[str] = []
    ordered = sorted(set(seeds))
    start: int | None = None
    prev: int | None = None
    for seed in [*ordered, None]:
        if seed is not None and prev is not None and seed == prev + 1:
            prev = seed
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = seed
    return ",".join(parts)


def config_scale(result: dict[str, Any]) -> str | None:
    """The config scale (``scale`` of the config: tiny, demo, ...) a result records, if any."""
    provenance = result.get("provenance") or {}
    for where in (result, provenance, provenance.get("config") or {}):
        if isinstance(where, dict) and where.get("scale"):
            return str(where["scale"])
    return None


def _convergence(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """How the trained runs of a group stopped; None for a group without trained runs (baselines,
    jet generation)."""
    trained = [r for r in runs if r.get("stop_reason")]
    if not trained:
        return None
    best = [r["best_step"] for r in trained if r.get("best_step") is not None]
    return {
        "patience": sum(r["stop_reason"] == CONVERGED for r in trained),
        "max_steps": sum(r["stop_reason"] == "max_steps" for r in trained),
        "max_seconds": sum(r["stop_reason"] == "max_seconds" for r in trained),
        "best_step": sum(best) / len(best) if best else None,
        "not_converged": [r["seed"] for r in trained if r["stop_reason"] != CONVERGED],
    }


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> list[str]:
    """Columns as wide as their widest cell (header included): the first ``left`` columns
    left-aligned, the others right-aligned, so that every line of a table has the same column
    positions whatever the labels and values."""
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return " ".join(c.ljust(w) if i < left else c.rjust(w)
                        for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    width = sum(widths) + len(widths) - 1
    return [line(header), "-" * width, *(line(r) for r in rows)]


def format_summary(result: dict[str, Any]) -> str:
    """One line per (backbone, mode, sweep point): the seeds, mean ± std over seeds, how the seeds'
    training stopped (on patience or at the step maximum) with their mean best step, and per-bin
    means; a warning line when any run stopped before it converged."""
    rows = result["rows"]
    groups = result.get("summary") or summarise(rows)
    by_group = group_rows(rows)
    bins = sorted({b for r in rows for b in r.get("bins", {})}, key=bin_sort_key)
    point = "signal" if any(s.get("n_signal") is not None for s in groups) else "n_train"
    stops = [_convergence(by_group.get(group_key(s), [])) for s in groups]
    trained = sum(stop is not None for stop in stops)
    # how runs stopped: columns only where something was trained (not for jet_generation)
    stop_columns = ["patience", "max_steps"] if trained else []
    if any(stop and stop["max_seconds"] for stop in stops):
        stop_columns.append("max_seconds")
    header = ["backbone", "mode", point, "n", "seeds", "mean ± std", *stop_columns,
              *(["best step"] if trained else []), *bins]
    table: list[list[str]] = []
    flagged: list[str] = []
    for s, stop in zip(groups, stops, strict=True):
        runs = by_group.get(group_key(s), [])
        bins_mean = s.get("bins_mean")
        if bins_mean is None:  # summaries written before per-bin statistics existed
            bins_mean = summarise(runs)[0]["bins_mean"] if runs else {}
        where = s.get("n_signal") if point == "signal" else s.get("n_train")
        value = f"{s['mean']:.4f}" + (f" ± {s['std']:.4f}" if s["n_seeds"] > 1 else "")
        if stop is None:
            stopped = ["-"] * (len(stop_columns) + 1) if trained else []
        else:
            best = "-" if stop["best_step"] is None else f"{stop['best_step']:.0f}"
            stopped = [*(str(stop[c]) for c in stop_columns), best]
            if stop["not_converged"]:
                at = "" if where is None else f" {point} {where}"
                late = seed_ranges(stop["not_converged"])
                flagged.append(f"{s['backbone']}/{s['mode']}{at} (seeds {late})")
        seeds = seed_ranges([r["seed"] for r in runs]) if runs else "?"
        table.append([s["backbone"], s["mode"], "" if where is None else str(where), str(s["n_seeds"]), seeds,
                      value, *stopped, *(f"{bins_mean[b]:.3f}" if b in bins_mean else "-" for b in bins)])
    scale = config_scale(result)
    tier = f", tier: {scale}" if scale else ""
    lines = [f"{result['benchmark']} ({result['metric']}{tier})", *_table(header, table, left=2)]
    if trained:
        limits = "step maximum" + (" / time limit" if "max_seconds" in stop_columns else "")
        lines.append(f"{' / '.join(stop_columns)}: seeds that stopped on their patience (converged) / "
                     f"at their {limits} (not converged); best step: their mean")
    if flagged:
        lines.append(_not_converged(result, flagged, trained))
    lines += [f"reading: {line}" for line in reading(result)]
    checks = result.get("checks", [])
    failed = [c for c in checks if not c["passed"]]
    if checks:
        lines.append(f"sanity checks: {len(checks) - len(failed)} of {len(checks)} passed")
    lines += [f"  FAILED {c['check']} {c['backbone']}/{c['mode']}: {c['detail']}" for c in failed]
    return "\n".join(lines)


def _not_converged(result: dict[str, Any], flagged: Sequence[str], trained: int) -> str:
    """The warning line: which rows hold runs that stopped before converging, and whether that is
    expected (the tiny test scale) or a reason to train longer."""
    scale = config_scale(result)
    steps = f"downstream.{result['benchmark']}.steps"
    why = ("expected at the tiny test scale" if scale == "tiny"
           else f"config scale {scale}: raise {steps}" if scale
           else f"expected at a test scale, else raise {steps}")
    which = ("every trained row" if len(flagged) == trained
             else f"{len(flagged)} of {trained} trained rows: " + ", ".join(flagged))
    return (f"NOT CONVERGED ({why}): runs stopped at their step maximum, not on their patience, in {which}; "
            "their numbers are not converged results")


def reading(result: dict[str, Any]) -> list[str]:
    """What the numbers say, one line per sweep point: the trained rows from best to worst, each
    pair joined by ``>`` when they are further apart than the seed spread and by ``≈`` when not.
    The spread of a difference is √2 × the benchmark's pooled standard deviation over seeds (rows
    with several seeds), so that rows of one seed are judged too; no pooled spread (every row one
    seed) joins every pair by ``?``."""
    from jetfm.results import LOWER_IS_BETTER

    groups = [g for g in (result.get("summary") or summarise(result["rows"])) if g["mode"] != "baseline"]
    several = [g["std"] ** 2 for g in groups if g["n_seeds"] > 1]
    spread = (2 * sum(several) / len(several)) ** 0.5 if several else None
    lower = result["metric"] in LOWER_IS_BETTER
    points: dict[Any, list[dict[str, Any]]] = {}
    for g in groups:
        where = g.get("n_signal") if g.get("n_signal") is not None else g.get("n_train")
        points.setdefault(where, []).append(g)
    lines = []
    for where, rows in points.items():
        if len(rows) < 2:
            continue
        rows = sorted(rows, key=lambda g: g["mean"], reverse=not lower)
        text = _row_label(rows[0])
        for a, b in itertools.pairwise(rows):
            sign = "?" if spread is None else ">" if abs(a["mean"] - b["mean"]) > spread else "≈"
            if lower and sign == ">":
                sign = "<"
            text += f" {sign} {_row_label(b)}"
        label = "signal jets" if rows[0].get("n_signal") is not None else "training jets"
        lines.append(f"{'all' if where is None else where} {label}: {text}")
    if lines and spread is not None:
        lines.append(f"('>' / '≈': apart by more / less than the seed spread of a difference, {spread:.4f})")
    return lines


def _row_label(group: dict[str, Any]) -> str:
    seeds = " (1 seed)" if group["n_seeds"] == 1 else ""
    return f"{group['backbone']}/{group['mode']} {group['mean']:.3f}{seeds}"
