"""Readers for two public real-data ROOT jet datasets, converted to :class:`JetTable`.

Both readers are vectorised (uproot + awkward + numpy), read only the branches they need,
keep at most N constituents per jet (the leading ones in pT, in descending pT order), set
``source`` to the file stem and ``event`` to a per-file running index (the caller splits
train/val/test on it). Anything wrong with the file raises :class:`JetFileError`.

b-tagging / secondary-vertex dataset (``read_btag_root``, source ``btag-root``)
---------------------------------------------------------------------------------
Shlomi et al., "Secondary vertex finding in jets with neural networks" (EPJC 81 (2021) 540),
and its successor "Dataset for flavour tagging R&D" (zenodo.org/records/13350327, "heavily
based on the Secondary Vertex Finding in Jets Dataset"), used by the MPMv2 paper
("Is tokenization needed for masked particle modelling?"). Facts relied on, with sources:

- TTree ``tree``, one row per jet: scalar ``jet_*`` branches, jagged ``trk_*`` branches
  (hadarser/SetToGraphPaper dataloaders/jets_loader.py reads ``f['tree']`` with one jet per
  entry; mattcleigh/jetssl src/setup/root_utils.py ``read_shlomi_file`` reads ``f["tree"]``,
  jets as flat columns and tracks as awkward lists).
- ``jet_flav``: 0 light, 4 c, 5 b (jetssl scripts/make_shlomi.py: "The labels are 0, 4, 5,
  change them to 0, 1, 2"; the Zenodo record labels b/c/light jets by hadron matching).
  jetfm labels: 0 light, 1 c, 2 b. Any other code is an error.
- ``trk_vtx_index``: per-jet truth vertex index of each track; index 0 is the primary
  vertex and 1..n are the secondary vertices (jetssl plotting/vtx_perf.py takes the maximum
  index in a jet as its number of secondary vertices). Negative indices are kept as -1
  (unknown). Here: 0 stays 0, the other indices are renumbered 1..n per jet in order of
  first appearance among the kept, pT-ordered tracks.
- Units: GeV and mm. The samples are Delphes fast simulation (Zenodo record: Pythia8 +
  Delphes, ATLAS-like), whose lengths are mm (delphes modules/ParticlePropagator.cc stores
  ``D0 = d0 * 1.0E3`` from metres); jet and track pT are GeV (JetSSL-Lite
  scripts/check_data.py labels them "[GeV]", and the SetToGraph normalisation constants
  give mean track pT 5.2, jet pT 76, jet mass 9.4). ``BTAG_MOMENTUM_TO_GEV`` and
  ``BTAG_LENGTH_TO_MM`` hold the (unit) factors.
- ``trk_d0``/``trk_z0`` are the smeared perigee parameters with their geometric sign
  (Delphes: d0 = (x·py − y·px)/pT), not lifetime-signed; the reader converts them to
  jetfm's lifetime-signed convention (``jetfm.detector.lifetime_sign``), as for both readers.
- No track-origin branch exists (the Zenodo branch list has none; jetssl derives its track
  type from ``trk_prod_z``, ``hadron_pdgid`` and ``hadron_z``), so ``origin`` is -1 for
  every track. No event-number branch is known either: ``event`` is the entry number
  unless one of ``BTAG_EVENT_BRANCHES`` is present.
- ``pid``: tracks only, 3 for positive and 1 for negative charge (2 for charge 0).

JetClass (``read_jetclass_root``, source ``jetclass-root``)
-----------------------------------------------------------
Qu, Li, Qian, "Particle Transformer for jet tagging" (2022), zenodo.org/record/6619768.

- TTree ``tree``, one row per jet; branch names and types as in jet-universe/
  particle_transformer notebooks/JetClass101.ipynb and data/JetClass/JetClass_full.yaml;
  label order [QCD, Hbb, Hcc, Hgg, H4q, Hqql, Zqq, Wqq, Tbqq, Tbl] from the same yaml.
- ``part_deta`` is stored as ``sign(jet_eta) * (eta - jet_eta)`` with sign -1 for
  ``jet_eta <= 0`` (jet-universe/jetclass_generation makeNtuples.C); the reader undoes the
  flip so that ``deta = eta - jet_eta`` as everywhere in jetfm. ``part_dphi`` is
  ``Phi_mpi_pi(phi - jet_phi)``.
- ``part_d0val``/``part_dzval``/``part_d0err``/``part_dzerr`` are Delphes
  ParticleFlowCandidate ``D0``/``DZ``/``ErrorD0``/``ErrorDZ`` (makeNtuples.C), in mm, not
  lifetime-signed; neutral particles carry 0.
- The ``part_is*`` flags come from |PDG id| (jetclass_generation postprocessing/rename.py:
  charged hadron = 211, 321 or 2212; neutral hadron = 0; photon 22; e 11; mu 13). A charged
  particle with another id (e.g. a Sigma baryon) has no flag set; it is classed as a
  charged hadron by its charge.
- Energies and momenta in GeV (Delphes). ``jet_mass`` is the four-vector mass from
  (``jet_energy``, ``jet_pt``, ``jet_eta``), not ``jet_sdmass``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from jetfm.contract import BOOSTED_LABEL_NAMES, CONSTITUENT_FIELDS, JET_COLUMNS
from jetfm.detector import lifetime_sign
from jetfm.jets.pairs import wrap_phi
from jetfm.jets.parquet_io import JetFileError, JetTable

TREE_NAME = "tree"

BTAG_JET_BRANCHES = ("jet_pt", "jet_eta", "jet_phi", "jet_M", "jet_flav")
BTAG_TRACK_BRANCHES = ("trk_pt", "trk_eta", "trk_phi", "trk_d0", "trk_d0err", "trk_z0", "trk_z0err",
                       "trk_charge", "trk_vtx_index")
BTAG_ROOT_BRANCHES = BTAG_JET_BRANCHES + BTAG_TRACK_BRANCHES
# Optional: used for ``event`` when present (none is known in the public files).
BTAG_EVENT_BRANCHES = ("event_number", "eventNumber")
BTAG_FLAVOUR_TO_LABEL = {0: 0, 4: 1, 5: 2}
BTAG_MOMENTUM_TO_GEV = 1.0
BTAG_LENGTH_TO_MM = 1.0

# JetClass stores one flag per class, in the order of the boosted labels
JETCLASS_LABEL_BRANCHES = tuple(f"label_{name}" for name in BOOSTED_LABEL_NAMES)
JETCLASS_JET_BRANCHES = ("jet_pt", "jet_eta", "jet_phi", "jet_energy")
JETCLASS_PARTICLE_BRANCHES = ("part_px", "part_py", "part_deta", "part_dphi", "part_d0val", "part_d0err",
                              "part_dzval", "part_dzerr", "part_charge", "part_isChargedHadron",
                              "part_isNeutralHadron", "part_isPhoton", "part_isElectron", "part_isMuon")
JETCLASS_BRANCHES = JETCLASS_JET_BRANCHES + JETCLASS_LABEL_BRANCHES + JETCLASS_PARTICLE_BRANCHES
JETCLASS_MOMENTUM_TO_GEV = 1.0
JETCLASS_LENGTH_TO_MM = 1.0

SOURCES = ("btag-root", "jetclass-root")

# jetfm's 8 particle classes (parquet_io / docs/data-formats.md).
PHOTON, HADRON_NEG, HADRON_NEUTRAL, HADRON_POS, ELECTRON, POSITRON, MUON_NEG, MUON_POS = range(8)


def _find_tree(path: Path, handle: Any) -> Any:
    if TREE_NAME not in handle:
        present = sorted({key.split(";")[0] for key in handle.keys(recursive=False)})
        raise JetFileError(f"{path}: no tree {TREE_NAME!r} (objects in the file: {present})")
    tree = handle[TREE_NAME]
    if not hasattr(tree, "arrays"):
        raise JetFileError(f"{path}: {TREE_NAME!r} is a {handle.classname_of(TREE_NAME)}, not a tree")
    return tree


def _read_tree(path: str | Path, branches: Sequence[str],
               optional: Sequence[str] = ()) -> tuple[ak.Array, list[str]]:
    """The named branches of ``tree`` in a ROOT file, and which ``optional`` ones it has."""
    path = Path(path)
    if not path.is_file():
        raise JetFileError(f"ROOT file not found: {path}")
    try:
        handle = uproot.open(path)
    except (OSError, ValueError) as exc:
        raise JetFileError(f"{path}: not a readable ROOT file ({exc})") from exc
    with handle:
        try:
            tree = _find_tree(path, handle)
            names = set(tree.keys())
            missing = [b for b in branches if b not in names]
            if missing:
                raise JetFileError(f"{path}: tree {TREE_NAME!r} lacks branch(es) {missing}")
            present_optional = [b for b in optional if b in names]
            arrays = tree.arrays([*branches, *present_optional], library="ak")
        except JetFileError:
            raise
        except Exception as exc:  # uproot surfaces damaged files as many exception types
            raise JetFileError(f"{path}: tree {TREE_NAME!r} cannot be read, truncated? ({exc})") from exc
    return arrays, present_optional


def _check_jagged(path: Path, arrays: ak.Array, branches: Sequence[str]) -> np.ndarray:
    """Per-jet multiplicity, which every listed jagged branch must share."""
    def num(name: str) -> np.ndarray:
        try:
            return ak.to_numpy(ak.num(arrays[name], axis=1))
        except np.exceptions.AxisError as exc:
            raise JetFileError(f"{path}: branch {name!r} is not a list per jet") from exc

    counts = num(branches[0])
    for name in branches[1:]:
        if not np.array_equal(num(name), counts):
            raise JetFileError(f"{path}: branch {name!r} has a different length per jet than {branches[0]!r}")
    return counts


def _leading(arrays: ak.Array, pt: ak.Array, names: Sequence[str],
             max_n: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Flat values of ``names`` for the ``max_n`` leading-pT entries per jet (descending pT).

    Returns the values, the kept pT and the number kept per jet.
    """
    order = ak.argsort(pt, axis=1, ascending=False, stable=True)[:, :max_n]
    values = {n: ak.to_numpy(ak.flatten(arrays[n][order], axis=1)) for n in names}
    return values, ak.to_numpy(ak.flatten(pt[order], axis=1)), ak.to_numpy(ak.num(order, axis=1))


def _table(name: str, jets: dict[str, Any], tracks: dict[str, Any], counts: np.ndarray) -> JetTable:
    n_jets = len(counts)
    return JetTable(
        jets={k: np.asarray(jets[k]).astype(t) for k, t in JET_COLUMNS.items()},
        source=np.full(n_jets, name, dtype=object),
        tracks={k: np.asarray(tracks[k]).astype(t) for k, t in CONSTITUENT_FIELDS.items()},
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
    )


def _charged_class(charge: np.ndarray) -> np.ndarray:
    return np.where(charge > 0, HADRON_POS, np.where(charge < 0, HADRON_NEG, HADRON_NEUTRAL))


def renumber_vertices(raw: np.ndarray, jet: np.ndarray) -> np.ndarray:
    """Per-jet vertex numbers: 0 stays 0 (primary), others 1..n by first appearance, <0 → -1.

    ``raw`` and ``jet`` are flat per-track arrays grouped by jet (``jet`` non-decreasing).
    """
    raw = np.asarray(raw, dtype=np.int64)
    jet = np.asarray(jet, dtype=np.int64)
    out = np.where(raw < 0, -1, 0).astype(np.int64)
    secondary = np.flatnonzero(raw > 0)
    if secondary.size:
        pairs = np.stack([jet[secondary], raw[secondary]], axis=1)
        _, first, inverse = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
        # Groups sorted by first appearance are also grouped by jet (tracks are jet-ordered).
        by_first = np.argsort(first, kind="stable")
        group_jet = jet[secondary[first[by_first]]]
        rank = np.empty(len(first), dtype=np.int64)
        rank[by_first] = np.arange(len(first)) - np.searchsorted(group_jet, group_jet, side="left") + 1
        out[secondary] = rank[inverse.reshape(-1)]
    return out


def read_btag_root(path: str | Path, max_tracks: int = 15) -> JetTable:
    """Read a b-tagging / secondary-vertex ROOT file (one jet per entry) as a JetTable."""
    if max_tracks < 1:
        raise ValueError(f"max_tracks must be at least 1, got {max_tracks}")
    path = Path(path)
    arrays, event_branches = _read_tree(path, BTAG_ROOT_BRANCHES, BTAG_EVENT_BRANCHES)
    _check_jagged(path, arrays, BTAG_TRACK_BRANCHES)
    n_jets = len(arrays)

    flav = np.rint(ak.to_numpy(arrays["jet_flav"])).astype(np.int64)
    unknown = sorted(set(np.unique(flav).tolist()) - set(BTAG_FLAVOUR_TO_LABEL))
    if unknown:
        raise JetFileError(f"{path}: jet_flav values {unknown} are not 0 (light), 4 (c) or 5 (b)")
    label = np.select([flav == code for code in BTAG_FLAVOUR_TO_LABEL], list(BTAG_FLAVOUR_TO_LABEL.values()))

    names = [b for b in BTAG_TRACK_BRANCHES if b != "trk_pt"]
    trk, pt, counts = _leading(arrays, arrays["trk_pt"], names, max_tracks)
    jet = np.repeat(np.arange(n_jets), counts)
    jet_eta = ak.to_numpy(arrays["jet_eta"]).astype(np.float64)
    jet_phi = ak.to_numpy(arrays["jet_phi"]).astype(np.float64)
    charge = np.rint(trk["trk_charge"]).astype(np.int64)
    unknown_track = np.full(len(jet), -1)

    event = (ak.to_numpy(arrays[event_branches[0]]).astype(np.int64) if event_branches
             else np.arange(n_jets, dtype=np.int64))
    jets = {
        "jet_pt": ak.to_numpy(arrays["jet_pt"]) * BTAG_MOMENTUM_TO_GEV,
        "jet_eta": jet_eta,
        "jet_phi": jet_phi,
        "jet_mass": ak.to_numpy(arrays["jet_M"]) * BTAG_MOMENTUM_TO_GEV,
        "n_constituents": counts,
        "label": label,
        "event": event,
    }
    dphi = wrap_phi(trk["trk_phi"] - jet_phi[jet])
    d0, z0 = lifetime_sign(trk["trk_d0"] * BTAG_LENGTH_TO_MM, trk["trk_z0"] * BTAG_LENGTH_TO_MM,
                           dphi, jet_eta[jet])
    tracks = {
        "pt": pt * BTAG_MOMENTUM_TO_GEV,
        "deta": trk["trk_eta"] - jet_eta[jet],
        "dphi": dphi,
        "d0": d0,
        "z0": z0,
        "d0_err": trk["trk_d0err"] * BTAG_LENGTH_TO_MM,
        "z0_err": trk["trk_z0err"] * BTAG_LENGTH_TO_MM,
        "pid": _charged_class(charge),
        "charge": charge,
        "vertex": renumber_vertices(np.rint(trk["trk_vtx_index"]), jet),
        "origin": unknown_track,
    }
    return _table(path.stem, jets, tracks, counts)


def _jetclass_pid(charge: np.ndarray, flags: dict[str, np.ndarray]) -> np.ndarray:
    """The 8-class particle id from the JetClass ``part_is*`` flags and the charge."""
    pid = _charged_class(charge)  # charged/neutral hadrons, and particles with no flag set
    pid = np.where(flags["part_isNeutralHadron"] != 0, HADRON_NEUTRAL, pid)
    pid = np.where(flags["part_isPhoton"] != 0, PHOTON, pid)
    pid = np.where(flags["part_isElectron"] != 0, np.where(charge > 0, POSITRON, ELECTRON), pid)
    return np.where(flags["part_isMuon"] != 0, np.where(charge > 0, MUON_POS, MUON_NEG), pid)


def read_jetclass_root(path: str | Path, max_constituents: int = 128) -> JetTable:
    """Read a JetClass ROOT file (one jet per entry) as a JetTable."""
    if max_constituents < 1:
        raise ValueError(f"max_constituents must be at least 1, got {max_constituents}")
    path = Path(path)
    arrays, _ = _read_tree(path, JETCLASS_BRANCHES)
    _check_jagged(path, arrays, JETCLASS_PARTICLE_BRANCHES)
    n_jets = len(arrays)

    onehot = np.stack([ak.to_numpy(arrays[b]).astype(np.float64) for b in JETCLASS_LABEL_BRANCHES], axis=1)
    bad = np.flatnonzero(~(np.all((onehot == 0) | (onehot == 1), axis=1) & (onehot.sum(axis=1) == 1)))
    if bad.size:
        raise JetFileError(f"{path}: label_* branches are not one-hot at {bad.size} entries, "
                           f"first {bad[:5].tolist()}")

    pt = np.hypot(arrays["part_px"], arrays["part_py"])
    names = [b for b in JETCLASS_PARTICLE_BRANCHES if b not in ("part_px", "part_py")]
    part, kept_pt, counts = _leading(arrays, pt, names, max_constituents)
    jet = np.repeat(np.arange(n_jets), counts)

    jet_pt = ak.to_numpy(arrays["jet_pt"]).astype(np.float64) * JETCLASS_MOMENTUM_TO_GEV
    jet_eta = ak.to_numpy(arrays["jet_eta"]).astype(np.float64)
    jet_energy = ak.to_numpy(arrays["jet_energy"]).astype(np.float64) * JETCLASS_MOMENTUM_TO_GEV
    p = jet_pt * np.cosh(jet_eta)
    jet_mass = np.sqrt(np.maximum((jet_energy - p) * (jet_energy + p), 0.0))
    # Undo JetClass's sign(jet_eta) flip of part_deta (sign -1 for jet_eta <= 0).
    eta_sign = np.where(jet_eta > 0, 1.0, -1.0)
    charge = np.rint(part["part_charge"]).astype(np.int64)
    unknown = np.full(len(jet), -1)

    jets = {
        "jet_pt": jet_pt,
        "jet_eta": jet_eta,
        "jet_phi": ak.to_numpy(arrays["jet_phi"]),
        "jet_mass": jet_mass,
        "n_constituents": counts,
        "label": np.argmax(onehot, axis=1),
        "event": np.arange(n_jets, dtype=np.int64),
    }
    dphi = wrap_phi(part["part_dphi"].astype(np.float64))
    d0, z0 = lifetime_sign(part["part_d0val"] * JETCLASS_LENGTH_TO_MM,
                           part["part_dzval"] * JETCLASS_LENGTH_TO_MM,
                           dphi, jet_eta[jet])
    tracks = {
        "pt": kept_pt * JETCLASS_MOMENTUM_TO_GEV,
        "deta": part["part_deta"] * eta_sign[jet],
        "dphi": dphi,
        "d0": d0,
        "z0": z0,
        "d0_err": part["part_d0err"] * JETCLASS_LENGTH_TO_MM,
        "z0_err": part["part_dzerr"] * JETCLASS_LENGTH_TO_MM,
        "pid": _jetclass_pid(charge, part),
        "charge": charge,
        "vertex": unknown,
        "origin": unknown,
    }
    return _table(path.stem, jets, tracks, counts)


def read_source(source: str, path: str | Path, max_constituents: int) -> JetTable:
    """Read ``path`` with the reader for ``source`` ('btag-root' or 'jetclass-root')."""
    if source == "btag-root":
        return read_btag_root(path, max_tracks=max_constituents)
    if source == "jetclass-root":
        return read_jetclass_root(path, max_constituents=max_constituents)
    raise ValueError(f"unknown jet source {source!r}; expected one of {list(SOURCES)}")
