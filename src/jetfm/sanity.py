"""Checks that converged models must pass, run on every aggregated benchmark result.

* ``more_jets_no_worse``: per (backbone, mode), the mean score does not fall from one
  data-efficiency point to the next larger one by more than the two points' seed spreads;
* ``supervised_at_least_weak`` (CWoLa): per backbone, the fully supervised mean is not below
  the weakly supervised mean at any signal amount by more than the two seed spreads.

A failed check does not stop the workflow: it is written into the result file, printed by
``jetfm aggregate`` and ``jetfm summary``, and shown in the report, so that a number from a
model that fails it is never read as if it were sound.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any


def _check(name: str, backbone: str, mode: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"check": name, "backbone": backbone, "mode": mode, "passed": passed, "detail": detail}


def _spread(a: dict[str, Any], b: dict[str, Any]) -> float:
    return a["std"] + b["std"]


def more_jets_no_worse(summary: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in summary:
        if s["n_train"] is not None and s.get("n_signal") is None and s["mode"] != "baseline":
            groups.setdefault((s["backbone"], s["mode"]), []).append(s)
    out = []
    for (backbone, mode), points in groups.items():
        points = sorted(points, key=lambda s: s["n_train"])
        for small, large in itertools.pairwise(points):
            drop = small["mean"] - large["mean"]
            passed = drop <= _spread(small, large)
            out.append(_check("more_jets_no_worse", backbone, mode, passed,
                              f"{small['n_train']} jets: {small['mean']:.4f} ± {small['std']:.4f}; "
                              f"{large['n_train']} jets: {large['mean']:.4f} ± {large['std']:.4f}"))
    return out


def supervised_at_least_weak(summary: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    supervised = {s["backbone"]: s for s in summary if s["mode"] == "supervised"}
    out = []
    for s in summary:
        if s.get("n_signal") is None or s["backbone"] not in supervised:
            continue
        sup = supervised[s["backbone"]]
        passed = s["mean"] - sup["mean"] <= _spread(s, sup)
        out.append(_check("supervised_at_least_weak", s["backbone"], s["mode"], passed,
                          f"{s['n_signal']} signal jets: {s['mean']:.4f} ± {s['std']:.4f}; "
                          f"supervised: {sup['mean']:.4f} ± {sup['std']:.4f}"))
    return out


def sanity_checks(benchmark: str, summary: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every check that applies to ``benchmark``'s summary rows (scores: higher is better)."""
    if benchmark == "jet_generation":
        return []
    checks = more_jets_no_worse(summary)
    if benchmark == "cwola_sic":
        checks += supervised_at_least_weak(summary)
    return checks
