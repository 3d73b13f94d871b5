"""Benchmark plots, the HTML report and the terminal summary on synthetic result files."""

from __future__ import annotations

from pathlib import Path

import pytest

from jetfm.report.benchmark_plots import plot_benchmark
from jetfm.report.html_report import build_report
from jetfm.report.summary import format_summary
from jetfm.results import summarise

# a validation loss with its minimum at the selected step 200
CURVE = [{"step": k, "train_loss": 1.0 / k, "val_loss": 1 + (k - 200) ** 2 / 1e5} for k in (100, 200, 300)]
ROC = {"fpr": [0.0, 0.01, 0.1, 1.0], "tpr": [0.0, 0.3, 0.7, 1.0], "signal": "b", "background": "light"}


def _rows(benchmark: str) -> list[dict]:
    rows = []
    for backbone in ("bb-<1>", "bb-2"):
        for mode in ("scratch", "fixed", "finetune"):
            for seed in (0, 1):
                for n in ((100, 1000) if benchmark == "jetclass_accuracy" else (500,)):
                    row = {"backbone": backbone, "mode": mode, "seed": seed, "n_train": n,
                           "value": 0.5 + 0.1 * seed + (n / 1e4), "best_step": 200,
                           "learning_curve": CURVE}
                    if benchmark in ("btag_vertex_ari", "btag_track_id"):
                        row["bins"] = {"1": 0.4 + 0.1 * seed, "2": 0.5, "3+": 0.6}
                    if benchmark in ("jetclass_accuracy", "btag_ood_accuracy", "btag_track_id"):
                        row["confusion"] = [[5, 1, 0], [2, 3, 1], [0, 0, 4]]
                        row["class_names"] = ["light", "c", "b"]
                    if benchmark != "btag_vertex_ari" and benchmark != "btag_track_id":
                        row["roc"] = ROC
                    if benchmark == "cwola_sic":
                        for s in (0, 300):
                            rows.append(row | {"n_signal": s, "value": 1.0 + s / 100})
                        continue
                    rows.append(row)
    binned = benchmark in ("btag_vertex_ari", "btag_track_id")
    rows.append({"backbone": "baseline-x", "mode": "baseline", "seed": 0, "n_train": 0, "value": 0.3,
                 **({"bins": {"1": 0.3, "2": 0.3}} if binned else {})})
    return rows


def _result(benchmark: str) -> dict:
    from jetfm.sanity import sanity_checks

    rows = _rows(benchmark)
    summary = summarise(rows)
    return {"benchmark": benchmark, "metric": "accuracy", "config_hash": "h", "rows": rows,
            "summary": summary, "checks": sanity_checks(benchmark, summary), "libraries": {"torch": "2.13.0"}}


BENCHMARKS = ["btag_vertex_ari", "btag_track_id", "btag_ood_accuracy", "jetclass_accuracy", "cwola_sic"]


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_every_benchmark_plots(benchmark: str, tmp_path: Path) -> None:
    out = tmp_path / f"{benchmark}.png"
    assert plot_benchmark(_result(benchmark), out) == out.name
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 10_000


def test_report_embeds_everything_and_escapes(tmp_path: Path) -> None:
    import json

    from jetfm.config import config_hash

    results, plots = [], []
    for benchmark in BENCHMARKS:
        path = tmp_path / f"{benchmark}.json"
        path.write_text(json.dumps(_result(benchmark)))
        results.append(path)
        plots.append(tmp_path / f"{benchmark}.png")
        plot_benchmark(_result(benchmark), plots[-1])
    config = {"scale": "demo", "pretrain": {"steps": 3}}
    out = tmp_path / "report.html"
    build_report(results, plots, [tmp_path / "missing.png"], config, out)
    text = out.read_text()
    assert all(b in text for b in BENCHMARKS)
    assert text.count("data:image/png;base64,") == len(BENCHMARKS)
    assert config_hash(config) in text and "bb-&lt;1&gt;" in text and "bb-<1>" not in text
    # the synthetic sweeps rise with the training jets: every check passes and says so
    assert "Sanity checks: 6 of 6 passed." in text and "FAILED" not in text
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        build_report([tmp_path / "nope.json"], [], [], config, out)


def test_summary_groups_by_sweep_point() -> None:
    text = format_summary(_result("jetclass_accuracy"))
    # seeds 0 and 1 at n_train 100: values 0.51 and 0.61 → mean 0.56, sample std 0.0707
    line = next(ln for ln in text.splitlines() if ln.startswith("bb-2") and " fixed " in ln and " 100 " in ln)
    assert "0.5600 ± 0.0707" in line
    cwola = format_summary(_result("cwola_sic"))
    assert "signal" in cwola.splitlines()[1] and " 300 " in cwola


def test_a_sweep_of_training_jets_draws_a_curve() -> None:
    from jetfm.report.benchmark_plots import _curve_axis

    result = _result("btag_ood_accuracy")
    assert _curve_axis(result) is None  # one training-set size: points per backbone and mode
    result["rows"] = [r | {"n_train": 1000 * (1 + r["seed"])} for r in result["rows"]]
    assert _curve_axis(result) == ("n_train", "training jets", True)
