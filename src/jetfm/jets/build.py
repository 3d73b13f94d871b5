"""Events → jets with tracks and truth labels (rule jets, `jetfm jets`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import vector
from tqdm import tqdm

from jetfm.detector import impact_parameters, measure_tracks
from jetfm.generate.root_io import flat_particles, read_events
from jetfm.jets import truth
from jetfm.jets.cluster import cluster_antikt, clustering_input, visible_mask
from jetfm.jets.parquet_io import JetTable, write_jet_table
from jetfm.provenance import provenance

vector.register_awkward()

SPLITS = ("train", "val", "test")
# The particle branches the jets stage reads (m, mother2 and t are not needed).
JETS_STAGE_FIELDS = ("no", "id", "status", "mother1", "px", "py", "pz", "e", "charge", "x", "y", "z")


def _file_seed(base: int, path: Path) -> int:
    return int.from_bytes(hashlib.sha256(f"{base}:{path.name}".encode()).digest()[:8], "little")


def _wrap(dphi: np.ndarray) -> np.ndarray:
    return (dphi + np.pi) % (2 * np.pi) - np.pi


def jets_from_events(events: ak.Array, jets_cfg: dict[str, Any], det: dict[str, Any],
                     rng: np.random.Generator) -> JetTable:
    """Cluster, measure tracks, associate them to jets and label everything, for one file."""
    n_events = len(events)
    flat, event_of = flat_particles(events)
    counts = np.bincount(event_of, minlength=n_events)
    index = truth.RecordIndex(event_of, flat["no"])

    visible = clustering_input(flat, counts, visible_mask(flat["status"], flat["id"]))
    jets = cluster_antikt(visible, jets_cfg["radius"], jets_cfg["pt_min_gev"], jets_cfg["abs_eta_max"])
    n_jets_event = ak.num(jets).to_numpy()
    jet_event = np.repeat(np.arange(n_events), n_jets_event)
    jet_offset = np.concatenate([[0], np.cumsum(n_jets_event)])
    fj = ak.flatten(jets)
    jet_pt, jet_eta, jet_phi, jet_mass = (ak.to_numpy(getattr(fj, a)) for a in ("pt", "eta", "phi", "mass"))
    jet_px, jet_py, jet_pz = (ak.to_numpy(getattr(fj, a)) for a in ("px", "py", "pz"))

    # --- tracks: charged final-state particles through the detector --------------------
    charged = np.flatnonzero((flat["status"] > 0) & (flat["charge"] != 0))
    p4 = vector.array({"px": flat["px"][charged], "py": flat["py"][charged],
                       "pz": flat["pz"][charged], "E": flat["e"][charged]})
    t_pt, t_eta, t_phi = np.asarray(p4.pt), np.asarray(p4.eta), np.asarray(p4.phi)
    t_event = event_of[charged]

    # Nearest jet in ΔR (within track_match_dr) owns the track. Rows are event-ordered.
    t_counts = np.bincount(t_event, minlength=n_events)
    eta_j = ak.unflatten(jet_eta, n_jets_event)
    phi_j = ak.unflatten(jet_phi, n_jets_event)
    eta_t = ak.unflatten(t_eta, t_counts)
    phi_t = ak.unflatten(t_phi, t_counts)
    pairs_eta = ak.cartesian([eta_t, eta_j], nested=True)
    pairs_phi = ak.cartesian([phi_t, phi_j], nested=True)
    dr = np.hypot(pairs_eta["0"] - pairs_eta["1"], _wrap(pairs_phi["0"] - pairs_phi["1"]))
    best = ak.argmin(dr, axis=2)
    best_dr = ak.to_numpy(ak.flatten(ak.fill_none(ak.min(dr, axis=2), np.inf)))
    best_local = ak.to_numpy(ak.flatten(ak.fill_none(best, -1)))
    matched = best_dr < jets_cfg["track_match_dr"]
    sel = np.flatnonzero(matched)
    t_jet = jet_offset[t_event[sel]] + best_local[matched]
    rows = charged[sel]

    px, py, pz = flat["px"][rows], flat["py"][rows], flat["pz"][rows]
    x, y, z = flat["x"][rows], flat["y"][rows], flat["z"][rows]
    true_d0, true_z0 = impact_parameters(
        x.astype(np.float64), y.astype(np.float64), z.astype(np.float64),
        px.astype(np.float64), py.astype(np.float64), pz.astype(np.float64),
        jet_px[t_jet], jet_py[t_jet], jet_pz[t_jet])
    meas = measure_tracks(t_pt[sel], t_eta[sel], true_d0, true_z0, det, rng)
    rows, t_jet = rows[meas.kept], t_jet[meas.kept]
    trk = {
        "pt": meas.pt,
        "deta": t_eta[sel][meas.kept] - jet_eta[t_jet],
        "dphi": _wrap(t_phi[sel][meas.kept] - jet_phi[t_jet]),
        "d0": meas.d0, "z0": meas.z0, "d0_err": meas.d0_err, "z0_err": meas.z0_err,
    }

    # Leading max_tracks tracks of each jet, pT-ordered.
    order = np.lexsort((-trk["pt"], t_jet))
    t_jet, rows = t_jet[order], rows[order]
    trk = {k: v[order] for k, v in trk.items()}
    n_per_jet = np.bincount(t_jet, minlength=len(jet_pt))
    start = np.concatenate([[0], np.cumsum(n_per_jet)])[:-1]
    rank = np.arange(len(t_jet)) - start[t_jet]
    keep = rank < jets_cfg["max_tracks"]
    t_jet, rows, rank = t_jet[keep], rows[keep], rank[keep]
    trk = {k: v[keep] for k, v in trk.items()}
    n_tracks = np.minimum(n_per_jet, jets_cfg["max_tracks"])

    # --- truth: origin, vertex, flavour ------------------------------------------------
    weak_b, weak_c = truth.weak_heavy_hadron_rows(flat["id"], event_of, flat["no"], flat["mother1"])
    from_b, from_c = truth.heavy_flavour_ancestry(
        rows, event_of, flat["status"], flat["mother1"], index, weak_b, weak_c)
    tol = jets_cfg["vertex_merge_mm"]
    pos = np.stack([flat["x"][rows], flat["y"][rows], flat["z"][rows]], axis=1).astype(np.float64)
    displaced = np.einsum("tk,tk->t", pos, pos) >= tol**2
    trk["origin"] = truth.track_origin(from_b, from_c, displaced)
    trk["pid"] = truth.pid_class(flat["id"][rows], flat["charge"][rows])
    trk["charge"] = flat["charge"][rows].astype(np.int8)

    max_t = jets_cfg["max_tracks"]
    padded = np.zeros((len(jet_pt), max_t, 3))
    valid = np.zeros((len(jet_pt), max_t), dtype=bool)
    padded[t_jet, rank] = pos
    valid[t_jet, rank] = True
    trk["vertex"] = truth.vertex_index(padded, valid, tol)[t_jet, rank]

    label = _flavour_labels(flat, weak_b, weak_c, event_of, jets_cfg, n_events,
                            jet_event, jet_eta, jet_phi)

    keep_jet = n_tracks >= jets_cfg["min_tracks"]
    return JetTable.from_flat(
        jets={"jet_pt": jet_pt, "jet_eta": jet_eta, "jet_phi": jet_phi, "jet_mass": jet_mass,
              "n_constituents": n_tracks, "label": label, "event": jet_event},
        tracks=trk, track_jet=t_jet, keep_jet=keep_jet,
    )


def _flavour_labels(flat: dict[str, np.ndarray], weak_b: np.ndarray, weak_c: np.ndarray,
                    event_of: np.ndarray, jets_cfg: dict[str, Any], n_events: int,
                    jet_event: np.ndarray, jet_eta: np.ndarray, jet_phi: np.ndarray) -> np.ndarray:
    """b if a weakly decaying b hadron (pT above threshold) lies within ΔR of the jet axis,
    else c likewise, else light (ATLAS-style cone labelling)."""
    label = np.full(len(jet_eta), truth.LABEL_LIGHT, dtype=np.int8)
    hadron_pt = np.hypot(flat["px"], flat["py"])
    for flavour, weak in ((truth.LABEL_C, weak_c), (truth.LABEL_B, weak_b)):
        cand = np.flatnonzero(weak & (hadron_pt > jets_cfg["heavy_hadron_pt_min_gev"]))
        if len(cand) == 0:
            continue
        h = vector.array({"px": flat["px"][cand], "py": flat["py"][cand],
                          "pz": flat["pz"][cand], "E": flat["e"][cand]})
        h_counts = np.bincount(event_of[cand], minlength=n_events)
        j_counts = np.bincount(jet_event, minlength=n_events)
        pairs_eta = ak.cartesian([ak.unflatten(jet_eta, j_counts),
                                  ak.unflatten(np.asarray(h.eta), h_counts)], nested=True)
        pairs_phi = ak.cartesian([ak.unflatten(jet_phi, j_counts),
                                  ak.unflatten(np.asarray(h.phi), h_counts)], nested=True)
        dr = np.hypot(pairs_eta["0"] - pairs_eta["1"], _wrap(pairs_phi["0"] - pairs_phi["1"]))
        hit = ak.to_numpy(ak.flatten(ak.any(dr < jets_cfg["flavour_match_dr"], axis=2)))
        label[hit] = flavour  # b is assigned last, so it wins over c
    return label


def split_of_events(n_events: int, seed: int, fractions: dict[str, float]) -> np.ndarray:
    """Split index (0 train, 1 val, 2 test) per event, reproducible from the seed."""
    u = np.random.default_rng(seed).random(n_events)
    edges = np.cumsum([fractions[s] for s in SPLITS])
    return np.searchsorted(edges, u, side="right").clip(0, len(SPLITS) - 1)


def build_jet_sets(event_files: Sequence[str | Path], params: dict[str, Any],
                   outputs: dict[str, str | Path], progress: bool = True) -> dict[str, int]:
    """Turn ROOT event files into train/val/test Parquet jet sets.

    ``params`` is ``stage_params(cfg, 'jets')``; ``outputs`` maps split → path. Returns
    the number of jets per split.
    """
    jets_cfg, det = params["jets"], params["detector"]
    if set(outputs) != set(SPLITS):
        raise ValueError(f"outputs must name the splits {SPLITS}, got {sorted(outputs)}")
    if not event_files:
        raise ValueError("no event files given")
    parts: dict[str, list[JetTable]] = {s: [] for s in SPLITS}
    for path in tqdm([Path(p) for p in event_files], desc="jets", unit="file", disable=not progress):
        events = read_events(path, JETS_STAGE_FIELDS)
        seed = _file_seed(det["seed"], path)
        table = jets_from_events(events, jets_cfg, det, np.random.default_rng(seed))
        table = table.with_source(path.stem)
        event_split = split_of_events(len(events), seed + 1, jets_cfg["split"])
        jet_split = event_split[table.jets["event"]]
        for i, name in enumerate(SPLITS):
            parts[name].append(table.select(jet_split == i))
    meta = provenance("jets", params) | {
        "label_names": truth.BTAG_LABEL_NAMES,
        "origin_names": truth.ORIGIN_NAMES,
        "inputs": [Path(p).name for p in event_files],
    }
    sizes = {}
    for name in SPLITS:
        table = JetTable.concatenate(parts[name])
        write_jet_table(table, outputs[name], meta | {"split": name})
        sizes[name] = table.n_jets
    return sizes
