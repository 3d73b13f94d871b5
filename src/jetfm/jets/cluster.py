"""Anti-kt clustering with fastjet's awkward interface."""

from __future__ import annotations

import awkward as ak
import fastjet
import numpy as np
import vector

vector.register_awkward()


def _silence_fastjet_banner() -> None:
    """FastJet prints its banner to stdout at the first clustering, into every job log and
    into the JSON that benchmarks print; the citation lives in the docs instead."""
    try:
        from fastjet import _swig

        _swig.ClusterSequence.set_fastjet_banner_stream(None)
    except (ImportError, AttributeError):  # another fastjet build: keep its banner
        pass


_silence_fastjet_banner()


def visible_mask(status: np.ndarray, pdg_id: np.ndarray) -> np.ndarray:
    """Final-state particles a calorimeter sees: status > 0, neutrinos removed."""
    abs_id = np.abs(pdg_id)
    return (status > 0) & (abs_id != 12) & (abs_id != 14) & (abs_id != 16)


def clustering_input(flat: dict[str, np.ndarray], counts: np.ndarray, keep: np.ndarray) -> ak.Array:
    """Per-event four-vectors of the kept particles, from flat columns (no awkward masking)."""
    event = np.repeat(np.arange(len(counts)), counts)
    kept_counts = np.bincount(event[keep], minlength=len(counts))
    return ak.unflatten(
        ak.zip({"px": flat["px"][keep].astype(np.float64), "py": flat["py"][keep].astype(np.float64),
                "pz": flat["pz"][keep].astype(np.float64), "E": flat["e"][keep].astype(np.float64)},
               with_name="Momentum4D"),
        kept_counts,
    )


def cluster_antikt(inputs: ak.Array, radius: float, pt_min: float, abs_eta_max: float) -> ak.Array:
    """Anti-kt jets per event as Momentum4D records, pT-ordered, with pT and |eta| cuts."""
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    jets = fastjet.ClusterSequence(inputs, jetdef).inclusive_jets(min_pt=pt_min)
    jets = ak.zip({"px": jets.px, "py": jets.py, "pz": jets.pz, "E": jets.E}, with_name="Momentum4D")
    jets = jets[np.abs(jets.eta) < abs_eta_max]
    return jets[ak.argsort(jets.pt, axis=1, ascending=False)]
