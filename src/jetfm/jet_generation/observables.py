"""The jet observables that generated jets are judged by, from the constituents alone.

Every jet set — true, reconstructed by the tokenizer, generated — goes through the same
function, in the jet's own frame (η = Δη, φ = Δφ of the constituents, taken as massless):
jet pT and mass of the constituent sum, the number of constituents, τ21 and τ32
(exclusive-kt axes, normalised by the jet radius) and D2 (β = 1). Mass, pT magnitude, τ_N
and D2 are invariant under the boost and rotation into that frame, so true jets need not
carry their axis.
"""

from __future__ import annotations

import numpy as np

from jetfm.jets.parquet_io import JetTable
from jetfm.jets.substructure import energy_correlation_d2, jet_kinematics, nsubjettiness, tau_ratios

JET_OBSERVABLES = ("jet_mass", "jet_pt", "n_constituents", "tau21", "tau32", "d2")
CONSTITUENT_OBSERVABLES = ("constituent_pt", "constituent_deta", "constituent_dphi")
OBSERVABLES = JET_OBSERVABLES + CONSTITUENT_OBSERVABLES
INTEGER_OBSERVABLES = ("n_constituents",)
OBSERVABLE_LABELS = {
    "jet_mass": "jet mass [GeV]", "jet_pt": "jet $p_T$ [GeV]", "n_constituents": "constituents",
    "tau21": r"$\tau_{21}$", "tau32": r"$\tau_{32}$", "d2": r"$D_2$",
    "constituent_pt": r"constituent $p_T$ [GeV]", "constituent_deta": r"constituent $\Delta\eta$",
    "constituent_dphi": r"constituent $\Delta\phi$",
}


def jet_observables(table: JetTable, radius: float) -> dict[str, np.ndarray]:
    """Per-jet (``JET_OBSERVABLES``) and per-constituent (``CONSTITUENT_OBSERVABLES``) values.

    τ21, τ32 and D2 are NaN where undefined (too few constituents); distances skip them.
    """
    counts = np.diff(table.offsets)
    pt = table.tracks["pt"].astype(np.float64)
    eta = table.tracks["deta"].astype(np.float64)
    phi = table.tracks["dphi"].astype(np.float64)
    kinematics = jet_kinematics(pt, eta, phi, counts)
    tau21, tau32 = tau_ratios(nsubjettiness(pt, eta, phi, counts, n_max=3, radius=radius))
    return {
        "jet_mass": kinematics["mass"], "jet_pt": kinematics["pt"],
        "n_constituents": counts.astype(np.float64),
        "tau21": tau21, "tau32": tau32, "d2": energy_correlation_d2(pt, eta, phi, counts),
        "constituent_pt": pt, "constituent_deta": eta, "constituent_dphi": phi,
    }
