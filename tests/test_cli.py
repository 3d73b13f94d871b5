from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from jetfm.cli import main
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
