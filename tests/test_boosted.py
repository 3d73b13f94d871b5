"""The boosted (JetClass-like) sample: processes, truth matching, constituents, physics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jetfm.config import stage_params, validate_config
from jetfm.contract import BOOSTED_LABEL_NAMES, BOOSTED_PROCESS_LABELS
from jetfm.events import BOOSTED_PROCESSES, pythia_settings
from jetfm.jets import read_jet_table
from jetfm.jets.build import build_jet_sets
from jetfm.jets.manifest import write_manifest
from jetfm.jets.parquet_io import JetTable
from jetfm.jets.substructure import tau_ratios
from jetfm.report.validation_boosted import constituent_taus, mass_peak, validate_boosted

CLASSES = ("qcd", "hbb", "wqq", "tbqq")
N_EVENTS = 80


@pytest.fixture(scope="module")
def boosted_cfg() -> dict:
    return validate_config({"generate": {"seed": 3}})


@pytest.fixture(scope="module")
def boosted_jets(tmp_path_factory: pytest.TempPathFactory, boosted_cfg: dict) -> dict[str, Path]:
    from jetfm.events import generate_shard

    out = tmp_path_factory.mktemp("boosted")
    files = []
    for process in CLASSES:
        path = out / f"{process}-000.root"
        params = stage_params(boosted_cfg, "generate", sample="boosted", shard=f"{process}-000")
        generate_shard(params, path, n_events=N_EVENTS, progress=False)
        files.append(path)
    paths = {s: out / f"{s}.parquet" for s in ("train", "val", "test")}
    build_jet_sets(files, stage_params(boosted_cfg, "jets", sample="boosted"), paths, progress=False)
    return paths


@pytest.fixture(scope="module")
def table(boosted_jets: dict[str, Path]) -> JetTable:
    return JetTable.concatenate([read_jet_table(p) for p in boosted_jets.values()])


def test_catalogue_has_one_process_per_jetclass_class() -> None:
    assert [BOOSTED_PROCESS_LABELS[p] for p in BOOSTED_PROCESSES] == list(range(10))
    assert [p.lower() for p in BOOSTED_LABEL_NAMES] == list(BOOSTED_PROCESSES)
    gen = validate_config({})["generate"] | validate_config({})["samples"]["boosted"]["generate"]
    hqql = [pythia_settings(gen, "boosted", "hqql", i, 1) for i in (0, 1)]
    assert "24:onPosIfAny = 11 13 15" in hqql[0] and "24:onNegIfAny = 11 13 15" in hqql[1]
    assert "PhaseSpace:pTHatMax = 1100.0" in hqql[0]
    with pytest.raises(ValueError, match="unknown process 'bb' for sample 'boosted'"):
        pythia_settings(gen, "boosted", "bb", 0, 1)


def test_jets_are_in_the_window_with_all_constituents(table: JetTable) -> None:
    assert np.all((table.jets["jet_pt"] > 500) & (table.jets["jet_pt"] < 1000))
    assert np.all(np.abs(table.jets["jet_eta"]) < 2.0)
    counts = np.diff(table.offsets)
    assert np.array_equal(counts, table.jets["n_constituents"]) and counts.max() <= 128
    assert 25 < np.median(counts) < 110  # R = 0.8, 500–1000 GeV, pT > 0.5 GeV constituents
    pid, charge = table.tracks["pid"], table.tracks["charge"]
    assert set(np.unique(pid)) >= {0, 1, 2, 3}  # photons, charged and neutral hadrons
    neutral = charge == 0
    assert 0.25 < neutral.mean() < 0.65
    assert np.all(table.tracks["d0"][neutral] == 0) and np.all(table.tracks["d0_err"][neutral] == 0)
    assert np.all(table.tracks["d0_err"][~neutral] > 0)
    assert np.all(np.isin(pid[neutral], [0, 2])) and not np.any(np.isin(pid[~neutral], [0, 2]))
    # pT-ordered within each jet, and inside the R = 0.8 cone
    jet, _ = table.track_slots()
    step = np.diff(table.tracks["pt"])[np.diff(jet) == 0]
    assert np.all(step <= 1e-4)
    # anti-kt is conical in rapidity; massless calorimeter objects and light tracks: η ≈ y
    # (the final axis moves from the hard seed, so a few edge constituents sit just beyond R)
    dr = np.hypot(table.tracks["deta"], table.tracks["dphi"])
    assert np.quantile(dr, 0.99) < 0.8 and dr.max() < 0.95


def test_class_masses_and_prongs(table: JetTable) -> None:
    labels, mass = table.jets["label"], table.jets["jet_mass"]
    names = {n: i for i, n in enumerate(BOOSTED_LABEL_NAMES)}
    for name in ("QCD", "Hbb", "Wqq", "Tbqq"):
        assert (labels == names[name]).sum() >= 15, name
    # ungroomed jet mass: the underlying event pushes peaks a few GeV above the pole mass
    assert 110 < np.median(mass[labels == names["Hbb"]]) < 145
    assert 70 < np.median(mass[labels == names["Wqq"]]) < 105
    assert 155 < np.median(mass[labels == names["Tbqq"]]) < 200
    assert np.median(mass[labels == names["QCD"]]) < 100
    tau21, tau32 = tau_ratios(constituent_taus(table, 0.8))
    qcd = labels == names["QCD"]
    for two_prong in ("Hbb", "Wqq"):
        assert np.median(tau21[labels == names[two_prong]]) < np.median(tau21[qcd]) - 0.15
    assert np.median(tau32[labels == names["Tbqq"]]) < np.median(tau32[qcd]) - 0.1


def test_signal_jets_are_truth_matched(table: JetTable) -> None:
    """Signal shards keep only matched jets: at most one H per event (ZH), two tops (tt̄)."""
    names = {n: i for i, n in enumerate(BOOSTED_LABEL_NAMES)}
    for name, per_event in (("Hbb", 1), ("Wqq", 1), ("Tbqq", 2)):
        sel = table.jets["label"] == names[name]
        keys = np.char.add(table.source[sel].astype(str), table.jets["event"][sel].astype(str))
        assert np.unique(keys, return_counts=True)[1].max() <= per_event
        assert sel.sum() < per_event * N_EVENTS


def test_validation_writes_numbers_and_figures(boosted_jets: dict[str, Path], tmp_path: Path) -> None:
    result = validate_boosted(list(boosted_jets.values()), tmp_path / "boosted.json")
    top = result["classes"]["Tbqq"]
    assert top["expected_mass_gev"] == 172.6 and 150 < top["mass_peak_gev"] < 200
    assert result["classes"]["Hcc"]["n_jets"] == 0
    assert {f"boosted_{n}.png" for n in ("jet_mass_by_class", "constituents_by_class", "tau21_by_class",
                                         "tau32_by_class")} == set(result["figures"])
    assert all((tmp_path / f).stat().st_size > 10_000 for f in result["figures"])


def test_mass_peak_finds_the_mode() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(91, 6, 4000), rng.uniform(0, 300, 1000)])
    assert mass_peak(values) == pytest.approx(91, abs=5)
    assert mass_peak(np.array([])) is None


def test_fractions_config_resamples_the_split(tmp_path: Path, boosted_cfg: dict,
                                              boosted_jets: dict[str, Path]) -> None:
    cfg = validate_config({"generate": {"seed": 3},
                           "samples": {"boosted": {"jets": {"fractions": {"qcd": 1, "tbqq": 1}}}}})
    shards = []
    for events in sorted(boosted_jets["train"].parent.glob("*.root")):  # one jets job per shard
        paths = {s: tmp_path / s / f"{events.stem}.parquet" for s in ("train", "val", "test")}
        build_jet_sets([events], stage_params(cfg, "jets", sample="boosted"), paths, progress=False)
        shards.append(paths["train"])
    params = stage_params(cfg, "manifest", sample="boosted", split="train")
    write_manifest(shards, params, tmp_path / "train.json")
    train = read_jet_table(tmp_path / "train.json")
    counts = np.bincount(train.jets["label"], minlength=10)
    assert counts[0] == counts[8] > 0 and counts.sum() == 2 * counts[0]
