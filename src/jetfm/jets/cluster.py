"""Anti-kt clustering with fastjet's awkward interface."""

from __future__ import annotations

import awkward as ak
import fastjet
import numpy as np
import vector

vector.register_awkward()

def visible_final_state(particles: ak.Array) -> ak.Array:
    """Final-state particles a calorimeter sees: status > 0, neutrinos removed."""
    abs_id = np.abs(particles.id)
    neutrino = (abs_id == 12) | (abs_id == 14) | (abs_id == 16)
    keep = (particles.status > 0) & ~neutrino
    return particles[keep]


def cluster_antikt(particles: ak.Array, radius: float, pt_min: float, abs_eta_max: float) -> ak.Array:
    """Anti-kt jets per event as Momentum4D records, pT-ordered, with pT and |eta| cuts."""
    inputs = ak.zip(
        {"px": particles.px, "py": particles.py, "pz": particles.pz, "E": particles.e},
        with_name="Momentum4D",
    )
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    sequence = fastjet.ClusterSequence(ak.values_astype(inputs, np.float64), jetdef)
    jets = sequence.inclusive_jets(min_pt=pt_min)
    jets = ak.zip({"px": jets.px, "py": jets.py, "pz": jets.pz, "E": jets.E},
                  with_name="Momentum4D")
    jets = jets[np.abs(jets.eta) < abs_eta_max]
    return jets[ak.argsort(jets.pt, axis=1, ascending=False)]
