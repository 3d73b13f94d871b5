"""Per-jet constituent bookkeeping shared by both samples: leading-N selection and the
truth (origin, vertex) of the constituents kept."""

from __future__ import annotations

import numpy as np

from jetfm.jets import truth


def leading_per_jet(jet: np.ndarray, pt: np.ndarray, n_jets: int) -> tuple[np.ndarray, np.ndarray]:
    """Order grouping constituents by jet, highest pT first, and each one's rank in its jet
    (after ordering); ``rank < N`` keeps the N leading ones."""
    order = np.lexsort((-pt, jet))
    per_jet = np.bincount(jet, minlength=n_jets)
    start = np.concatenate([[0], np.cumsum(per_jet)])[:-1]
    return order, np.arange(len(jet)) - start[jet[order]]


def constituent_truth(flat: dict[str, np.ndarray], event_of: np.ndarray, index: truth.RecordIndex,
                      weak_b: np.ndarray, weak_c: np.ndarray, rows: np.ndarray, jet: np.ndarray,
                      rank: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Origin (primary / c / b / other) and vertex index of the record ``rows``, which sit at
    position ``rank`` of jet ``jet``; production points within ``tolerance`` mm share a vertex."""
    from_b, from_c = truth.heavy_flavour_ancestry(rows, event_of, flat["status"], flat["mother1"],
                                                  index, weak_b, weak_c)
    pos = np.stack([flat["x"][rows], flat["y"][rows], flat["z"][rows]], axis=1).astype(np.float64)
    displaced = np.einsum("tk,tk->t", pos, pos) >= tolerance**2
    origin = truth.track_origin(from_b, from_c, displaced)
    jets_present, row_of_jet = np.unique(jet, return_inverse=True)  # only jets with constituents
    padded = np.zeros((len(jets_present), int(rank.max(initial=0)) + 1, 3))
    valid = np.zeros(padded.shape[:2], dtype=bool)
    padded[row_of_jet, rank] = pos
    valid[row_of_jet, rank] = True
    vertex = truth.vertex_index(padded, valid, tolerance)[row_of_jet, rank]
    return origin, vertex
