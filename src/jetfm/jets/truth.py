"""Truth labelling from the hadron-level record: heavy hadrons, decay ancestry, vertices.

All functions work on the flat particle table of one file (numpy), vectorised over
particles; per-jet grouping works on padded [jets, tracks] arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from jetfm.contract import ORIGIN_B, ORIGIN_C, ORIGIN_OTHER, ORIGIN_PRIMARY
from jetfm.graph import connected_components


def _quark_digits(pdg_id: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.abs(pdg_id)
    return (a // 1000) % 10, (a // 100) % 10, (a // 10) % 10


def _per_unique_id(test: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Evaluate a PDG-id predicate once per distinct id (a record has a few hundred)."""

    @functools.wraps(test)
    def wrapped(pdg_id: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(pdg_id, return_inverse=True)
        return test(unique)[inverse.reshape(np.shape(pdg_id))]

    return wrapped


@_per_unique_id
def is_b_hadron(pdg_id: np.ndarray) -> np.ndarray:
    """Hadrons with a b quark (mesons 5xx, baryons 5xxx), by the PDG numbering scheme."""
    q1, q2, _ = _quark_digits(pdg_id)
    return (np.abs(pdg_id) > 100) & ((q1 == 5) | (q2 == 5))


@_per_unique_id
def is_c_hadron(pdg_id: np.ndarray) -> np.ndarray:
    """Hadrons with a c quark and no b quark."""
    q1, q2, q3 = _quark_digits(pdg_id)
    has_c = (q1 == 4) | (q2 == 4) | ((q1 > 0) & (q3 == 4))
    return (np.abs(pdg_id) > 100) & has_c & ~is_b_hadron(pdg_id)


def pid_class(pdg_id: np.ndarray, charge: np.ndarray) -> np.ndarray:
    """The papers' 8 particle classes: 0 photon, 1 h−, 2 h0, 3 h+, 4 e−, 5 e+, 6 μ−, 7 μ+."""
    out = np.where(charge < 0, 1, np.where(charge > 0, 3, 2)).astype(np.int8)
    out[pdg_id == 22] = 0
    out[pdg_id == 11] = 4
    out[pdg_id == -11] = 5
    out[pdg_id == 13] = 6
    out[pdg_id == -13] = 7
    return out


def record_key(event: np.ndarray, no: np.ndarray) -> np.ndarray:
    """One int64 per (event, Pythia index): orders like (event, no), unique per particle."""
    return event.astype(np.int64) * np.int64(1 << 24) + no.astype(np.int64)  # 2^24 > any record


class RecordIndex:
    """Finds a particle's row from (event, Pythia index ``no``) by binary search.

    Rows are ordered by event, then by ``no``, so the combined key is sorted.
    """

    def __init__(self, event: np.ndarray, no: np.ndarray) -> None:
        self._keys = record_key(event, no)
        if len(self._keys) > 1 and np.any(np.diff(self._keys) <= 0):
            raise ValueError("particle table is not ordered by (event, no)")

    def rows(self, event: np.ndarray, no: np.ndarray) -> np.ndarray:
        """Row of each (event, no), or -1 where that particle is not stored."""
        query = record_key(event, no)
        pos = np.clip(np.searchsorted(self._keys, query), 0, max(len(self._keys) - 1, 0))
        found = (len(self._keys) > 0) & (self._keys[pos] == query) & (no >= 0)
        return np.where(found, pos, -1)


def is_decay_product(status: np.ndarray) -> np.ndarray:
    """Particles made in a particle decay (Pythia status 91–99)."""
    return (np.abs(status) >= 91) & (np.abs(status) <= 99)


def heavy_flavour_ancestry(
    rows: np.ndarray, event: np.ndarray, status: np.ndarray, mother1: np.ndarray,
    index: RecordIndex, weak_b: np.ndarray, weak_c: np.ndarray, max_depth: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Walk each particle's decay chain upwards; flag a weakly decaying b or c ancestor.

    ``weak_b``/``weak_c`` mark the record rows of weakly decaying heavy hadrons (see
    :func:`weakly_decaying`). Only those make displaced vertices: the soft pion of a
    prompt D*+ → D0 π+ comes from the primary vertex and is not "from c". The walk
    follows ``mother1`` while the current particle is a decay product, so it stops at
    the hadronisation step: fragmentation hadrons are not "from b".
    """
    current = rows.copy()
    from_b = np.zeros(len(rows), dtype=bool)
    from_c = np.zeros(len(rows), dtype=bool)
    active = np.ones(len(rows), dtype=bool)
    for _ in range(max_depth):
        active &= is_decay_product(status[current])
        parent = index.rows(event[current], mother1[current])
        active &= parent >= 0
        if not active.any():
            break
        current = np.where(active, parent, current)
        from_b |= active & weak_b[current]
        from_c |= active & weak_c[current]
    return from_b, from_c


def weakly_decaying(
    candidates: np.ndarray, event: np.ndarray, no: np.ndarray, mother1: np.ndarray,
) -> np.ndarray:
    """Of the ``candidates`` rows (e.g. all b hadrons), those with no candidate daughter:
    the last hadron of the chain (B0 rather than B*0), whose decay makes the displaced
    vertex."""
    own = record_key(event[candidates], no[candidates])
    parents = record_key(event[candidates], mother1[candidates])
    return candidates[~np.isin(own, parents)]


def weak_heavy_hadron_rows(pdg_id: np.ndarray, event: np.ndarray, no: np.ndarray,
                           mother1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over the record: weakly decaying b hadrons, and c hadrons."""
    hadrons = np.flatnonzero(np.abs(pdg_id) > 100)  # digit tests on the hadrons only: cheaper
    masks = []
    for selector in (is_b_hadron, is_c_hadron):
        mask = np.zeros(len(pdg_id), dtype=bool)
        mask[weakly_decaying(hadrons[selector(pdg_id[hadrons])], event, no, mother1)] = True
        masks.append(mask)
    return masks[0], masks[1]


def track_origin(from_b: np.ndarray, from_c: np.ndarray, displaced: np.ndarray) -> np.ndarray:
    """0 primary, 1 from c (not b), 2 from b (incl. b → c cascades), 3 other displaced."""
    origin = np.full(len(from_b), ORIGIN_PRIMARY, dtype=np.int8)
    origin[displaced] = ORIGIN_OTHER
    origin[from_c] = ORIGIN_C
    origin[from_b] = ORIGIN_B
    return origin


def vertex_index(positions: np.ndarray, valid: np.ndarray, tolerance: float) -> np.ndarray:
    """Group each jet's tracks by true production point.

    positions: [jets, tracks, 3] in mm (primary vertex at the origin); valid: [jets, tracks].
    Tracks closer than ``tolerance`` are linked, and linked tracks share a vertex (single
    linkage). Returns [jets, tracks]: 0 for the primary vertex, 1..n for secondary
    vertices in order of their leading track, -1 for padding.
    """
    # bound the [jets, tracks, tracks, 3] temporaries (128-constituent jets: ~0.4 MB each)
    chunk = max(1, 2**26 // max(1, positions.shape[1] ** 2 * 3 * 8))
    if positions.shape[0] > chunk:
        return np.concatenate([_vertex_index(positions[i:i + chunk], valid[i:i + chunk], tolerance)
                               for i in range(0, positions.shape[0], chunk)])
    return _vertex_index(positions, valid, tolerance)


def _vertex_index(positions: np.ndarray, valid: np.ndarray, tolerance: float) -> np.ndarray:
    n_tracks = positions.shape[1]
    diff = positions[:, :, None, :] - positions[:, None, :, :]
    rep = connected_components(np.einsum("jabk,jabk->jab", diff, diff) < tolerance**2, valid)
    safe_rep = np.where(valid, rep, 0)
    at_pv = valid & (np.einsum("jtk,jtk->jt", positions, positions) < tolerance**2)
    # A group is the primary vertex if any of its tracks starts there.
    group_at_pv = np.zeros(valid.shape, dtype=bool)
    jet = np.broadcast_to(np.arange(valid.shape[0])[:, None], valid.shape)
    np.logical_or.at(group_at_pv, (jet[valid], safe_rep[valid]), at_pv[valid])
    is_rep = valid & (rep == np.arange(n_tracks)[None, :])
    number = np.cumsum(is_rep & ~group_at_pv, axis=1)  # 1..n in order of the leading track
    vertex = np.take_along_axis(number, safe_rep, axis=1)
    vertex = np.where(np.take_along_axis(group_at_pv, safe_rep, axis=1), 0, vertex)
    return np.where(valid, vertex, -1).astype(np.int16)


def proper_decay_lengths(rows: np.ndarray, event: np.ndarray, no: np.ndarray, mother1: np.ndarray,
                         position: np.ndarray, momentum: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """cτ = L·m/p of the particles at ``rows``, L from their production point to the
    production point of their first stored daughter (the decay vertex); NaN where no
    daughter is stored. position, momentum: [n, 3] over the whole record."""
    parent_key = record_key(event, mother1)
    order = np.argsort(parent_key, kind="stable")
    sorted_keys = parent_key[order]
    query = record_key(event[rows], no[rows])
    pos = np.searchsorted(sorted_keys, query)
    found = (pos < len(sorted_keys)) & (sorted_keys[np.minimum(pos, len(sorted_keys) - 1)] == query)
    daughter = order[np.minimum(pos, len(order) - 1)]
    flight = np.linalg.norm(position[daughter] - position[rows], axis=1)
    p = np.linalg.norm(momentum[rows], axis=1)
    return np.where(found, flight * mass[rows] / p, np.nan)

