from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import uproot

from jetfm.config import stage_params
from jetfm.events import generate_shard, pythia_settings, shard_seed
from jetfm.events.root_io import EventFileError, flat_particles, read_events, read_provenance
from tests.conftest import truncated_copy


def test_root_file_has_the_primer_branches(event_files: dict[str, Path]) -> None:
    with uproot.open(event_files["bb-000"]) as handle:
        tree = handle["events"]
        assert tree.num_entries == 200
        for branch in ("event", "size", "no", "id", "m", "px", "py", "pz", "e", "charge", "status",
                       "mother1", "mother2", "x", "y", "z"):
            assert branch in tree, branch
        size = tree["size"].array(library="np")
        assert np.array_equal(size, [len(x) for x in tree["id"].array()])


def test_final_state_conserves_charge_and_energy(event_files: dict[str, Path]) -> None:
    events = read_events(event_files["light-000"])
    p = events.particles
    final = p[p.status > 0]
    import awkward as ak

    # pp initial state: charge +2, E = sqrt(s), no net momentum (float32 storage).
    assert np.all(ak.to_numpy(ak.sum(final.charge, axis=1)) == 2)
    assert np.allclose(ak.to_numpy(ak.sum(final.e, axis=1)), 13000.0, rtol=2e-4)
    assert np.all(np.abs(ak.to_numpy(ak.sum(final.px, axis=1))) < 0.5)


def test_b_hadrons_have_the_right_lifetime(event_files: dict[str, Path]) -> None:
    """Proper decay length of weakly decaying B0/B+ from their daughters' vertices: cτ ≈ 0.46 mm."""
    from jetfm.jets import truth

    flat, event = flat_particles(read_events(event_files["bb-000"]))
    rows = np.flatnonzero(np.isin(np.abs(flat["id"]), [511, 521]))
    position = np.stack([flat[k] for k in "xyz"], axis=1).astype(np.float64)
    momentum = np.stack([flat[k] for k in ("px", "py", "pz")], axis=1).astype(np.float64)
    ctau = truth.proper_decay_lengths(rows, event, flat["no"], flat["mother1"], position, momentum,
                                      flat["m"].astype(np.float64))
    ctau = ctau[np.isfinite(ctau)]
    assert len(ctau) > 100
    assert np.mean(ctau) == pytest.approx(0.47, rel=0.15)


def test_same_seed_same_bytes_and_shards_differ(tmp_path: Path, small_config: dict) -> None:
    params = stage_params(small_config, "generate", sample="btag", shard="cc-000")
    a, b = tmp_path / "a.root", tmp_path / "b.root"
    generate_shard(params, a, n_events=20, progress=False)
    generate_shard(params, b, n_events=20, progress=False)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    other = stage_params(small_config, "generate", sample="btag", shard="cc-001")
    assert shard_seed(5, "cc", 0) != shard_seed(5, "cc", 1)
    generate_shard(other, c := tmp_path / "c.root", n_events=20, progress=False)
    assert a.read_bytes() != c.read_bytes()
    assert read_provenance(a)["config"] == params


def test_bad_inputs_fail_clearly_and_leave_nothing(tmp_path: Path, small_config: dict) -> None:
    params = stage_params(small_config, "generate", sample="btag", shard="bb-000")
    out = tmp_path / "neg.root"
    with pytest.raises(ValueError, match="must be positive"):
        generate_shard(params, out, n_events=-5, progress=False)
    assert not out.exists()
    with pytest.raises(ValueError, match="unknown process"):
        pythia_settings(params["generate"], "btag", "zz", 0, 1)
    bad = params | {"generate": params["generate"] | {"pythia_settings": ["Beams:eCMM = 3"]}}
    with pytest.raises(ValueError, match="Pythia rejected"):
        generate_shard(bad, out, n_events=5, progress=False)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_missing_and_truncated_root_files(tmp_path: Path, event_files: dict[str, Path]) -> None:
    with pytest.raises(EventFileError, match="not found"):
        read_events(tmp_path / "nope.root")
    cut = truncated_copy(event_files["bb-000"], tmp_path)
    with pytest.raises(EventFileError):
        read_events(cut)


def test_full_record_and_the_primers_delta_check(tmp_path: Path, small_config: dict,
                                                 event_files: dict[str, Path]) -> None:
    """With record: full the whole Pythia record is stored; the Δ++ line shape, read with
    uproot alone, peaks near 1.232 GeV with a width of order Γ = 0.117 GeV."""
    import awkward as ak

    params = stage_params(small_config, "generate", sample="btag", shard="light-000")
    params["generate"] = params["generate"] | {"record": "full"}
    full = tmp_path / "full.root"
    generate_shard(params, full, n_events=200, progress=False)
    with uproot.open(full) as handle:
        p = handle["events"].arrays(["no", "id", "status", "m"])
    with uproot.open(event_files["light-000"]) as handle:
        final = handle["events"].arrays(["no", "status"])
    # Full: the record starts with the system (90) and both beams; nothing is skipped.
    assert ak.all(p.no == ak.local_index(p.no))
    assert ak.all(p.id[:, 0] == 90) and ak.all(p.id[:, 1:3] == 2212)
    assert ak.all(ak.num(p.no) > ak.num(final.no))
    # Same seed, same events: the final-state particles agree.
    assert ak.all(ak.sum(p.status > 0, axis=1) == ak.sum(final.status > 0, axis=1))
    mass = ak.to_numpy(ak.flatten(p.m[p.id == 2224]))
    assert len(mass) > 100
    # Above the p π+ threshold; the line shape is skewed up by the mass-dependent width,
    # so test the mode and the width, not the median.
    assert mass.min() > 0.938 + 0.1396
    counts, edges = np.histogram(mass, bins=np.arange(1.08, 1.6, 0.025))
    assert 1.20 <= edges[np.argmax(counts)] <= 1.26
    q25, q75 = np.percentile(mass, [25, 75])
    assert 0.08 < q75 - q25 < 0.2  # of order Γ = 0.117 GeV


def test_charge_table_looks_up_new_and_known_ids() -> None:
    from jetfm.events.record import ChargeTable

    class Data:
        def __init__(self) -> None:
            self.asked: list[int] = []

        def charge(self, pdg: int) -> float:
            self.asked.append(pdg)
            return {211: 1.0, -211: -1.0, 22: 0.0, 11: -1.0, -11: 1.0, 2212: 1.0}[pdg]

    data = Data()
    table = ChargeTable(data)
    first = table(np.array([211, 22, -211, 211, 22]))
    assert first.tolist() == [1.0, 0.0, -1.0, 1.0, 0.0] and sorted(data.asked) == [-211, 22, 211]
    second = table(np.array([11, 211, -11, 2212, 22]))
    assert second.tolist() == [-1.0, 1.0, 1.0, 1.0, 0.0]
    assert sorted(data.asked) == [-211, -11, 11, 22, 211, 2212]  # each id asked once
    assert table(np.array([], dtype=np.int64)).tolist() == []


def test_record_extraction_matches_awkward_high_level_path(small_config: dict) -> None:
    """The layout-level extraction gives exactly what awkward's high-level functions give."""
    import awkward as ak
    import pythia8mc

    from jetfm.events.record import ChargeTable, _columns_via_awkward, batch_to_columns

    params = stage_params(small_config, "generate", sample="btag", shard="bb-000")
    pythia = pythia8mc.Pythia("", False)
    for line in pythia_settings(params["generate"], "btag", "bb", 0, shard_seed(5, "bb", 0)):
        pythia.readString(line)
    assert pythia.init()
    batch = pythia.nextBatch(30)
    for full in (False, True):
        fast = batch_to_columns(batch, ChargeTable(pythia.particleData), full)
        counts = ak.num(batch.prt).to_numpy()
        slow = _columns_via_awkward(batch.prt, counts, ChargeTable(pythia.particleData), full)
        np.testing.assert_array_equal(fast[0], slow[0])
        assert fast[1].keys() == slow[1].keys()
        for key in fast[1]:
            np.testing.assert_array_equal(fast[1][key], slow[1][key], err_msg=key)
        assert (fast[1]["x"] == 0).any() and (fast[1]["x"] != 0).any()  # unset and set vertices
