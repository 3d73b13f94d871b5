"""ΔR matching between tracks, hadrons, resonances and jets: all (a, b) pairs of objects
from the same event, vectorised, and the (η, φ) arithmetic they need."""

from __future__ import annotations

import numpy as np


def same_event_pairs(a_event: np.ndarray, b_event: np.ndarray,
                     n_events: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(ia, ib)`` of every pair with ``a_event[ia] == b_event[ib]``.

    ``b_event`` must be sorted (objects grouped by event, as jets are); ``a_event`` may be
    in any order. Pairs come grouped by ``ia`` in increasing order.
    """
    if len(b_event) > 1 and np.any(np.diff(b_event) < 0):
        raise ValueError("b objects must be grouped by event")
    b_counts = np.bincount(b_event, minlength=n_events)
    b_first = np.concatenate([[0], np.cumsum(b_counts)])[:-1]
    per_a = b_counts[a_event]
    ia = np.repeat(np.arange(len(a_event)), per_a)
    a_first = np.concatenate([[0], np.cumsum(per_a)])[:-1]
    ib = b_first[a_event[ia]] + np.arange(len(ia)) - a_first[ia]
    return ia, ib


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Azimuthal differences into [−π, π)."""
    return (dphi + np.pi) % (2 * np.pi) - np.pi


def pt_eta_phi(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pt = np.hypot(px, py)
    return pt, np.arcsinh(pz / np.clip(pt, 1e-12, None)), np.arctan2(py, px)


def delta_r(eta1: np.ndarray, phi1: np.ndarray, eta2: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    return np.hypot(eta1 - eta2, wrap_phi(phi1 - phi2))


def nearest_within(a_event: np.ndarray, a_eta: np.ndarray, a_phi: np.ndarray, b_event: np.ndarray,
                   b_eta: np.ndarray, b_phi: np.ndarray, n_events: int,
                   max_dr: float) -> np.ndarray:
    """For each a: the nearest b of its event in ΔR if closer than ``max_dr``, else -1."""
    ia, ib = same_event_pairs(a_event, b_event, n_events)
    dr = delta_r(a_eta[ia], a_phi[ia], b_eta[ib], b_phi[ib])
    close = dr < max_dr
    ia, ib, dr = ia[close], ib[close], dr[close]
    order = np.lexsort((dr, ia))  # per a, nearest first
    ia, ib = ia[order], ib[order]
    first = np.ones(len(ia), dtype=bool)
    first[1:] = ia[1:] != ia[:-1]
    nearest = np.full(len(a_event), -1)
    nearest[ia[first]] = ib[first]
    return nearest
