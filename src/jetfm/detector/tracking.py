"""Track reconstruction as a parametrised detector. Pure numpy functions over flat arrays.

Conventions: lengths in mm, momenta in GeV, the primary vertex at the origin (Pythia's
default), straight-line extrapolation (the track curvature over the few-mm decay lengths
of b and c hadrons changes d0 by far less than its resolution).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def track_efficiency(pt: np.ndarray, eta: np.ndarray, det: dict[str, Any]) -> np.ndarray:
    """Probability to reconstruct a charged particle: a plateau per |eta| region times a
    turn-on in pT above the threshold."""
    plateau = np.where(np.abs(eta) < det["efficiency_eta_boundary"],
                       det["efficiency_central"], det["efficiency_forward"])
    scale = det["efficiency_turn_on_gev"]
    if scale > 0:
        excess = np.clip(pt - det["track_pt_min_gev"], 0.0, None)
        plateau = plateau * (1.0 - np.exp(-excess / scale))
    return plateau


def ip_resolution(pt: np.ndarray, eta: np.ndarray, det: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(sigma_d0, sigma_z0) in mm: a constant term ⊕ multiple scattering (ATLAS-style).

    sigma(d0) = a ⊕ b/(p·sin^(3/2)θ) and sigma(z0·sinθ) = a ⊕ b/(p·sin^(1/2)θ); with
    p = pT/sinθ the scattering terms are b/(pT·sin^(1/2)θ) and b·sin^(1/2)θ/pT, and
    z0's resolution grows as 1/sinθ in the forward region.
    """
    sin_theta = 1.0 / np.cosh(eta)
    ms_d0 = det["d0_resolution_ms_mm_gev"] / (pt * np.sqrt(sin_theta))
    ms_z0 = det["z0_resolution_ms_mm_gev"] * np.sqrt(sin_theta) / pt
    sigma_d0 = np.hypot(det["d0_resolution_constant_mm"], ms_d0)
    sigma_z0 = np.hypot(det["z0_resolution_constant_mm"], ms_z0) / sin_theta
    return sigma_d0, sigma_z0


def impact_parameters(
    x: np.ndarray, y: np.ndarray, z: np.ndarray,
    px: np.ndarray, py: np.ndarray, pz: np.ndarray,
    jet_px: np.ndarray, jet_py: np.ndarray, jet_pz: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """True lifetime-signed (d0, z0) of straight tracks from (x, y, z) w.r.t. the origin.

    |d0| is the transverse distance of closest approach; z0 the track's z there. d0 is
    positive when the point of closest approach lies on the jet's side of the primary
    vertex (positive projection on the jet direction), z0 when it lies along the jet's pz:
    tracks from decays downstream of the primary vertex populate the positive tails.
    """
    pt2 = px * px + py * py
    t_star = -(x * px + y * py) / pt2
    pca_x = x + t_star * px
    pca_y = y + t_star * py
    z0 = z + t_star * pz
    d0 = np.hypot(pca_x, pca_y)
    d0_sign = np.where(pca_x * jet_px + pca_y * jet_py >= 0.0, 1.0, -1.0)
    z0_sign = np.where(z0 * jet_pz >= 0.0, 1.0, -1.0)
    return d0_sign * d0, z0_sign * np.abs(z0)


def beam_spot(n_events: int, det: dict[str, Any], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Transverse position (x, y) of each event's primary vertex within the beam spot, mm.

    d0 is measured w.r.t. the beam line, so this offset widens every track's d0
    distribution (ATLAS: σ ≈ 10 µm); z0 is measured w.r.t. the reconstructed primary
    vertex and is unaffected.
    """
    sigma = det["beam_spot_xy_mm"]
    return sigma * rng.standard_normal(n_events), sigma * rng.standard_normal(n_events)


def impact_parameters_with_beam_spot(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, px: np.ndarray, py: np.ndarray, pz: np.ndarray,
    event: np.ndarray, jet_p: tuple[np.ndarray, np.ndarray, np.ndarray], det: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """True lifetime-signed (d0, z0) as measured: d0 w.r.t. the beam line, each event's
    primary vertex displaced within the beam spot (``event`` indexes the events from 0);
    z0 w.r.t. the primary vertex."""
    n_events = int(event.max(initial=-1)) + 1
    pv_x, pv_y = beam_spot(n_events, det, rng)
    d0, _ = impact_parameters(x + pv_x[event], y + pv_y[event], z, px, py, pz, *jet_p)
    _, z0 = impact_parameters(x, y, z, px, py, pz, *jet_p)
    return d0, z0


def d0_error_with_beam_spot(d0_err: np.ndarray, det: dict[str, Any]) -> np.ndarray:
    """σ(d0) w.r.t. the beam line: the track's own resolution ⊕ the beam-spot width."""
    return np.hypot(d0_err, det["beam_spot_xy_mm"])


def lifetime_sign(d0: np.ndarray, z0: np.ndarray, dphi: np.ndarray,
                  jet_eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geometrically signed perigee (d0, z0) → jetfm's lifetime-signed convention.

    For the perigee convention d0 = (x·py − y·px)/pT (Delphes, and the public datasets made
    with it) the point of closest approach is d0·(sin φ, −cos φ), so its projection on the
    jet direction has the sign of d0·sin(φ − φ_jet); z0 is signed by the jet's pz, as in
    :func:`impact_parameters`.
    """
    d0_sign = np.where(d0 * np.sin(dphi) >= 0.0, 1.0, -1.0)
    z0_sign = np.where(z0 * jet_eta >= 0.0, 1.0, -1.0)
    return d0_sign * np.abs(d0), z0_sign * np.abs(z0)


@dataclass(frozen=True)
class TrackMeasurement:
    """Reconstructed quantities for the charged particles that were kept (``kept`` mask)."""

    kept: np.ndarray
    pt: np.ndarray
    d0: np.ndarray
    z0: np.ndarray
    d0_err: np.ndarray
    z0_err: np.ndarray


def measure_tracks(
    true_pt: np.ndarray, eta: np.ndarray,
    true_d0: np.ndarray, true_z0: np.ndarray,
    det: dict[str, Any], rng: np.random.Generator,
) -> TrackMeasurement:
    """Apply efficiency, pT smearing, acceptance and impact-parameter smearing.

    The resolutions are evaluated at the measured pT, as a reconstruction would.
    """
    n = len(true_pt)
    found = rng.random(n) < track_efficiency(true_pt, eta, det)
    rel = np.hypot(det["pt_resolution_constant"], det["pt_resolution_slope_per_gev"] * true_pt)
    pt = true_pt * (1.0 + rel * rng.standard_normal(n))
    kept = found & (pt > det["track_pt_min_gev"]) & (np.abs(eta) < det["track_abs_eta_max"])
    pt, eta_k = pt[kept], eta[kept]
    sigma_d0, sigma_z0 = ip_resolution(pt, eta_k, det)
    d0 = true_d0[kept] + sigma_d0 * rng.standard_normal(len(pt))
    z0 = true_z0[kept] + sigma_z0 * rng.standard_normal(len(pt))
    return TrackMeasurement(kept=kept, pt=pt, d0=d0, z0=z0, d0_err=sigma_d0, z0_err=sigma_z0)
