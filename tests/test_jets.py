from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from jetfm.jets import JetFileError, build_jet_sets, read_jet_table
from jetfm.jets.jet_sets import read_metadata
from tests.conftest import truncated_copy


@pytest.fixture(scope="module")
def train(jet_files: dict[str, Path]):
    return read_jet_table(jet_files["train"])


def test_schema_and_cuts(train, jet_files: dict[str, Path]) -> None:
    jets = train.jets
    assert train.n_jets > 150
    assert jets["jet_pt"].min() > 20.0 and np.abs(jets["jet_eta"]).max() < 2.5
    counts = np.diff(train.offsets)
    assert np.array_equal(counts, jets["n_constituents"])
    assert counts.min() >= 1 and counts.max() <= 15
    trk = train.tracks
    assert trk["pt"].min() > 1.0
    assert np.hypot(trk["deta"], trk["dphi"]).max() < 0.4 + 1e-5
    # pT-ordered inside each jet
    jet_of = np.repeat(np.arange(train.n_jets), counts)
    same_jet = jet_of[1:] == jet_of[:-1]
    assert np.all(trk["pt"][1:][same_jet] <= trk["pt"][:-1][same_jet])
    assert set(np.unique(trk["pid"])) <= {1, 3, 4, 5, 6, 7}  # charged classes only
    assert np.all(trk["d0_err"] > 0) and np.all(trk["z0_err"] > 0)
    meta = read_metadata(jet_files["train"])
    assert meta["label_names"] == ["light", "c", "b"] and meta["split"] == "train"


def test_truth_labels_are_consistent(train) -> None:
    trk = train.tracks
    assert set(np.unique(trk["origin"])) <= {0, 1, 2, 3}
    # Tracks from the primary vertex sit in vertex 0; b and c decay products never do.
    assert np.all(trk["vertex"][trk["origin"] == 0] == 0)
    assert np.all(trk["vertex"][np.isin(trk["origin"], [1, 2])] > 0)
    # b-origin tracks sit in b jets, but for the odd soft or wide-angle b hadron that
    # fails the labelling cuts (pT > 5 GeV, ΔR < 0.3) while a daughter is within 0.4.
    label_of_track = np.repeat(train.jets["label"], np.diff(train.offsets))
    assert np.mean(label_of_track[trk["origin"] == 2] == 2) > 0.95


def test_flavour_fractions_and_impact_parameter_physics(jet_files: dict[str, Path]) -> None:
    table = read_jet_table(jet_files["train"])
    bb = table.select(table.source == "bb-000")
    light = table.select(table.source == "light-000")
    assert np.mean(bb.jets["label"] == 2) > 0.5
    assert np.mean(light.jets["label"] == 0) > 0.8
    sig = table.tracks["d0"] / table.tracks["d0_err"]
    label_of_track = np.repeat(table.jets["label"], np.diff(table.offsets))
    median = {lab: np.median(sig[label_of_track == lab]) for lab in (0, 2)}
    assert median[2] > 1.0 > abs(median[0])
    # Light-jet tracks are nearly all prompt: the resolution-dominated core has unit width.
    light_sig = sig[(label_of_track == 0) & (table.tracks["origin"] == 0)]
    q16, q84 = np.percentile(light_sig, [16, 84])
    assert (q84 - q16) / 2 == pytest.approx(1.0, abs=0.15)


def test_same_inputs_same_bytes(tmp_path: Path, small_config: dict, event_files: dict[str, Path],
                                jet_files: dict[str, Path]) -> None:
    from jetfm.config import stage_params

    paths = {s: tmp_path / f"{s}.parquet" for s in ("train", "val", "test")}
    build_jet_sets(list(event_files.values()), stage_params(small_config, "jets", sample="btag"), paths,
                   progress=False)
    for split, path in paths.items():
        assert hashlib.sha256(path.read_bytes()).digest() == \
            hashlib.sha256(jet_files[split].read_bytes()).digest()


def test_missing_and_truncated_parquet(tmp_path: Path, jet_files: dict[str, Path]) -> None:
    with pytest.raises(JetFileError, match="not found"):
        read_jet_table(tmp_path / "nope.parquet")
    cut = truncated_copy(jet_files["train"], tmp_path)
    with pytest.raises(JetFileError):
        read_jet_table(cut)


def test_same_event_pairs_and_nearest_within() -> None:
    from jetfm.jets.pairs import nearest_within, same_event_pairs

    a_event = np.array([2, 0, 2, 1])
    b_event = np.array([0, 0, 2, 2, 2])
    ia, ib = same_event_pairs(a_event, b_event, 3)
    assert list(zip(ia.tolist(), ib.tolist(), strict=True)) == [
        (0, 2), (0, 3), (0, 4), (1, 0), (1, 1), (2, 2), (2, 3), (2, 4)]
    b_eta = np.array([0.0, 1.0, 0.0, 0.5, -1.0])
    b_phi = np.array([0.0, 0.0, 3.1, 0.0, 0.0])
    a_eta = np.array([0.0, 0.9, 0.45, 0.0])
    a_phi = np.array([-3.1, 0.0, 0.0, 0.0])  # the first sits across φ = ±π from b 2
    assert nearest_within(a_event, a_eta, a_phi, b_event, b_eta, b_phi, 3, 0.4).tolist() == [2, 1, 3, -1]
    with pytest.raises(ValueError, match="grouped by event"):
        same_event_pairs(a_event, b_event[::-1], 3)
