from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jetfm.cli import main
from jetfm.jets import truth


def test_proper_decay_length_from_the_daughters_vertex() -> None:
    # A particle (no 3) produced at the origin decays at (0, 3, 4) mm; m/p = 0.1 → cτ = 0.5 mm.
    event = np.zeros(3, dtype=int)
    no = np.array([3, 4, 5])
    mother1 = np.array([0, 3, 3])
    position = np.array([[0, 0, 0], [0, 3, 4], [0, 3, 4]], dtype=float)
    momentum = np.array([[0, 0, 10.0], [0, 0, 1], [0, 0, 1]])
    mass = np.array([1.0, 0.1, 0.1])
    ctau = truth.proper_decay_lengths(np.array([0, 1]), event, no, mother1, position, momentum, mass)
    assert ctau[0] == pytest.approx(0.5) and np.isnan(ctau[1])


def test_validate_writes_numbers_and_figures(tmp_path: Path, jet_files: dict, event_files: dict) -> None:
    out = tmp_path / "validation" / "btag.json"
    assert main(["validate", "--jets", str(jet_files["train"]), "--events", str(event_files["bb-000"]),
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    f = result["flavours"]
    assert f["b"]["d0_significance_median"] > f["light"]["d0_significance_median"]
    assert f["b"]["fraction_with_secondary_vertex"] > 0.9
    ctau = result["b_hadron_ctau"]["511"]
    assert ctau["n"] > 50 and ctau["mean_mm"] == pytest.approx(0.455, rel=0.25)
    assert 1.15 < result["delta_pp"]["mode_gev"] < 1.30
    for name in result["figures"]:
        assert (out.parent / name).stat().st_size > 5000
    assert len(result["figures"]) == 6
