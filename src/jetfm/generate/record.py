"""Pythia event records (awkward, from ``Pythia.nextBatch``) → the columns jetfm stores.

Everything here is vectorised over the flattened particle table of a whole batch.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

# Stored per particle. ``no`` is the particle's index in Pythia's full event record;
# ``mother1``/``mother2`` refer to that same index space, as in the Pythia8/ROOT primer.
PARTICLE_FIELDS: dict[str, Any] = {
    "no": np.int32,
    "id": np.int32,
    "status": np.int32,
    "mother1": np.int32,
    "mother2": np.int32,
    "px": np.float32,
    "py": np.float32,
    "pz": np.float32,
    "e": np.float32,
    "m": np.float32,
    "charge": np.float32,
    "x": np.float32,
    "y": np.float32,
    "z": np.float32,
    "t": np.float32,
}


# Tops, Z, W and H: every copy is kept, so that a resonance-decay parton can be walked
# back through the shower's recoil copies to the resonance it came from.
RESONANCE_IDS = (6, 23, 24, 25)


def hadron_level_mask(status: np.ndarray, pdg_id: np.ndarray) -> np.ndarray:
    """What ``record: final`` keeps: final-state particles, everything produced in
    hadronisation or decays (|status| >= 81), the hard process with its resonance decays
    (|status| 21–23) and every copy of a t, Z, W or H.

    Enough to cluster jets, to walk every track's decay chain back to a heavy hadron and to
    match jets to the resonance and decay partons they came from; beams and the rest of
    the shower history are dropped.
    """
    abs_status = np.abs(status)
    hard = (abs_status >= 21) & (abs_status <= 23)
    return (status > 0) | (abs_status >= 81) | hard | np.isin(np.abs(pdg_id), RESONANCE_IDS)


class ChargeTable:
    """Particle charge by PDG id, from Pythia's own particle data, cached per id."""

    def __init__(self, particle_data: Any) -> None:
        self._data = particle_data
        self._cache: dict[int, float] = {}

    def __call__(self, pdg_id: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(pdg_id, return_inverse=True)
        for value in unique.tolist():
            if value not in self._cache:
                self._cache[value] = float(self._data.charge(value))
        charges = np.array([self._cache[v] for v in unique.tolist()], dtype=np.float32)
        return charges[inverse]


def batch_to_columns(batch: ak.Array, charge_of: ChargeTable,
                     full_record: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Flatten a ``nextBatch`` result; keep the hadron-level record, or all of it.

    Returns per-event particle counts and flat numpy columns of :data:`PARTICLE_FIELDS`.
    """
    prt = batch.prt
    counts = ak.num(prt).to_numpy()
    flat = ak.flatten(prt)
    status = ak.to_numpy(flat.status)
    pdg = ak.to_numpy(flat.id)
    keep = np.ones(len(status), dtype=bool) if full_record else hadron_level_mask(status, pdg)
    vprod = flat.vProd
    columns = {
        "no": ak.to_numpy(ak.flatten(ak.local_index(prt))),
        "id": pdg,
        "status": status,
        "mother1": ak.to_numpy(flat.mother1),
        "mother2": ak.to_numpy(flat.mother2),
        "px": ak.to_numpy(flat.p.px),
        "py": ak.to_numpy(flat.p.py),
        "pz": ak.to_numpy(flat.p.pz),
        "e": ak.to_numpy(flat.p.e),
        "m": ak.to_numpy(flat.m),
        # Pythia leaves vProd unset (None) at the origin.
        "x": ak.to_numpy(ak.fill_none(vprod.px, 0.0)),
        "y": ak.to_numpy(ak.fill_none(vprod.py, 0.0)),
        "z": ak.to_numpy(ak.fill_none(vprod.pz, 0.0)),
        "t": ak.to_numpy(ak.fill_none(vprod.e, 0.0)),
    }
    columns = {k: v[keep] for k, v in columns.items()}
    columns["charge"] = charge_of(columns["id"])
    event_of_particle = np.repeat(np.arange(len(counts)), counts)
    kept_counts = np.bincount(event_of_particle[keep], minlength=len(counts))
    columns = {k: columns[k].astype(dtype, copy=False) for k, dtype in PARTICLE_FIELDS.items()}
    return kept_counts, columns
