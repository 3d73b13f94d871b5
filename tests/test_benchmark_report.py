"""Benchmark plots, the HTML report and the terminal summary on synthetic result files."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
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


def _write(tmp_path: Path, results: list[dict]) -> list[Path]:
    import json

    paths = []
    for result in results:
        paths.append(tmp_path / f"{result['benchmark']}.json")
        paths[-1].write_text(json.dumps(result))
    return paths


def _report(tmp_path: Path, results: list[dict], config: dict | None = None, plots: bool = False,
            figures: list[Path] | None = None) -> str:
    paths = _write(tmp_path, results)
    pngs = []
    if plots:
        for result in results:
            pngs.append(tmp_path / f"{result['benchmark']}.png")
            plot_benchmark(result, pngs[-1])
    out = tmp_path / "report.html"
    config = {"scale": "demo", "references": {"part": {}}} if config is None else config
    build_report(paths, pngs, figures or [], config, out)
    return out.read_text()


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("<h2", start + len(heading))
    return text[start:end if end >= 0 else None]


def _with_reference(benchmark: str) -> dict:
    """A result where the ParT reference (scratch) beats every backbone."""
    result = _result(benchmark)
    best = max(r["value"] for r in result["rows"])
    sizes = {r["n_train"] for r in result["rows"] if r["mode"] != "baseline"}
    result["rows"] += [{"backbone": "part", "mode": "scratch", "seed": s, "n_train": n, "value": best + 0.1}
                       for s in (0, 1) for n in sizes]
    result["summary"] = summarise(result["rows"])
    return result


def _table_rows(text: str) -> list[list[str]]:
    """The data cells of each row of the HTML tables in ``text``."""
    import re

    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in text.split("<tr>")[1:]]


def test_best_backbone_excludes_the_reference(tmp_path: Path) -> None:
    headline = _table_rows(_section(_report(tmp_path, [_with_reference("jetclass_accuracy")]),
                                    "<h2>Headline</h2>"))
    by_mode = {cells[1]: cells for cells in headline if cells}
    assert set(by_mode) == {"scratch", "fixed", "finetune"}  # part has no mode of its own
    # part beats every backbone from scratch, but the best backbone is one of the backbones
    assert by_mode["scratch"][2] in ("bb-&lt;1&gt;", "bb-2")
    assert by_mode["scratch"][3] == "1000 training jets"
    assert by_mode["scratch"][-1] == "part · scratch: 0.8000 ± 0.0000"
    # beside a frozen backbone, the reference from scratch
    assert by_mode["fixed"][-1].startswith("part · scratch: ")
    # another reference name, from the config's references
    renamed = _with_reference("jetclass_accuracy")
    renamed["rows"] = [r | {"backbone": "ref-x"} if r["backbone"] == "part" else r for r in renamed["rows"]]
    renamed["summary"] = summarise(renamed["rows"])
    text = _report(tmp_path, [renamed], {"scale": "demo", "references": {"ref-x": {}}})
    cells = [c for c in _table_rows(_section(text, "<h2>Headline</h2>")) if c]
    assert all(c[2] != "ref-x" and c[-1].startswith("ref-x · scratch") for c in cells)


def _stopped(result: dict, reason_of: dict[tuple[str, str], str]) -> dict:
    for r in result["rows"]:
        if r["mode"] != "baseline":
            r["stop_reason"] = reason_of.get((r["backbone"], r["mode"]), "patience")
            r["stopped_step"] = 300 if r["stop_reason"] == "max_steps" else 260
    return result


def test_runs_at_their_step_maximum_are_flagged(tmp_path: Path) -> None:
    result = _stopped(_result("btag_ood_accuracy"), {("bb-2", "fixed"): "max_steps"})
    text = _report(tmp_path, [result], {"scale": "tiny"})
    section = _section(text, "<h2 id='btag_ood_accuracy'>")
    assert "Not converged: 2 of 12 runs stopped at their step maximum" in section
    assert "tiny test scale" in section and "do not mean a broken install" in section
    headline = _section(text, "<h2>Headline</h2>")
    assert "Not converged rows" in headline and "in: btag_ood_accuracy;" in headline
    assert "tiny test scale" in headline
    row = next(r for r in section.split("<tr>") if "<td>bb-2</td><td>fixed</td>" in r and "seeds" not in r)
    assert "no: 2 of 2 at step maximum" in row
    convergence = section.split("Convergence: how each run stopped")[1]
    at_max = next(r for r in convergence.split("<tr>") if "<td>bb-2</td><td>fixed</td>" in r)
    assert "<td class=bad>0, 1</td>" in at_max and "<td>200 / 200</td>" in at_max
    assert "<td>yes</td>" in section  # the other groups stopped on their patience
    # a demo-scale report says so without the tiny-scale excuse
    demo = _report(tmp_path, [result], {"scale": "demo"})
    assert "Not converged" in demo and "tiny test scale" not in demo


def test_converged_runs_carry_no_warning_and_failed_checks_do(tmp_path: Path) -> None:
    result = _stopped(_result("jetclass_accuracy"), {})
    assert "Not converged" not in _report(tmp_path, [result], {"scale": "tiny"})
    for r in result["rows"]:  # more jets score worse: more_jets_no_worse fails
        if r.get("n_train") == 1000:
            r["value"] -= 0.5
    result["summary"] = summarise(result["rows"])
    from jetfm.sanity import sanity_checks

    result["checks"] = sanity_checks("jetclass_accuracy", result["summary"])
    text = _report(tmp_path, [result], {"scale": "tiny"})
    assert "sanity checks fail" in text and "no: sanity check fails" in text and "tiny test scale" in text


def test_sweep_points_name_signal_or_training_jets(tmp_path: Path) -> None:
    from jetfm.report.html_report import _point

    text = _report(tmp_path, [_result("cwola_sic"), _result("jetclass_accuracy")])
    cwola = _section(text, "<h2 id='cwola_sic'>")
    assert "<td>300 signal jets</td>" in cwola and "<td>0 signal jets</td>" in cwola
    assert "training jets</td>" not in cwola.split("</table>")[0]
    jetclass = _section(text, "<h2 id='jetclass_accuracy'>")
    assert "<td>100 training jets</td>" in jetclass and "signal jets" not in jetclass
    assert _point({"mode": "supervised", "n_train": 800, "n_signal": None}) == "800 training jets"
    assert _point({"mode": "baseline", "n_train": 0, "n_signal": None}) == "–"


def test_bin_columns_say_what_the_bin_is(tmp_path: Path) -> None:
    text = _report(tmp_path, [_result("btag_vertex_ari"), _result("btag_track_id")])
    vertex = _section(text, "<h2 id='btag_vertex_ari'>")
    assert "per number of true secondary vertices (SV) in the jet" in vertex
    assert all(f"<th>{h}</th>" in vertex for h in ("1 SV", "2 SVs", "3+ SVs"))
    track = _section(text, "<h2 id='btag_track_id'>")
    assert "per number of tracks in the jet" in track
    assert all(f"<th>{h}</th>" in track for h in ("1 track", "2 tracks", "3+ tracks"))


def test_every_figure_has_a_caption(tmp_path: Path) -> None:
    (tmp_path / "models" / "backbones").mkdir(parents=True)
    (tmp_path / "models" / "tokenizers").mkdir(parents=True)
    other = [tmp_path / "models" / "backbones" / "mpm-x.metrics.png",
             tmp_path / "models" / "tokenizers" / "km.png",
             tmp_path / "secondary_vertices_by_flavour.png", tmp_path / "odd_plot.png"]
    for path in other:
        plot_benchmark(_result("btag_ood_accuracy"), path)
    text = _report(tmp_path, [_result(b) for b in BENCHMARKS], plots=True, figures=other)
    figures = text.split("<figure>")[1:]
    assert len(figures) == len(BENCHMARKS) + len(other)
    captions = [f.split("<figcaption>")[1].split("</figcaption>")[0] for f in figures]
    assert all(len(c) > 30 and str(tmp_path) not in c for c in captions[:-1])
    assert captions[0].startswith("btag_vertex_ari: (a) accuracy against true secondary vertices")
    assert "(b) validation loss against training step" in captions[0]
    assert "confusion matrix" in captions[3] and "normalised by true class" in captions[3]
    assert "ROC curves" in captions[4]
    assert captions[len(BENCHMARKS)].startswith("Pre-training of backbone mpm-x:")
    assert captions[len(BENCHMARKS) + 1].startswith("Tokenizer km:")
    assert "true secondary vertices" in captions[len(BENCHMARKS) + 2]
    assert captions[-1] == "odd plot (odd_plot.png)."


def test_libraries_include_jetfm_and_weaver_core(tmp_path: Path) -> None:
    import importlib.metadata

    libraries = _section(_report(tmp_path, [_result("cwola_sic")]), "<h2>Libraries</h2>")
    for name in ("jetfm", "weaver-core", "torch"):
        assert f"<td>{name}</td>" in libraries
    assert f"<td>jetfm</td><td>{importlib.metadata.version('jetfm')}</td>" in libraries
    assert f"<td>weaver-core</td><td>{importlib.metadata.version('weaver-core')}</td>" in libraries


def _axes() -> tuple:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots()


def test_references_baselines_and_trained_rows_are_drawn_apart() -> None:
    import matplotlib.pyplot as plt

    from jetfm.report.benchmark_plots import _curve_panel

    result = _result("cwola_sic")
    result["rows"] += [{"backbone": b, "mode": "supervised", "seed": 0, "n_train": 500, "value": 3.0}
                       for b in ("bb-2", "part")]
    result["rows"].append({"backbone": "baseline-y", "mode": "baseline", "seed": 0, "n_train": 0,
                           "value": 0.3})
    result.pop("summary")
    fig, ax = _axes()
    _curve_panel(ax, result)
    handles, labels = ax.get_legend_handles_labels()
    assert "bb-2 · supervised (reference)" in labels and "part · supervised (reference)" in labels
    assert "baseline-x (baseline)" in labels and "baseline-y (baseline)" in labels
    # an errorbar's legend handle is its container; its first line is the data
    drawn = {label: getattr(h, "lines", [h])[0] for h, label in zip(handles, labels, strict=True)}
    line = {label: (h.get_color(), h.get_linestyle(), h.get_linewidth()) for label, h in drawn.items()}
    sup = [line["bb-2 · supervised (reference)"], line["part · supervised (reference)"]]
    base = [line["baseline-x (baseline)"], line["baseline-y (baseline)"]]
    trained = line["bb-2 · fixed"]
    # equal supervised lines: different colours, the second narrower, so both show; kinds differ in style
    assert sup[0][0] != sup[1][0] and sup[0][2] > sup[1][2] and base[0][2] > base[1][2]
    assert len({sup[0][1], base[0][1], trained[1]}) == 3
    # equal trained curves are offset along x, not drawn on top of each other
    xs = [tuple(h.get_xdata()) for label, h in drawn.items() if "scratch" in label]
    assert len(xs) == 2 and xs[0] != xs[1]
    plt.close(fig)


def test_learning_curves_keep_plain_loss_ticks_and_mark_the_step_maximum() -> None:
    import matplotlib.pyplot as plt

    from jetfm.report.benchmark_plots import _learning_panel

    result = _stopped(_result("jetclass_accuracy"), {("bb-2", "fixed"): "max_steps"})
    fig, ax = _axes()
    _learning_panel(ax, result)
    assert ax.yaxis.get_major_formatter().get_useOffset() is False
    crosses = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert len(crosses) == 1 and list(crosses[0].get_xdata()) == [300]
    widths = [ln.get_linewidth() for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    assert len(widths) == 6 and widths == sorted(widths, reverse=True) and len(set(widths)) == 6
    plt.close(fig)


def test_confusion_matrix_is_normalised_by_true_class_and_readable() -> None:
    import matplotlib.pyplot as plt

    from jetfm.report.benchmark_plots import _confusion_panel, confusion_fractions

    fractions = confusion_fractions([[5, 1, 0], [2, 3, 1], [0, 0, 0]])
    assert np.allclose(fractions.sum(axis=1), [1, 1, 0]) and fractions[0, 0] == 5 / 6
    result = _result("jetclass_accuracy")
    for r in result["rows"]:
        r["confusion"] = [[90 if i == j else 1 for j in range(10)] for i in range(10)]
        r["class_names"] = [f"class{i}" for i in range(10)]
    fig, ax = _axes()
    _confusion_panel(ax, result)
    texts = ax.texts
    assert len(texts) == 100 and texts[0].get_text() == "91" and min(t.get_fontsize() for t in texts) >= 12
    plt.close(fig)


def test_each_benchmark_says_its_tier_and_what_its_numbers_say(tmp_path: Path) -> None:
    result = _result("jetclass_accuracy") | {"scale": "study"}
    text = _report(tmp_path, [result], {"scale": "demo"})
    section = _section(text, "<h2 id='jetclass_accuracy'>")
    assert "tier: study" in section.split("</h2>")[0]  # the result's own tier wins over the config's
    assert "What the numbers say" in section
    from jetfm.report.summary import reading

    lines = reading(result)
    assert lines and all(f"<li>{html.escape(line)}</li>" in section for line in lines)
