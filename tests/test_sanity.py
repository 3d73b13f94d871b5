"""Sanity checks on aggregated benchmark results."""

from __future__ import annotations

from jetfm.report.summary import format_summary
from jetfm.results import summarise
from jetfm.sanity import sanity_checks


def _row(backbone: str, mode: str, seed: int, value: float, **point: int | None) -> dict:
    return {"backbone": backbone, "mode": mode, "seed": seed, "value": value, **point}


def test_accuracy_falling_with_more_jets_is_flagged_beyond_the_seed_spread() -> None:
    rows = [_row("a", "scratch", s, v, n_train=100) for s, v in ((0, 0.50), (1, 0.52))]
    rows += [_row("a", "scratch", s, v, n_train=1000) for s, v in ((0, 0.45), (1, 0.47))]  # falls by 0.05
    rows += [_row("b", "fixed", s, v, n_train=100) for s, v in ((0, 0.50), (1, 0.60))]
    rows += [_row("b", "fixed", s, v, n_train=1000) for s, v in ((0, 0.52), (1, 0.54))]  # within spread
    checks = {(c["backbone"], c["check"]): c["passed"] for c in sanity_checks("jetclass_accuracy",
                                                                               summarise(rows))}
    assert checks == {("a", "more_jets_no_worse"): False, ("b", "more_jets_no_worse"): True}


def test_cwola_below_supervised_is_required() -> None:
    rows = [_row("part", "scratch", 0, 2.0, n_train=None, n_signal=300),
            _row("part", "scratch", 0, 0.5, n_train=None, n_signal=0),
            _row("part", "supervised", 0, 0.94, n_train=None)]
    result = {"benchmark": "cwola_sic", "metric": "sic_at_rejection", "rows": rows,
              "summary": summarise(rows)}
    result["checks"] = sanity_checks("cwola_sic", result["summary"])
    verdict = {c["detail"].split(":")[0]: c["passed"] for c in result["checks"]}
    assert verdict == {"300 signal jets": False, "0 signal jets": True}
    text = format_summary(result)
    assert "sanity checks: 1 of 2 passed" in text and "FAILED supervised_at_least_weak part/scratch" in text
    assert sanity_checks("jet_generation", result["summary"]) == []
