"""Boosted, JetClass-like jets: particle-flow constituents, anti-kt R = 0.8, truth classes.

Every visible final-state particle goes through the detector first (tracker for charged
particles, calorimeters for the rest), the measured particles are clustered, and each
jet keeps all its constituents. A jet from a signal process is kept only when it is
matched to the process's resonance (H, Z, W, t) with every visible decay parton or
charged lepton inside the jet; QCD jets need no matching.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import awkward as ak
import fastjet
import numpy as np
import vector

from jetfm.contract import BOOSTED_PROCESS_LABELS
from jetfm.detector import (
    d0_error_with_beam_spot,
    impact_parameters_with_beam_spot,
    measure_energy,
    measure_tracks,
)
from jetfm.events.processes import BOOSTED_PROCESSES
from jetfm.events.record import RESONANCE_IDS
from jetfm.events.root_io import flat_particles
from jetfm.jets import truth
from jetfm.jets.cluster import visible_mask
from jetfm.jets.constituents import constituent_truth, leading_per_jet
from jetfm.jets.pairs import delta_r, pt_eta_phi, same_event_pairs, wrap_phi
from jetfm.jets.parquet_io import JetTable

vector.register_awkward()

_NEUTRINOS = (12, 14, 16)
_MAX_CHAIN = 128  # ISR recoil copies of the resonance, then t → W → q or H → W → q


@dataclass(frozen=True)
class MeasuredParticles:
    """What the detector reports, per measured particle (rows of the flat record)."""

    rows: np.ndarray  # row in the flat particle table
    p4: dict[str, np.ndarray]  # measured px, py, pz, E
    tracked: np.ndarray  # measured by the tracker (has impact parameters)
    d0_noise: np.ndarray  # measurement error added to the true impact parameters (tracks)
    z0_noise: np.ndarray
    d0_err: np.ndarray
    z0_err: np.ndarray
    pid: np.ndarray
    charge: np.ndarray


def measure_particles(flat: dict[str, np.ndarray], det: dict[str, Any], pt_min: float,
                      rng: np.random.Generator) -> MeasuredParticles:
    """Particle-flow-like reconstruction of the visible final state.

    Charged particles the tracker finds keep their identity and get a smeared pT and
    impact-parameter errors; everything else is a calorimeter object with smeared energy:
    a massless photon (ECAL) for photons and electrons, a massless neutral hadron (HCAL) for
    hadrons, as a calorimeter measures energy and direction only. Muons without a track are
    lost (minimum ionising). Rows stay in record (event) order.
    """
    rows = np.flatnonzero(visible_mask(flat["status"], flat["id"]))
    px, py, pz, e = (flat[k][rows].astype(np.float64) for k in ("px", "py", "pz", "e"))
    pdg, charge = flat["id"][rows], flat["charge"][rows]
    pt, eta, _ = pt_eta_phi(px, py, pz)

    candidates = np.flatnonzero(charge != 0)
    zeros = np.zeros(len(candidates))
    tracks = measure_tracks(pt[candidates], eta[candidates], zeros, zeros, det["tracking"], rng)
    n = len(rows)
    tracked = np.zeros(n, dtype=bool)
    tracked[candidates[tracks.kept]] = True
    noise = {k: np.zeros(n) for k in ("d0", "z0", "d0_err", "z0_err")}
    d0_err = d0_error_with_beam_spot(tracks.d0_err, det["tracking"])
    for key, values in (("d0", tracks.d0), ("z0", tracks.z0), ("d0_err", d0_err),
                        ("z0_err", tracks.z0_err)):
        noise[key][tracked] = values

    scale = np.zeros(n)  # measured / true three-momentum
    scale[tracked] = tracks.pt / pt[tracked]
    calo = np.flatnonzero(~tracked & (np.abs(pdg) != 13))
    calo_scale, seen = measure_energy(e[calo], eta[calo], pdg[calo], det["calorimeter"], rng)
    calo = calo[seen]
    p = np.sqrt(px[calo] ** 2 + py[calo] ** 2 + pz[calo] ** 2)
    energy = e.copy()
    energy[calo] = calo_scale[seen] * e[calo]
    scale[calo] = energy[calo] / np.clip(p, 1e-12, None)  # massless: |p| = E
    energy[tracked] = np.sqrt((e[tracked] ** 2 - pt[tracked] ** 2 - pz[tracked] ** 2).clip(0)
                              + (scale[tracked] ** 2) * (pt[tracked] ** 2 + pz[tracked] ** 2))

    em = np.isin(np.abs(pdg), (11, 22))
    pid = np.where(tracked, truth.pid_class(pdg, charge), np.where(em, 0, 2)).astype(np.int8)
    keep = (scale > 0) & (pt * scale > pt_min)
    return MeasuredParticles(
        rows=rows[keep],
        p4={"px": (px * scale)[keep], "py": (py * scale)[keep], "pz": (pz * scale)[keep],
            "E": energy[keep]},
        tracked=tracked[keep],
        d0_noise=noise["d0"][keep], z0_noise=noise["z0"][keep],
        d0_err=noise["d0_err"][keep], z0_err=noise["z0_err"][keep],
        pid=pid[keep], charge=np.where(tracked, charge, 0)[keep].astype(np.int8),
    )


def resonance_decay_owner(flat: dict[str, np.ndarray], event_of: np.ndarray, index: truth.RecordIndex,
                          resonance_id: int) -> tuple[np.ndarray, np.ndarray]:
    """The visible decay products of the hard-process resonances of one kind.

    Products are the |status| 23 partons and charged leptons (neutrinos excluded); each
    is walked up through the stored resonance copies (t, Z, W, H: ISR recoil copies, and
    intermediate W of t → bW or H → WW*) to the nearest ancestor with |id| = resonance_id:
    the resonance's last copy, whose momentum is the one after initial-state radiation.
    Returns ``(products, owner)`` as record rows.
    """
    abs_id = np.abs(flat["id"])
    candidates = np.flatnonzero((np.abs(flat["status"]) == 23) & ~np.isin(abs_id, _NEUTRINOS))
    owner = np.full(len(candidates), -1)
    current = candidates.copy()
    active = np.ones(len(candidates), dtype=bool)
    for _ in range(_MAX_CHAIN):
        parent = index.rows(event_of[current], flat["mother1"][current])
        active &= parent >= 0
        active &= np.isin(abs_id[np.where(active, parent, 0)], RESONANCE_IDS)
        if not active.any():
            break
        current = np.where(active, parent, current)
        hit = active & (abs_id[current] == resonance_id)
        owner = np.where(hit, current, owner)
        active &= ~hit
    found = owner >= 0
    return candidates[found], owner[found]


def matched_jets(flat: dict[str, np.ndarray], event_of: np.ndarray, index: truth.RecordIndex,
                 resonance_id: int, jet_event: np.ndarray, jet_eta: np.ndarray, jet_phi: np.ndarray,
                 match_dr: float) -> np.ndarray:
    """Per jet: a resonance of ``resonance_id`` and all its visible decay products lie
    within ``match_dr`` of the jet axis."""
    products, owner = resonance_decay_owner(flat, event_of, index, resonance_id)
    resonances = np.unique(owner)
    matched = np.zeros(len(jet_eta), dtype=bool)
    if len(resonances) == 0 or len(jet_eta) == 0:
        return matched
    n_events = int(max(event_of.max(initial=0), jet_event.max(initial=0))) + 1
    pair_res, pair_jet = same_event_pairs(event_of[resonances], jet_event, n_events)

    _, r_eta, r_phi = pt_eta_phi(*(flat[k][resonances].astype(np.float64) for k in ("px", "py", "pz")))
    dr_res = delta_r(r_eta[pair_res], r_phi[pair_res], jet_eta[pair_jet], jet_phi[pair_jet])

    # the farthest decay product of each pair's resonance from the pair's jet
    res_of_product = np.searchsorted(resonances, owner)
    order = np.argsort(res_of_product, kind="stable")
    products, res_of_product = products[order], res_of_product[order]
    n_products = np.bincount(res_of_product, minlength=len(resonances))
    product_start = np.concatenate([[0], np.cumsum(n_products)])[:-1]
    per_pair = n_products[pair_res]
    link_pair = np.repeat(np.arange(len(pair_res)), per_pair)
    link_start = np.concatenate([[0], np.cumsum(per_pair)])[:-1]
    link_product = products[product_start[pair_res[link_pair]] + np.arange(len(link_pair))
                            - link_start[link_pair]]
    _, p_eta, p_phi = pt_eta_phi(*(flat[k][link_product].astype(np.float64) for k in ("px", "py", "pz")))
    dr_prod = delta_r(p_eta, p_phi, jet_eta[pair_jet[link_pair]], jet_phi[pair_jet[link_pair]])
    farthest = np.full(len(pair_res), np.inf)
    farthest[per_pair > 0] = 0.0
    np.maximum.at(farthest, link_pair, dr_prod)

    ok = (dr_res < match_dr) & (farthest < match_dr)
    matched[pair_jet[ok]] = True
    return matched


def boosted_jets_from_events(events: ak.Array, process: str, jets_cfg: dict[str, Any],
                             det: dict[str, Any], rng: np.random.Generator) -> JetTable:
    """Cluster, match and label the jets of one boosted-sample event file."""
    if process not in BOOSTED_PROCESSES:
        raise ValueError(f"'{process}' is not a boosted-sample process "
                         f"(known: {', '.join(BOOSTED_PROCESSES)})")
    entry = BOOSTED_PROCESSES[process]
    n_events = len(events)
    flat, event_of = flat_particles(events)
    index = truth.RecordIndex(event_of, flat["no"])
    meas = measure_particles(flat, det, jets_cfg["constituent_pt_min_gev"], rng)

    m_event = event_of[meas.rows]
    m_counts = np.bincount(m_event, minlength=n_events)
    m_start = np.concatenate([[0], np.cumsum(m_counts)])[:-1]
    inputs = ak.unflatten(ak.zip(meas.p4, with_name="Momentum4D"), m_counts)
    sequence = fastjet.ClusterSequence(inputs, fastjet.JetDefinition(fastjet.antikt_algorithm,
                                                                     jets_cfg["radius"]))
    jets = sequence.inclusive_jets(min_pt=jets_cfg["pt_min_gev"])
    members = sequence.constituent_index(min_pt=jets_cfg["pt_min_gev"])
    jet_event = np.repeat(np.arange(n_events), ak.num(jets).to_numpy())
    fj = ak.flatten(jets)
    j = {k: ak.to_numpy(getattr(fj, k)).astype(np.float64) for k in ("px", "py", "pz", "E")}
    jet_pt, jet_eta, jet_phi = pt_eta_phi(j["px"], j["py"], j["pz"])
    jet_mass = np.sqrt(np.clip(j["E"] ** 2 - j["px"] ** 2 - j["py"] ** 2 - j["pz"] ** 2, 0.0, None))

    in_window = (jet_pt < jets_cfg["pt_max_gev"]) & (np.abs(jet_eta) < jets_cfg["abs_eta_max"])
    if entry["resonance"] is None:
        keep_jet = in_window
    else:
        keep_jet = in_window & matched_jets(flat, event_of, index, entry["resonance"], jet_event,
                                            jet_eta, jet_phi, jets_cfg["match_dr"])

    # constituents: fastjet's per-event indices → measured-particle indices, grouped by jet
    per_jet = ak.flatten(members, axis=1)
    n_members = ak.num(per_jet).to_numpy()
    c_jet = np.repeat(np.arange(len(jet_pt)), n_members)
    c_meas = ak.to_numpy(ak.flatten(per_jet)) + m_start[jet_event[c_jet]]
    c_pt, c_eta, c_phi = pt_eta_phi(*(meas.p4[k][c_meas] for k in ("px", "py", "pz")))
    order, rank = leading_per_jet(c_jet, c_pt, len(jet_pt))
    # truth and impact parameters only for the jets that stay
    cap = (rank < jets_cfg["max_constituents"]) & keep_jet[c_jet[order]]
    order, rank = order[cap], rank[cap]
    c_jet, c_meas, c_pt, c_eta, c_phi = (a[order] for a in (c_jet, c_meas, c_pt, c_eta, c_phi))
    rows = meas.rows[c_meas]

    tracked = meas.tracked[c_meas]
    true_d0, true_z0 = impact_parameters_with_beam_spot(
        *(flat[k][rows].astype(np.float64) for k in ("x", "y", "z", "px", "py", "pz")), event_of[rows],
        (j["px"][c_jet], j["py"][c_jet], j["pz"][c_jet]), det["tracking"], rng)
    constituents: dict[str, np.ndarray] = {
        "pt": c_pt,
        "deta": c_eta - jet_eta[c_jet],
        "dphi": wrap_phi(c_phi - jet_phi[c_jet]),
        "d0": np.where(tracked, true_d0 + meas.d0_noise[c_meas], 0.0),
        "z0": np.where(tracked, true_z0 + meas.z0_noise[c_meas], 0.0),
        "d0_err": meas.d0_err[c_meas],
        "z0_err": meas.z0_err[c_meas],
        "pid": meas.pid[c_meas],
        "charge": meas.charge[c_meas],
    }

    weak_b, weak_c = truth.weak_heavy_hadron_rows(flat["id"], event_of, flat["no"], flat["mother1"])
    constituents["origin"], constituents["vertex"] = constituent_truth(
        flat, event_of, index, weak_b, weak_c, rows, c_jet, rank, jets_cfg["vertex_merge_mm"])

    n_kept = np.minimum(n_members, jets_cfg["max_constituents"])
    return JetTable.from_flat(
        jets={"jet_pt": jet_pt, "jet_eta": jet_eta, "jet_phi": jet_phi, "jet_mass": jet_mass,
              "n_constituents": n_kept, "label": np.full(len(jet_pt), BOOSTED_PROCESS_LABELS[process]),
              "event": jet_event},
        tracks=constituents, track_jet=c_jet, keep_jet=keep_jet,
    )
