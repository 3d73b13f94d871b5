"""Readers for the public b-tagging (Shlomi et al.) and JetClass ROOT files, on hand-made files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot

from jetfm.contract import BOOSTED_LABEL_NAMES, CONSTITUENT_FIELDS, JET_COLUMNS
from jetfm.detector import lifetime_sign
from jetfm.jets.parquet_io import JetFileError
from jetfm.jets.readers import (
    BTAG_ROOT_BRANCHES,
    JETCLASS_BRANCHES,
    read_btag_root,
    read_jetclass_root,
    read_source,
    renumber_vertices,
)

# --- file writing -----------------------------------------------------------------------


def write_tree(path: Path, columns: dict[str, Any], types: dict[str, str], tree: str = "tree") -> Path:
    """A TTree (not an RNTuple) with the given branch types, filled once."""
    with uproot.recreate(path) as f:
        f.mktree(tree, {k: types[k] for k in columns})
        f[tree].extend({k: ak.values_astype(ak.Array(v), types[k].split()[-1]) for k, v in columns.items()})
    return path


BTAG_TYPES = {
    "jet_pt": "float32", "jet_eta": "float32", "jet_phi": "float32", "jet_M": "float32",
    "jet_flav": "int32", "n_trks": "int32", "event_number": "int64",
    **{b: "var * float32" for b in ("trk_pt", "trk_eta", "trk_phi", "trk_d0", "trk_d0err", "trk_z0",
                                    "trk_z0err", "trk_charge")},
    "trk_vtx_index": "var * int32",
}


def btag_columns() -> dict[str, Any]:
    """Four jets: b (4 tracks, unordered, two crossing ±pi), light (1 track), c (none), c (3)."""
    return {
        "jet_pt": [80.0, 40.0, 30.0, 55.0],
        "jet_eta": [0.5, -1.0, 0.0, 2.0],
        "jet_phi": [3.0, -3.0, 1.0, 0.0],
        "jet_M": [12.5, 6.0, 4.0, 8.0],
        "jet_flav": [5, 0, 4, 4],
        "n_trks": [4, 1, 0, 3],
        "trk_pt": [[2.0, 10.0, 5.0, 1.0], [4.0], [], [3.0, 1.0, 2.0]],
        "trk_eta": [[0.625, 0.375, 0.5625, 0.5], [-0.75], [], [2.25, 1.5, 2.0]],
        "trk_phi": [[-3.1, 2.75, 3.0625, 3.0], [3.1], [], [0.25, -0.5, 0.125]],
        "trk_d0": [[0.5, 0.01, -0.25, 0.125], [-0.0625], [], [1.5, 0.0, 0.03125]],
        "trk_d0err": [[0.02, 0.01, 0.03, 0.04], [0.05], [], [0.06, 0.07, 0.08]],
        "trk_z0": [[1.0, -0.02, 0.75, 0.0], [0.0625], [], [-2.0, 0.5, 0.25]],
        "trk_z0err": [[0.1, 0.2, 0.3, 0.4], [0.5], [], [0.6, 0.7, 0.8]],
        "trk_charge": [[1.0, -1.0, 1.0, -1.0], [-1.0], [], [1.0, -1.0, -1.0]],
        # dataset indices: 0 = primary vertex; jet 3 reuses index 7 to test per-jet numbering
        "trk_vtx_index": [[2, 0, 5, 2], [0], [], [7, 7, 0]],
        "event_number": [100, 100, 101, 102],
    }


def write_btag(tmp_path: Path, name: str = "btag_sample.root", drop: tuple[str, ...] = (),
               **changes: Any) -> Path:
    columns = {**btag_columns(), **changes}
    columns.pop("event_number")
    columns = {k: v for k, v in columns.items() if k not in drop}
    return write_tree(tmp_path / name, columns, BTAG_TYPES)


# The JetClass branch types of the released files (particle_transformer notebooks/JetClass101.ipynb).
JETCLASS_TYPES = {
    **{b: "var * float32" for b in ("part_px", "part_py", "part_pz", "part_energy", "part_deta", "part_dphi",
                                    "part_d0val", "part_d0err", "part_dzval", "part_dzerr", "part_charge")},
    **{b: "var * int32" for b in ("part_isChargedHadron", "part_isNeutralHadron", "part_isPhoton",
                                  "part_isElectron", "part_isMuon")},
    "label_QCD": "float32",
    **{f"label_{n}": "bool" for n in ("Hbb", "Hcc", "Hgg", "H4q", "Hqql")},
    **{f"label_{n}": "int32" for n in ("Zqq", "Wqq", "Tbqq", "Tbl")},
    **{b: "float32" for b in ("jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_nparticles", "jet_sdmass",
                              "jet_tau1", "jet_tau2", "jet_tau3", "jet_tau4", "aux_genpart_pt")},
}
JET1_MASS = 80.0
JET1_ENERGY = math.sqrt((500.0 * math.cosh(-1.0)) ** 2 + JET1_MASS**2)


def jetclass_columns() -> dict[str, Any]:
    """Three jets: Hbb at eta 0 (5 particles), Tbl at eta -1 (6), QCD at eta 0.8 (1)."""
    labels = {f"label_{n}": [0, 0, 0] for n in BOOSTED_LABEL_NAMES}
    labels["label_Hbb"] = [1, 0, 0]
    labels["label_Tbl"] = [0, 1, 0]
    labels["label_QCD"] = [0.0, 0.0, 1.0]
    n = [5, 6, 1]
    return {
        "jet_pt": [300.0, 500.0, 700.0],
        "jet_eta": [0.0, -1.0, 0.8],
        "jet_phi": [0.5, -2.0, 3.0],
        "jet_energy": [500.0, JET1_ENERGY, 2000.0],
        "jet_nparticles": [float(k) for k in n],
        "jet_sdmass": [120.0, 75.0, 30.0],
        **{f"jet_tau{i}": [0.5, 0.4, 0.3] for i in range(1, 5)},
        "aux_genpart_pt": [1.0, 2.0, 3.0],
        **labels,
        # pt:             5          10        2          1         0.5    | 3, 4, 2, 1.5, 1.2, 1.1 | 7
        "part_px": [[3.0, 6.0, 0.0, -1.0, 0.3], [0.0, 4.0, -2.0, 0.0, 1.2, 0.0], [7.0]],
        "part_py": [[4.0, 8.0, -2.0, 0.0, 0.4], [3.0, 0.0, 0.0, -1.5, 0.0, 1.1], [0.0]],
        "part_pz": [[1.0] * 5, [1.0] * 6, [1.0]],
        "part_energy": [[11.0] * 5, [5.0] * 6, [8.0]],
        "part_deta": [[0.125, -0.25, 0.0625, 0.375, 0.5], [0.1, -0.2, 0.3, 0.0, -0.4, 0.25], [-0.125]],
        "part_dphi": [[3.2, -0.5, 0.25, -3.25, 0.0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.75]],
        "part_d0val": [[-0.05, 0.0, 0.125, 0.3, 0.0], [0.01, 0.02, 0.03, 0.04, 0.05, 0.0], [0.25]],
        "part_d0err": [[0.01, 0.0, 0.02, 0.03, 0.0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.0], [0.125]],
        "part_dzval": [[0.5, 0.0, -0.75, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0, 5.0, 0.0], [-0.5]],
        "part_dzerr": [[0.05, 0.0, 0.06, 0.07, 0.0], [0.6, 0.7, 0.8, 0.9, 1.0, 0.0], [0.0625]],
        # jet 0: h-, photon, e+, mu-, h0; jet 1: e-, mu+, h+, unflagged +1, -1 and 0; jet 2: h+
        "part_charge": [[-1.0, 0.0, 1.0, -1.0, 0.0], [-1.0, 1.0, 1.0, 1.0, -1.0, 0.0], [1.0]],
        "part_isChargedHadron": [[1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [1]],
        "part_isNeutralHadron": [[0, 0, 0, 0, 1], [0] * 6, [0]],
        "part_isPhoton": [[0, 1, 0, 0, 0], [0] * 6, [0]],
        "part_isElectron": [[0, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0], [0]],
        "part_isMuon": [[0, 0, 0, 1, 0], [0, 1, 0, 0, 0, 0], [0]],
    }


def write_jetclass(tmp_path: Path, name: str = "HToBB_120.root", drop: tuple[str, ...] = (),
                   **changes: Any) -> Path:
    columns = {k: v for k, v in {**jetclass_columns(), **changes}.items() if k not in drop}
    return write_tree(tmp_path / name, columns, JETCLASS_TYPES)


def constituents(table, jet: int) -> dict[str, np.ndarray]:
    lo, hi = table.offsets[jet], table.offsets[jet + 1]
    return {k: v[lo:hi] for k, v in table.tracks.items()}


# --- b-tagging dataset ------------------------------------------------------------------


def test_btag_jets_labels_and_layout(tmp_path: Path) -> None:
    table = read_btag_root(write_btag(tmp_path), max_tracks=3)
    assert table.n_jets == 4
    assert set(table.jets) == set(JET_COLUMNS) and set(table.tracks) == set(CONSTITUENT_FIELDS)
    assert all(table.jets[k].dtype == t for k, t in JET_COLUMNS.items())
    assert all(table.tracks[k].dtype == t for k, t in CONSTITUENT_FIELDS.items())
    np.testing.assert_array_equal(table.jets["label"], [2, 0, 1, 1])  # flav 5, 0, 4, 4
    np.testing.assert_array_equal(table.jets["n_constituents"], [3, 1, 0, 3])
    np.testing.assert_array_equal(table.offsets, [0, 3, 4, 4, 7])
    np.testing.assert_array_equal(table.jets["event"], [0, 1, 2, 3])  # entry number
    np.testing.assert_array_equal(table.jets["jet_mass"], np.float32([12.5, 6.0, 4.0, 8.0]))
    np.testing.assert_array_equal(table.jets["jet_pt"], np.float32([80, 40, 30, 55]))
    np.testing.assert_array_equal(table.source, ["btag_sample"] * 4)


def test_btag_tracks_pt_ordered_and_truncated(tmp_path: Path) -> None:
    table = read_btag_root(write_btag(tmp_path), max_tracks=3)
    jet0 = constituents(table, 0)
    # input order pT 2, 10, 5, 1 -> kept 10, 5, 2 (the 1 GeV track is dropped)
    np.testing.assert_array_equal(jet0["pt"], np.float32([10, 5, 2]))
    np.testing.assert_array_equal(jet0["deta"], np.float32([-0.125, 0.0625, 0.125]))
    # mm; geometric sign (0.01, -0.25, 0.5 and -0.02, 0.75, 1.0) → lifetime sign w.r.t. the jet
    d0, z0 = lifetime_sign(np.array([0.01, -0.25, 0.5]), np.array([-0.02, 0.75, 1.0]),
                           jet0["dphi"].astype(np.float64), np.full(3, table.jets["jet_eta"][0]))
    np.testing.assert_array_equal(jet0["d0"], d0.astype(np.float32))
    np.testing.assert_array_equal(jet0["z0"], z0.astype(np.float32))
    np.testing.assert_array_equal(np.abs(jet0["d0"]), np.float32([0.01, 0.25, 0.5]))
    np.testing.assert_array_equal(jet0["d0_err"], np.float32([0.01, 0.03, 0.02]))
    np.testing.assert_array_equal(jet0["z0_err"], np.float32([0.2, 0.3, 0.1]))
    np.testing.assert_array_equal(jet0["charge"], [-1, 1, 1])
    np.testing.assert_array_equal(jet0["pid"], [1, 3, 3])  # h-, h+, h+
    np.testing.assert_array_equal(table.tracks["origin"], [-1] * 7)  # no origin branch
    np.testing.assert_array_equal(constituents(table, 3)["pt"], np.float32([3, 2, 1]))
    full = read_btag_root(write_btag(tmp_path, "all.root"), max_tracks=15)
    np.testing.assert_array_equal(full.jets["n_constituents"], [4, 1, 0, 3])
    np.testing.assert_array_equal(constituents(full, 0)["pt"], np.float32([10, 5, 2, 1]))


def test_btag_dphi_wraps_across_pi(tmp_path: Path) -> None:
    table = read_btag_root(write_btag(tmp_path))
    # jet 0 at phi 3.0: tracks at 2.75, 3.0625, -3.1 (-> +2pi), 3.0; jet 1 at -3.0: track at 3.1
    np.testing.assert_allclose(constituents(table, 0)["dphi"], [-0.25, 0.0625, 2 * np.pi - 6.1, 0.0],
                               atol=1e-6)
    np.testing.assert_allclose(constituents(table, 1)["dphi"], [6.1 - 2 * np.pi], atol=1e-6)
    assert np.all((table.tracks["dphi"] >= -np.pi) & (table.tracks["dphi"] < np.pi))


def test_btag_vertices_renumbered_per_jet(tmp_path: Path) -> None:
    table = read_btag_root(write_btag(tmp_path))
    # jet 0, pT order: raw 0, 5, 2, 2 -> 0, 1, 2, 2; jet 3: raw 7, 0, 7 -> 1, 0, 1
    np.testing.assert_array_equal(constituents(table, 0)["vertex"], [0, 1, 2, 2])
    np.testing.assert_array_equal(constituents(table, 1)["vertex"], [0])
    np.testing.assert_array_equal(constituents(table, 3)["vertex"], [1, 0, 1])
    truncated = read_btag_root(write_btag(tmp_path, "t.root"), max_tracks=2)
    np.testing.assert_array_equal(constituents(truncated, 0)["vertex"], [0, 1])


def test_renumber_vertices_first_appearance_and_unknown() -> None:
    raw = np.array([3, 0, 9, 3, -1, 4, 4, 0, 2, 8])
    jet = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(renumber_vertices(raw, jet), [1, 0, 2, 1, -1, 1, 1, 0, 1, 2])
    assert renumber_vertices(np.array([], dtype=int), np.array([], dtype=int)).size == 0


def test_btag_event_number_branch_used(tmp_path: Path) -> None:
    columns = btag_columns()
    table = read_btag_root(write_tree(tmp_path / "ev.root", columns, BTAG_TYPES))
    np.testing.assert_array_equal(table.jets["event"], [100, 100, 101, 102])


@pytest.mark.parametrize("dataset", ["btag", "jetclass"])
def test_readers_read_only_needed_branches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           dataset: str) -> None:
    requested: list[str] = []
    original = uproot.TTree.arrays

    def spy(self, expressions=None, *args, **kwargs):
        requested.extend(expressions)
        return original(self, expressions, *args, **kwargs)

    monkeypatch.setattr(uproot.TTree, "arrays", spy)
    if dataset == "btag":
        read_btag_root(write_btag(tmp_path))
        assert sorted(requested) == sorted(BTAG_ROOT_BRANCHES)
        assert "n_trks" not in requested
    else:
        read_jetclass_root(write_jetclass(tmp_path))
        assert sorted(requested) == sorted(JETCLASS_BRANCHES)
        assert not {"jet_sdmass", "part_pz", "part_energy", "aux_genpart_pt"} & set(requested)


def test_btag_missing_branches_named(tmp_path: Path) -> None:
    path = write_btag(tmp_path, drop=("trk_vtx_index", "jet_flav"))
    with pytest.raises(JetFileError, match=r"lacks branch\(es\) \['jet_flav', 'trk_vtx_index'\]") as err:
        read_btag_root(path)
    assert str(path) in str(err.value)


def test_btag_unknown_flavour_code(tmp_path: Path) -> None:
    with pytest.raises(JetFileError, match=r"jet_flav values \[15\]"):
        read_btag_root(write_btag(tmp_path, jet_flav=[5, 0, 15, 4]))


def test_btag_inconsistent_track_lengths(tmp_path: Path) -> None:
    with pytest.raises(JetFileError, match="trk_charge"):
        read_btag_root(write_btag(tmp_path, trk_charge=[[1.0], [-1.0], [], [1.0, -1.0, -1.0]]))


def test_btag_rejects_max_tracks_below_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_tracks"):
        read_btag_root(write_btag(tmp_path), max_tracks=0)


# --- JetClass ---------------------------------------------------------------------------


def test_jetclass_jets_labels_and_mass(tmp_path: Path) -> None:
    table = read_jetclass_root(write_jetclass(tmp_path))
    assert BOOSTED_LABEL_NAMES == ("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl")
    np.testing.assert_array_equal(table.jets["label"], [1, 9, 0])  # Hbb, Tbl, QCD
    np.testing.assert_array_equal(table.jets["n_constituents"], [5, 6, 1])
    np.testing.assert_array_equal(table.offsets, [0, 5, 11, 12])
    np.testing.assert_array_equal(table.jets["event"], [0, 1, 2])
    np.testing.assert_array_equal(table.source, ["HToBB_120"] * 3)
    # four-vector mass, not jet_sdmass (120, 75, 30): sqrt(500^2 - 300^2) = 400 at eta 0
    assert table.jets["jet_mass"][0] == 400.0
    np.testing.assert_allclose(table.jets["jet_mass"][1], JET1_MASS, rtol=1e-5)
    expected2 = math.sqrt(2000.0**2 - (700.0 * math.cosh(np.float32(0.8))) ** 2)
    np.testing.assert_allclose(table.jets["jet_mass"][2], expected2, rtol=1e-6)


def test_jetclass_constituents_ordered_truncated_and_converted(tmp_path: Path) -> None:
    table = read_jetclass_root(write_jetclass(tmp_path), max_constituents=4)
    np.testing.assert_array_equal(table.jets["n_constituents"], [4, 4, 1])
    jet0 = constituents(table, 0)
    # pt = hypot(px, py) = 5, 10, 2, 1, 0.5 -> 10, 5, 2, 1 (0.5 dropped)
    np.testing.assert_allclose(jet0["pt"], [10, 5, 2, 1], rtol=1e-7)
    # jet_eta = 0 <= 0: JetClass stored -(eta - jet_eta), so the sign is flipped back
    np.testing.assert_array_equal(jet0["deta"], np.float32([0.25, -0.125, -0.0625, -0.375]))
    np.testing.assert_allclose(jet0["dphi"], [-0.5, 3.2 - 2 * np.pi, 0.25, 2 * np.pi - 3.25], atol=1e-6)
    # geometric d0 (0, -0.05, 0.125, 0.3) mm: d0·sin(dphi) > 0 for all three tracks → positive
    np.testing.assert_array_equal(jet0["d0"], np.float32([0.0, 0.05, 0.125, 0.3]))
    np.testing.assert_array_equal(jet0["d0_err"], np.float32([0.0, 0.01, 0.02, 0.03]))
    np.testing.assert_array_equal(jet0["z0"], np.float32([0.0, 0.5, 0.75, 1.0]))  # jet_eta 0: sign +
    np.testing.assert_array_equal(jet0["z0_err"], np.float32([0.0, 0.05, 0.06, 0.07]))
    np.testing.assert_array_equal(jet0["pid"], [0, 1, 5, 6])  # photon, h-, e+, mu-
    np.testing.assert_array_equal(jet0["charge"], [0, -1, 1, -1])
    jet1 = constituents(table, 1)  # jet_eta -1: flipped too
    np.testing.assert_array_equal(jet1["deta"], np.float32([0.2, -0.1, -0.3, 0.0]))
    np.testing.assert_array_equal(constituents(table, 2)["deta"], np.float32([-0.125]))  # eta 0.8: as stored
    np.testing.assert_array_equal(table.tracks["vertex"], [-1] * 9)
    np.testing.assert_array_equal(table.tracks["origin"], [-1] * 9)


def test_jetclass_pid_classes(tmp_path: Path) -> None:
    table = read_jetclass_root(write_jetclass(tmp_path))
    np.testing.assert_array_equal(constituents(table, 0)["pid"], [0, 1, 5, 6, 2])
    # mu+, e-, h+, then unflagged charged +1 / -1 (hadrons by charge) and unflagged neutral
    np.testing.assert_array_equal(constituents(table, 1)["pid"], [7, 4, 3, 3, 1, 2])
    np.testing.assert_array_equal(constituents(table, 2)["pid"], [3])


@pytest.mark.parametrize("labels", [
    {"label_Hbb": [1, 0, 0], "label_Hcc": [1, 0, 0]},  # two classes
    {"label_Hbb": [0, 0, 0]},  # none
    {"label_QCD": [0.0, 0.0, 0.5]},  # not 0/1
])
def test_jetclass_non_one_hot_label(tmp_path: Path, labels: dict[str, list]) -> None:
    path = write_jetclass(tmp_path, **labels)
    with pytest.raises(JetFileError, match="not one-hot") as err:
        read_jetclass_root(path)
    assert str(path) in str(err.value)


def test_jetclass_missing_branches_named(tmp_path: Path) -> None:
    with pytest.raises(JetFileError, match=r"\['label_Tbl', 'part_dzerr'\]"):
        read_jetclass_root(write_jetclass(tmp_path, drop=("part_dzerr", "label_Tbl")))


# --- file-level errors and dispatch -----------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    for reader in (read_btag_root, read_jetclass_root):
        with pytest.raises(JetFileError, match="not found") as err:
            reader(tmp_path / "absent.root")
        assert "absent.root" in str(err.value)


def test_not_a_root_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.root"
    path.write_bytes(b"PAR1 definitely not ROOT" * 20)
    with pytest.raises(JetFileError, match="not a readable ROOT file"):
        read_jetclass_root(path)


def test_missing_tree(tmp_path: Path) -> None:
    path = write_tree(tmp_path / "other.root", {"jet_pt": [1.0]}, {"jet_pt": "float32"}, tree="events")
    with pytest.raises(JetFileError, match=r"no tree 'tree' \(objects in the file: \['events'\]\)") as err:
        read_btag_root(path)
    assert str(path) in str(err.value)


def test_truncated_file(tmp_path: Path) -> None:
    path = write_jetclass(tmp_path)
    data = path.read_bytes()
    cut = tmp_path / "cut.root"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(JetFileError, match=r"cut\.root.*truncated"):
        read_jetclass_root(cut)


def test_rntuple_is_read_like_a_ttree(tmp_path: Path) -> None:
    columns = btag_columns()
    columns.pop("event_number")
    path = tmp_path / "rn.root"
    with uproot.recreate(path) as f:
        f["tree"] = {k: ak.Array(v) for k, v in columns.items()}
    table = read_btag_root(path, max_tracks=3)
    np.testing.assert_array_equal(table.jets["label"], [2, 0, 1, 1])
    np.testing.assert_array_equal(constituents(table, 0)["vertex"], [0, 1, 2])


def test_read_source_dispatch(tmp_path: Path) -> None:
    btag = read_source("btag-root", write_btag(tmp_path), max_constituents=2)
    np.testing.assert_array_equal(btag.jets["n_constituents"], [2, 1, 0, 2])
    jetclass = read_source("jetclass-root", write_jetclass(tmp_path), max_constituents=3)
    np.testing.assert_array_equal(jetclass.jets["n_constituents"], [3, 3, 1])
    with pytest.raises(ValueError, match="'jetclass'"):
        read_source("jetclass", tmp_path / "x.root", 10)


def test_btag_root_source_through_the_jets_stage(tmp_path: Path) -> None:
    """source: btag-root → the same Parquet schema and splits as generated jets."""
    from jetfm.config import stage_params, validate_config
    from jetfm.jets import build_jet_sets, read_jet_table
    from jetfm.jets.jet_sets import read_metadata

    source = write_btag(tmp_path)
    cfg = validate_config({"samples": {"btag": {"source": "btag-root", "path": str(tmp_path / "*.root"),
                                                "jets": {"max_tracks": 2}}}})
    params = stage_params(cfg, "jets", sample="btag")
    assert "detector" not in params and params["source"] == "btag-root"
    outs = {s: tmp_path / f"{s}.parquet" for s in ("train", "val", "test")}
    sizes = build_jet_sets([source], params, outs, progress=False)
    assert sum(sizes.values()) == 4
    tables = [read_jet_table(p) for p in outs.values()]
    labels = sorted(int(x) for t in tables for x in t.jets["label"])
    assert labels == [0, 1, 1, 2]
    assert max(int(np.diff(t.offsets).max(initial=0)) for t in tables) == 2  # max_tracks
    meta = read_metadata(outs["train"])
    assert meta["label_names"] == ["light", "c", "b"] and meta["inputs"] == [source.name]
