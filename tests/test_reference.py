"""The ParT reference: its inputs from jetfm's jets, and its runs beside the backbones."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from jetfm.config import stage_params, validate_config
from jetfm.data.features import pad_jets, preprocess_continuous
from jetfm.downstream.run import run_benchmark
from jetfm.jets import read_jet_table
from jetfm.jets.jet_sets import read_metadata
from jetfm.jets.parquet_io import write_jet_table
from jetfm.models.part import PART_FEATURES, ParTBackbone, part_inputs
from jetfm.results import read_result

SMALL_PART = {"embed_dims": [16, 16], "pair_embed_dims": [8, 8], "num_heads": 2, "num_layers": 1,
              "num_cls_layers": 1}
SETTINGS = {"steps": 6, "batch_size": 16, "eval_every": 3, "backbones": []}


def _two_constituents() -> tuple[torch.Tensor, ...]:
    tracks = {"pt": np.array([40.0, 10.0, 1.0]), "deta": np.array([0.1, -0.2, 0.0]),
              "dphi": np.array([0.05, 0.3, 0.0]), "d0": np.array([0.5, 0.0, 0.0]),
              "z0": np.array([-0.2, 0.0, 0.0]), "d0_err": np.array([0.02, 0.0, 0.0]),
              "z0_err": np.array([0.04, 0.0, 0.0])}
    features = torch.from_numpy(preprocess_continuous(tracks))[None]
    pid = torch.tensor([[3, 0, 0]])  # a positive hadron, a photon, padding
    mask = torch.tensor([[True, True, False]])
    jet = torch.tensor([[50.0, 1.0, 0.4, 8.0]])
    return features, pid, mask, jet


def test_part_inputs_by_hand() -> None:
    x, v, m = part_inputs(*_two_constituents())
    assert x.shape == (1, len(PART_FEATURES), 3) and v.shape == (1, 4, 3) and m.shape == (1, 1, 3)
    col = {name: x[0, i] for i, name in enumerate(PART_FEATURES)}
    e0 = 40.0 * math.cosh(1.1)
    jet_e = math.sqrt(8.0**2 + (50.0 * math.cosh(1.0)) ** 2)
    assert col["log_pt"][0] == pytest.approx((math.log(40.0) - 1.7) * 0.7, rel=1e-5)
    assert col["log_e"][0] == pytest.approx((math.log(e0) - 2.0) * 0.7, rel=1e-5)
    assert col["log_pt_rel"][1] == pytest.approx((math.log(10.0 / 50.0) + 4.7) * 0.7, rel=1e-5)
    assert col["log_e_rel"][0] == pytest.approx((math.log(e0 / jet_e) + 4.7) * 0.7, rel=1e-5)
    assert col["delta_r"][1] == pytest.approx((math.hypot(0.2, 0.3) - 0.2) * 4.0, rel=1e-5)
    assert (col["charge"][:2] == torch.tensor([1.0, 0.0])).all()
    assert col["is_charged_hadron"][0] == 1 and col["is_photon"][1] == 1 and col["is_photon"][0] == 0
    assert col["tanh_d0"][0] == pytest.approx(math.tanh(0.5), rel=1e-5)
    assert (x[0, :, 2] == 0).all() and (v[0, :, 2] == 0).all()  # padding stays zero
    # massless four-vectors: the pair mass is 2 pT1 pT2 (cosh Δη − cos Δφ), as weaver's ln m² reads it
    p = v[0, :, 0] + v[0, :, 1]
    m2 = float(p[3] ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2)
    assert m2 == pytest.approx(2 * 40.0 * 10.0 * (math.cosh(0.3) - math.cos(0.25)), rel=1e-3)


def test_part_is_permutation_invariant_and_ignores_padding() -> None:
    torch.manual_seed(0)
    model = ParTBackbone(**SMALL_PART).eval()
    features, pid, mask, jet = _two_constituents()
    _, r = model(features, pid, mask, jet)
    perm = [1, 0, 2]
    _, r_perm = model(features[:, perm], pid[:, perm], mask[:, perm], jet)
    assert torch.allclose(r, r_perm, atol=1e-5)
    padded = features.clone()
    padded[0, 2] = 3.0  # garbage in the padded slot
    _, r_pad = model(padded, pid, mask, jet)
    assert torch.allclose(r, r_pad, atol=1e-5)


def _params(benchmark: str, mode: str, point: str, section: dict) -> dict:
    cfg = validate_config({"references": {"part": SMALL_PART},
                           "downstream": {benchmark: SETTINGS | section}})
    return stage_params(cfg, "downstream", benchmark=benchmark, backbone="part", mode=mode, point=point,
                        seed="0")


def test_part_runs_as_a_reference(tmp_path: Path, jet_files: dict[str, Path]) -> None:
    out = tmp_path / "part.json"
    run_benchmark(_params("btag_ood_accuracy", "scratch", "all", {"head_heads": 2}), jet_files["train"],
                  jet_files["val"],
                  jet_files["test"], None, out, progress=False)
    row = read_result(out)["rows"][0]
    assert row["backbone"] == "part" and row["architecture"]["kind"] == "part"
    assert 0.0 <= row["value"] <= 1.0 and row["stopped_step"] == 6 and len(row["learning_curve"]) == 2
    with pytest.raises(ValueError, match="not a jet classification"):
        run_benchmark(_params("btag_track_id", "scratch", "all", {}), jet_files["train"], jet_files["val"],
                      jet_files["test"], None, tmp_path / "x.json", progress=False)


def _as_boosted(path: Path, out: Path) -> Path:
    """The btag jets relabelled as boosted classes: b jets as Tbqq signal, the others as QCD."""
    table = read_jet_table(path)
    label = np.where(table.jets["label"] == 2, 8, 0).astype(table.jets["label"].dtype)
    meta = read_metadata(path)
    meta["config"] = meta["config"] | {"sample": "boosted"}  # relabelled: now the boosted sample's
    write_jet_table(dataclasses.replace(table, jets=table.jets | {"label": label}), out, meta)
    return out


def test_part_in_cwola_weak_and_supervised(tmp_path: Path, jet_files: dict[str, Path]) -> None:
    files = {s: _as_boosted(jet_files[s], tmp_path / f"{s}.parquet") for s in ("train", "val", "test")}
    n_sig = int((pad_jets(read_jet_table(files["train"])).label == 8).sum())
    for mode, point in (("scratch", f"s{n_sig // 2}"), ("supervised", "all")):
        out = tmp_path / f"{mode}.json"
        params = _params("cwola_sic", mode, point, {"background_rejection": 0.5, "head_heads": 2})
        run_benchmark(params, files["train"], files["val"], files["test"], None, out, progress=False)
        row = read_result(out)["rows"][0]
        assert row["backbone"] == "part" and row["value"] >= 0.0
        # validation halves are mixed like the training halves: weak labels only
        assert row["n_val"] > 0
