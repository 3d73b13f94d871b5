"""Calorimeter energy measurement for particles without a track. Pure numpy functions.

sigma(E)/E = stochastic/sqrt(E) ⊕ constant, ECAL for photons and electrons, HCAL for
hadrons. Directions are kept: the boosted jets' constituents are particle-flow-like
objects, and tower granularity is far finer than the R = 0.8 jet.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_ELECTROMAGNETIC = (11, 22)


def energy_resolution(energy: np.ndarray, pdg_id: np.ndarray, calo: dict[str, Any]) -> np.ndarray:
    """Relative energy resolution sigma(E)/E per particle."""
    em = np.isin(np.abs(pdg_id), _ELECTROMAGNETIC)
    stochastic = np.where(em, calo["ecal_stochastic"], calo["hcal_stochastic"])
    constant = np.where(em, calo["ecal_constant"], calo["hcal_constant"])
    return np.hypot(stochastic / np.sqrt(np.clip(energy, 1e-6, None)), constant)


def measure_energy(energy: np.ndarray, eta: np.ndarray, pdg_id: np.ndarray, calo: dict[str, Any],
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Smeared energies and which particles are seen (inside the acceptance, E > 0).

    Returns ``(scale, seen)``: the measured/true energy ratio to apply to each four-vector.
    """
    scale = 1.0 + energy_resolution(energy, pdg_id, calo) * rng.standard_normal(len(energy))
    seen = (np.abs(eta) < calo["abs_eta_max"]) & (scale > 0)
    return scale, seen
