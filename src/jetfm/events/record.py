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
    abs_id = np.abs(pdg_id)
    resonance = abs_id == RESONANCE_IDS[0]
    for value in RESONANCE_IDS[1:]:  # four comparisons: cheaper than np.isin's sort
        resonance |= abs_id == value
    return (status > 0) | (abs_status >= 81) | hard | resonance


class ChargeTable:
    """Particle charge by PDG id, from Pythia's own particle data.

    The ids seen so far are kept sorted with their charges, so a batch is one binary search
    per particle; Pythia is asked only about ids not seen before (no sort of the batch).
    """

    def __init__(self, particle_data: Any) -> None:
        self._data = particle_data
        self._ids = np.zeros(0, dtype=np.int64)
        self._charges = np.zeros(0, dtype=np.float32)

    def __call__(self, pdg_id: np.ndarray) -> np.ndarray:
        pdg_id = np.asarray(pdg_id, dtype=np.int64)
        where = np.searchsorted(self._ids, pdg_id).clip(0, max(len(self._ids) - 1, 0))
        known = (self._ids[where] == pdg_id) if len(self._ids) else np.zeros(len(pdg_id), dtype=bool)
        if not known.all():  # new ids: ask Pythia once each, then look everything up again
            new = np.unique(pdg_id[~known])
            ids = np.concatenate([self._ids, new])
            charges = np.concatenate([self._charges,
                                      np.array([self._data.charge(int(v)) for v in new], dtype=np.float32)])
            order = np.argsort(ids, kind="stable")
            self._ids, self._charges = ids[order], charges[order]
            where = np.searchsorted(self._ids, pdg_id)
        return self._charges[where]


_VEC4 = ("px", "py", "pz", "e")


def batch_to_columns(batch: ak.Array, charge_of: ChargeTable,
                     full_record: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Flatten a ``nextBatch`` result; keep the hadron-level record, or all of it.

    Returns per-event particle counts and flat numpy columns of :data:`PARTICLE_FIELDS`.
    Reads the arrays under the awkward layout directly and gathers only the kept particles
    (about half of the record), one copy per column; a layout of another shape (another
    pythia8mc) goes through awkward's high-level functions instead, with the same result.
    """
    prt = batch.prt
    counts = ak.num(prt).to_numpy()
    flat = ak.to_layout(ak.flatten(prt))
    vprod = flat.content("vProd") if "vProd" in flat.fields else None
    if not (isinstance(vprod, ak.contents.IndexedOptionArray)
            and isinstance(vprod.content, ak.contents.RecordArray)
            and isinstance(flat.content("p"), ak.contents.RecordArray)):
        return _columns_via_awkward(prt, counts, charge_of, full_record)
    status, pdg = flat.content("status").data, flat.content("id").data
    keep = np.ones(len(status), dtype=bool) if full_record else hadron_level_mask(status, pdg)
    rows = np.flatnonzero(keep)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # Pythia leaves vProd unset (None, index -1) at the origin
    where = vprod.index.data[rows]
    unset = where < 0
    where[unset] = 0
    columns = {"no": rows - np.repeat(starts, counts)[rows], "id": pdg[rows], "status": status[rows],
               "mother1": flat.content("mother1").data[rows], "mother2": flat.content("mother2").data[rows],
               "m": flat.content("m").data[rows]}
    momentum = flat.content("p")
    for name in _VEC4:
        columns[name] = momentum.content(name).data[rows]
    for name, stored in zip(_VEC4, ("x", "y", "z", "t"), strict=True):
        values = vprod.content.content(name).data[where]
        values[unset] = 0.0
        columns[stored] = values
    return _finish(columns, keep, counts, charge_of)


def _columns_via_awkward(prt: ak.Array, counts: np.ndarray, charge_of: ChargeTable,
                         full_record: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    flat = ak.flatten(prt)
    status = ak.to_numpy(flat.status)
    pdg = ak.to_numpy(flat.id)
    keep = np.ones(len(status), dtype=bool) if full_record else hadron_level_mask(status, pdg)
    vprod = ak.fill_none(flat.vProd, dict.fromkeys(_VEC4, 0.0))
    columns = {"no": ak.to_numpy(ak.flatten(ak.local_index(prt))), "id": pdg, "status": status,
               "mother1": ak.to_numpy(flat.mother1), "mother2": ak.to_numpy(flat.mother2),
               "m": ak.to_numpy(flat.m)}
    for name in _VEC4:
        columns[name] = ak.to_numpy(flat.p[name])
    for name, stored in zip(_VEC4, ("x", "y", "z", "t"), strict=True):
        columns[stored] = ak.to_numpy(vprod[name])
    return _finish({k: v[keep] for k, v in columns.items()}, keep, counts, charge_of)


def _finish(columns: dict[str, np.ndarray], keep: np.ndarray, counts: np.ndarray,
            charge_of: ChargeTable) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Charges, per-event counts of the kept particles, the stored dtypes."""
    columns["charge"] = charge_of(columns["id"])
    event_of_particle = np.repeat(np.arange(len(counts)), counts)
    kept_counts = np.bincount(event_of_particle[keep], minlength=len(counts))
    columns = {k: columns[k].astype(dtype, copy=False) for k, dtype in PARTICLE_FIELDS.items()}
    return kept_counts, columns
