"""Physics validation of the boosted (JetClass-like) sample: per-class numbers and plots.

`jetfm validate --sample boosted` (rule validate_boosted) writes
results/validation/boosted.json and ``boosted_*.png`` figures next to it, from the
Parquet jet files alone: jet mass (with the resonance masses marked), constituent
multiplicity, N-subjettiness ratios τ21 and τ32, and the class fractions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from jetfm.jets import read_jet_table
from jetfm.jets.jet_sets import read_metadata
from jetfm.jets.parquet_io import JetTable
from jetfm.jets.substructure import nsubjettiness, tau_ratios
from jetfm.provenance import atomic_output, provenance
from jetfm.report.figures import save_png

matplotlib.use("Agg")

# PDG masses of the particle each class's jet comes from; None where the jet does not
# contain the whole decay (QCD: no resonance; t → bℓν and H → ℓνqq': the neutrino escapes).
EXPECTED_MASS_GEV: dict[str, float | None] = {
    "QCD": None, "Hbb": 125.2, "Hcc": 125.2, "Hgg": 125.2, "H4q": 125.2, "Hqql": None,
    "Zqq": 91.19, "Wqq": 80.37, "Tbqq": 172.6, "Tbl": None,
}
_MASS_BINS = np.arange(0.0, 300.0 + 1e-9, 5.0)


def mass_peak(mass: np.ndarray, bins: np.ndarray = _MASS_BINS) -> float | None:
    """Most probable value: centre of the fullest bin after a 3-bin running mean."""
    if len(mass) == 0:
        return None
    counts, edges = np.histogram(mass, bins=bins)
    smooth = np.convolve(counts, np.ones(3) / 3, mode="same")
    i = int(np.argmax(smooth))
    return float(0.5 * (edges[i] + edges[i + 1]))


def constituent_taus(table: JetTable, radius: float) -> np.ndarray:
    """τ1..τ3 per jet from the stored constituents (η, φ rebuilt from the jet axis)."""
    jet, _ = table.track_slots()
    eta = table.jets["jet_eta"][jet].astype(np.float64) + table.tracks["deta"]
    phi = table.jets["jet_phi"][jet].astype(np.float64) + table.tracks["dphi"]
    return nsubjettiness(table.tracks["pt"].astype(np.float64), eta, phi, np.diff(table.offsets),
                         n_max=3, radius=radius)


def per_class_numbers(table: JetTable, names: Sequence[str], taus: np.ndarray) -> dict[str, Any]:
    tau21, tau32 = tau_ratios(taus)
    counts = np.diff(table.offsets)
    out: dict[str, Any] = {}
    for label, name in enumerate(names):
        sel = table.jets["label"] == label
        if not sel.any():
            out[name] = {"n_jets": 0, "fraction": 0.0}
            continue
        mass = table.jets["jet_mass"][sel]
        out[name] = {
            "n_jets": int(sel.sum()),
            "fraction": float(sel.mean()),
            "mass_peak_gev": mass_peak(mass),
            "mass_median_gev": float(np.median(mass)),
            "expected_mass_gev": EXPECTED_MASS_GEV.get(name),
            "constituents_median": float(np.median(counts[sel])),
            "constituents_mean": float(counts[sel].mean()),
            "charged_fraction_mean": float(_charged_fraction(table)[sel].mean()),
            "tau21_median": float(np.nanmedian(tau21[sel])),
            "tau32_median": float(np.nanmedian(tau32[sel])),
            "pt_min_gev": float(table.jets["jet_pt"][sel].min()),
            "pt_max_gev": float(table.jets["jet_pt"][sel].max()),
        }
    return out


def _charged_fraction(table: JetTable) -> np.ndarray:
    jet, _ = table.track_slots()
    charged = np.bincount(jet, weights=(table.tracks["charge"] != 0), minlength=table.n_jets)
    return charged / np.maximum(np.diff(table.offsets), 1)


def _plots(table: JetTable, names: Sequence[str], taus: np.ndarray, out_dir: Path) -> list[str]:
    import matplotlib.pyplot as plt
    import mplhep

    mplhep.style.use("ROOT")
    written: list[str] = []
    tau21, tau32 = tau_ratios(taus)
    counts = np.diff(table.offsets)
    labels = table.jets["label"]
    present = [(i, n) for i, n in enumerate(names) if (labels == i).any()]
    colours = plt.cm.tab10(np.linspace(0, 1, 10))

    def save(fig: Any, name: str) -> None:
        written.append(save_png(fig, out_dir / f"boosted_{name}.png"))

    def per_class(values: np.ndarray, bins: np.ndarray, name: str, marks: bool = False,
                  **axes: Any) -> None:
        fig, ax = plt.subplots(figsize=(10, 7))
        for i, cls in present:
            sel = labels == i
            ax.hist(values[sel][np.isfinite(values[sel])], bins=bins, density=True, histtype="step",
                    color=colours[i], label=f"{cls} ({sel.sum()})")
        if marks:
            for mass, text in ((80.37, "W"), (91.19, "Z"), (125.2, "H"), (172.6, "t")):
                ax.axvline(mass, color="grey", ls="--", lw=1)
                ax.text(mass, 0.97, f" {text}", transform=ax.get_xaxis_transform(), va="top", fontsize=12)
        ax.set(**axes)
        ax.legend(ncol=2, fontsize=11)
        save(fig, name)

    per_class(table.jets["jet_mass"], _MASS_BINS, "jet_mass_by_class", marks=True,
              xlabel="jet mass [GeV] (dashed: W, Z, H, t masses)", ylabel="jets (normalised)")
    widest = int(counts.max(initial=1))
    per_class(counts.astype(float), np.arange(0.5, widest + 5.5, 5), "constituents_by_class",
              xlabel="constituents per jet", ylabel="jets (normalised)")
    for ratio, values in (("21", tau21), ("32", tau32)):
        per_class(values, np.linspace(0, 1, 41), f"tau{ratio}_by_class",
                  xlabel=f"τ{ratio} = τ{ratio[0]}/τ{ratio[1]}", ylabel="jets (normalised)")
    return written


def validate_boosted(jet_files: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """Write the validation JSON ``out`` and its figures beside it; return the numbers."""
    out = Path(out)
    table = JetTable.concatenate([read_jet_table(p) for p in jet_files])
    meta = read_metadata(jet_files[0])
    names = meta["label_names"]
    radius = meta["config"]["jets"]["radius"] if "config" in meta else 0.8
    taus = constituent_taus(table, radius)
    result = {
        "sample": "boosted",
        "jet_files": [Path(p).name for p in jet_files],
        "n_jets": table.n_jets,
        "classes": per_class_numbers(table, names, taus),
        "provenance": provenance("validate", {"jet_files": [Path(p).name for p in jet_files]}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    result["figures"] = _plots(table, names, taus, out.parent)
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result
