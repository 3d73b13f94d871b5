from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jetfm.cli import build_parser, main
from jetfm.contract import TRAINED_BENCHMARKS
from tests.conftest import REPO


def test_every_stage_has_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "jetfm.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for command in ("generate", "jets", "tokenize", "pretrain", "downstream", "baselines", "plot", "report",
                    "aggregate", "summary", "check-config", "validate", "config-docs", "generate-jets",
                    "evaluate-generation"):
        assert command in proc.stdout


def test_check_config_reports_the_bad_key(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("generate:\n  events_per_shard: -5\n")
    assert main(["check-config", str(bad)]) == 2
    assert "generate.events_per_shard" in capsys.readouterr().err
    assert main(["check-config", str(REPO / "config.yaml")]) == 0


def test_generate_by_hand_matches_the_workflow_params(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bb-000.root"
    assert main(["-q", "generate", "--config", str(REPO / "config/tiny.yaml"), "--shard", "bb-000",
                 "--events", "5", "--out", str(out)]) == 0
    assert out.exists()
    assert main(["-q", "generate", "--config", str(REPO / "config/tiny.yaml"), "--shard", "bb-000",
                 "--events", "-1", "--out", str(tmp_path / "neg.root")]) == 2
    assert "must be positive" in capsys.readouterr().err
    assert not (tmp_path / "neg.root").exists()


def test_stage_on_missing_input_fails_cleanly(tmp_path: Path, capsys) -> None:
    code = main(["baselines", "--config", str(REPO / "config/tiny.yaml"), "--benchmark", "btag_vertex_ari",
                 "--train", str(tmp_path / "missing.parquet"), "--test", str(tmp_path / "missing.parquet"),
                 "--out", str(tmp_path / "out.json")])
    assert code == 2 and "not found" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_summary_prints_a_table(tmp_path: Path, capsys) -> None:
    result = {"benchmark": "btag_vertex_ari", "metric": "adjusted_rand_index", "config_hash": "x",
              "rows": [{"backbone": "b", "mode": "fixed", "seed": s, "value": v, "bins": {"1": v}}
                       for s, v in ((0, 0.5), (1, 0.7))]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(result))
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "0.6000 ± 0.1414" in out



GENERATION_BINS = ("jet_mass", "jet_pt", "n_constituents", "tau21", "tau32", "d2", "constituent_pt",
                   "constituent_deta", "constituent_dphi")
COLUMNS = ("backbone", "mode", "n_train", "n", "seeds", "mean ± std", "patience", "max_steps", "best step")


def _write(path: Path, content: dict) -> Path:
    path.write_text(json.dumps(content))
    return path


def _trained_row(mode: str, seed: int, value: float, stop: str, best: int) -> dict:
    return {"backbone": "mpm-kmeans", "mode": mode, "seed": seed, "value": value, "n_train": 225,
            "bins": {"0": value, "3+": value / 2}, "best_step": best,
            "stopped_step": 30 if stop == "max_steps" else best + 16, "stop_reason": stop}


def _generation_result() -> dict:
    def row(backbone: str, mode: str, seed: int, n_train: int | None, scale: float) -> dict:
        bins = {b: scale * (i + 1) for i, b in enumerate(GENERATION_BINS)}
        return {"backbone": backbone, "mode": mode, "seed": seed, "value": sum(list(bins.values())[:6]) / 6,
                "n_train": n_train, "bins": bins}

    rows = [row("omnijet", "generated", 0, None, 0.5), row("omnijet", "generated", 1, None, 0.6),
            row("omnijet", "reconstructed", 0, None, 0.05), row("baseline-truth", "baseline", 0, 0, 0.01)]
    return {"benchmark": "jet_generation", "metric": "mean_w1_over_std", "config_hash": "x", "rows": rows}


def _table(out: str, bins: tuple[str, ...]) -> tuple[list[str], list[dict[str, str]]]:
    """The lines of the first table printed (header, rule, rows) and its rows as column → cell,
    each cell read between the column ends that the header gives (numbers are right-aligned)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("backbone "))
    after = range(start + 2, len(lines))  # the table ends at a note: patience, NOT, sanity, reading
    end = next((i for i in after if not lines[i] or lines[i][0] in "pNsr( "), len(lines))
    header, block = lines[start], lines[start:end]
    names = (*(c for c in COLUMNS if f" {c}" in header or header.startswith(c)), *bins)
    ends, at = [], 0
    for name in names:
        at = header.index(name, at) + len(name)
        ends.append(at)
    mode_start = header.index("mode")
    rows = []
    for line in block[2:]:
        cells = {"backbone": line[:mode_start].strip(), "mode": line[mode_start:].split()[0]}
        cells |= {name: line[ends[i - 1]:ends[i]].strip() for i, name in enumerate(names) if i >= 2}
        rows.append(cells)
    return block, rows


def test_summary_aligns_every_row_of_jet_generation(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path / "jet_generation.json", _generation_result())
    assert main(["summary", str(path)]) == 0
    block, rows = _table(capsys.readouterr().out, tuple(sorted(GENERATION_BINS)))  # as result files hold them
    header, rule, *lines = block
    assert set(rule) == {"-"} and len(lines) == 3
    assert [r["mode"] for r in rows] == ["generated", "reconstructed", "baseline"]
    # every right-aligned column (the mean, each observable) ends where its header ends, on every line
    for name in ("mean ± std", *GENERATION_BINS):
        end = header.index(name) + len(name)
        for line in lines:
            assert line[end - 1] != " " and (end == len(line) or line[end] == " "), (name, line)
    # the mode column starts at the same place on every line, the table is as wide as its rule
    mode_start = header.index("mode")
    assert all(line[mode_start - 1] == " " and line[mode_start] != " " for line in lines)
    assert {len(line) for line in block} == {len(rule)}
    reconstructed = rows[1]
    assert reconstructed["constituent_dphi"] == "0.450" and reconstructed["mean ± std"] == "0.1750"
    assert rows[0]["seeds"] == "0-1" and rows[0]["n"] == "2"
    # nothing is trained in jet_generation: no convergence columns, no warning
    assert "patience" not in header and "NOT CONVERGED" not in "\n".join(block)


def test_summary_skips_a_validation_file(tmp_path: Path, capsys) -> None:
    validation = _write(tmp_path / "btag.json", {"sample": "btag", "figures": ["a.png"],
                                                 "flavours": {"b": {"fraction": 0.3}}})
    result = _write(tmp_path / "jet_generation.json", _generation_result())
    assert main(["summary", str(result), str(validation)]) == 0
    captured = capsys.readouterr()
    assert "jet_generation (mean_w1_over_std)" in captured.out
    note = [line for line in captured.err.splitlines() if line]
    assert len(note) == 1 and str(validation) in note[0] and "skipped" in note[0]
    # alone, a validation file is an error of one line, exit code 2, no traceback
    proc = subprocess.run([sys.executable, "-m", "jetfm.cli", "summary", str(validation)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and str(validation) in proc.stderr
    assert not proc.stdout


def test_summary_flags_runs_at_their_step_maximum(tmp_path: Path, capsys) -> None:
    rows = [_trained_row("fixed", s, 0.5 + s / 10, "patience", 20 + 10 * s) for s in (0, 1, 2)]
    rows += [_trained_row("scratch", s, 0.3, "max_steps" if s != 1 else "patience", 10) for s in (0, 1, 2)]
    rows.append({"backbone": "baseline-one-vertex", "mode": "baseline", "seed": 0, "value": 0.1,
                 "n_train": 0})
    result = {"benchmark": "btag_vertex_ari", "metric": "adjusted_rand_index", "config_hash": "x",
              "rows": rows}
    path = _write(tmp_path / "btag_vertex_ari.json", result)
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    _, table = _table(out, ("0", "3+"))
    cells = {r["mode"]: r for r in table}
    fixed, scratch, baseline = cells["fixed"], cells["scratch"], cells["baseline"]
    assert (fixed["n"], fixed["seeds"], fixed["mean ± std"]) == ("3", "0-2", "0.6000 ± 0.1000")
    assert (fixed["patience"], fixed["max_steps"], fixed["best step"]) == ("3", "0", "30")
    assert (scratch["patience"], scratch["max_steps"], scratch["best step"]) == ("1", "2", "10")
    assert (baseline["patience"], baseline["max_steps"], baseline["best step"]) == ("-", "-", "-")
    warning = [line for line in out.splitlines() if line.startswith("NOT CONVERGED")]
    assert len(warning) == 1
    assert "1 of 2 trained rows: mpm-kmeans/scratch n_train 225 (seeds 0,2);" in warning[0]
    assert "/fixed" not in warning[0] and "baseline" not in warning[0]


def test_summary_names_the_scale_of_a_tiny_run(tmp_path: Path, capsys) -> None:
    row = _trained_row("fixed", 4, 0.5, "max_steps", 30)
    result = {"benchmark": "btag_vertex_ari", "metric": "adjusted_rand_index", "config_hash": "x",
              "rows": [row], "provenance": {"config": {"scale": "tiny"}}}
    assert main(["summary", str(_write(tmp_path / "seed4.json", result))]) == 0
    out = capsys.readouterr().out
    assert "NOT CONVERGED (expected at the tiny test scale)" in out
    assert _table(out, ("0", "3+"))[1][0]["seeds"] == "4"


def test_summary_of_converged_runs_has_no_warning(tmp_path: Path, capsys) -> None:
    rows = [_trained_row("fixed", s, 0.5, "patience", 20) for s in (0, 3)]
    result = {"benchmark": "btag_vertex_ari", "metric": "adjusted_rand_index", "config_hash": "x",
              "rows": rows}
    assert main(["summary", str(_write(tmp_path / "r.json", result))]) == 0
    out = capsys.readouterr().out
    assert "NOT CONVERGED" not in out
    assert _table(out, ("0", "3+"))[1][0]["seeds"] == "0,3"


def test_downstream_help_offers_only_trained_benchmarks(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["downstream", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    choices = re.search(r"--benchmark \{([^}]*)\}", text).group(1).split(",")
    assert tuple(choices) == TRAINED_BENCHMARKS and "jet_generation" not in text
    assert "manifest" in text and "data/jets/SAMPLE/train.json" in text
    argv = ["downstream", "--benchmark", "jet_generation", "--backbone", "b", "--mode", "fixed",
            "--train", "t", "--val", "v", "--test", "t", "--out", "o"]
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2


def test_summary_names_the_tier_and_reads_the_order_against_the_seed_spread(tmp_path: Path, capsys) -> None:
    """The aggregated table says its tier (the config's scale) and, per sweep point, which rows are
    above which beyond the seed spread (>) or within it (≈); baselines are not read."""
    from jetfm.results import aggregate_results

    def run(backbone: str, mode: str, seed: int, value: float) -> Path:
        row = {"backbone": backbone, "mode": mode, "seed": seed, "value": value, "n_train": 1000,
               "best_step": 300, "stopped_step": 900, "stop_reason": "patience"}
        content = {"benchmark": "jetclass_accuracy", "metric": "accuracy",
                   "config_hash": f"{backbone}{mode}{seed}", "rows": [row]}
        return _write(tmp_path / f"{backbone}-{mode}-{seed}.json", content)

    files = [run("part", "scratch", 0, 0.715), run("part", "scratch", 1, 0.725),
             run("mpm-boosted", "scratch", 0, 0.66), run("mpm-boosted", "scratch", 1, 0.68),
             run("mpm-boosted", "finetune", 0, 0.665), run("baseline-majority", "baseline", 0, 0.9)]
    out = tmp_path / "jetclass_accuracy.json"
    result = aggregate_results(files, "jetclass_accuracy", out, scale="demo")
    assert json.loads(out.read_text())["scale"] == "demo"
    assert main(["summary", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("jetclass_accuracy (accuracy, tier: demo)")
    # pooled spread of a difference: sqrt(2 × mean(0.00707², 0.01414²)) = 0.0158
    assert ("reading: 1000 training jets: part/scratch 0.720 > mpm-boosted/scratch 0.670 "
            "≈ mpm-boosted/finetune 0.665 (1 seed)") in text
    assert "baseline" not in next(line for line in text.splitlines() if line.startswith("reading"))
    assert result["checks"] is not None
