"""Physics validation of the btag sample: numbers with their expectations, and plots.

`jetfm validate` (rule validate) writes results/validation/btag.json and PNG figures
next to it. Each quantity is computed from the files alone (Parquet jets, one ROOT event
file), so the check also works on samples made elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from jetfm.downstream.metrics import n_secondary_vertices
from jetfm.events.root_io import flat_particles, read_events
from jetfm.jets import read_jet_table, truth
from jetfm.jets.parquet_io import JetTable
from jetfm.provenance import atomic_output, provenance
from jetfm.report.figures import save_png

matplotlib.use("Agg")

FLAVOURS = {0: "light", 1: "c", 2: "b"}
# PDG 2024: cτ(B0) = 0.455 mm, cτ(B+) = 0.491 mm; Δ(1232) pole mass.
CTAU_B_MM = {"511": 0.455, "521": 0.491}
DELTA_PP_MASS_GEV = 1.232


@dataclass(frozen=True)
class _JetStats:
    """Per-jet and per-track quantities shared by the numbers and the figures."""

    label: np.ndarray  # per jet
    n_tracks: np.ndarray  # per jet
    n_sv: np.ndarray  # per jet: true secondary vertices with a track
    track_label: np.ndarray  # per track: its jet's flavour
    significance: np.ndarray  # per track: lifetime-signed d0 / sigma(d0)

    @classmethod
    def of(cls, table: JetTable) -> _JetStats:
        counts = np.diff(table.offsets)
        jet, slot = table.track_slots()
        vertex = np.full((table.n_jets, int(counts.max(initial=1))), -1)
        vertex[jet, slot] = table.tracks["vertex"]
        return cls(table.jets["label"], counts, n_secondary_vertices(vertex, vertex >= 0),
                   table.jets["label"][jet], table.tracks["d0"] / table.tracks["d0_err"])


def _per_flavour(stats: _JetStats) -> dict[str, dict[str, float]]:
    out = {}
    for label, name in FLAVOURS.items():
        jets = stats.label == label
        tracks = stats.track_label == label
        if not jets.any():
            continue
        out[name] = {
            "fraction": float(jets.mean()),
            "n_jets": int(jets.sum()),
            "tracks_per_jet_mean": float(stats.n_tracks[jets].mean()),
            "d0_significance_median": float(np.median(stats.significance[tracks])),
            "d0_significance_fraction_above_3": float((stats.significance[tracks] > 3).mean()),
            "secondary_vertices_mean": float(stats.n_sv[jets].mean()),
            "fraction_with_secondary_vertex": float((stats.n_sv[jets] > 0).mean()),
        }
    return out


def _event_checks(event_file: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    events = read_events(event_file)
    flat, event = flat_particles(events)
    ctau = {}
    samples = {}
    position = np.stack([flat["x"], flat["y"], flat["z"]], axis=1).astype(np.float64)
    momentum = np.stack([flat["px"], flat["py"], flat["pz"]], axis=1).astype(np.float64)
    for pdg in CTAU_B_MM:
        rows = np.flatnonzero(np.abs(flat["id"]) == int(pdg))
        values = truth.proper_decay_lengths(rows, event, flat["no"], flat["mother1"], position,
                                            momentum, flat["m"].astype(np.float64))
        values = values[np.isfinite(values)]
        samples[f"ctau_{pdg}"] = values
        ctau[pdg] = {"n": len(values), "mean_mm": float(values.mean()) if len(values) else None,
                     "expected_mm": CTAU_B_MM[pdg]}
    delta = flat["m"][flat["id"] == 2224]
    samples["delta_mass"] = delta
    counts, edges = np.histogram(delta, bins=np.arange(1.08, 1.6, 0.025))
    final = flat["status"] > 0
    samples["pz"] = flat["pz"][final]
    checks = {
        "event_file": Path(event_file).name,
        "b_hadron_ctau": ctau,
        "delta_pp": {"n": len(delta), "expected_gev": DELTA_PP_MASS_GEV,
                     "mode_gev": float(edges[np.argmax(counts)] + 0.0125) if len(delta) else None},
        "final_state_particles_per_event": float(final.sum() / len(events)),
    }
    return checks, samples


def _plots(stats: _JetStats, samples: dict[str, np.ndarray], out_dir: Path) -> list[str]:
    import matplotlib.pyplot as plt
    import mplhep

    mplhep.style.use("ROOT")
    written = []

    def save(fig: Any, name: str) -> None:
        written.append(save_png(fig, out_dir / f"{name}.png"))

    def per_flavour(values: np.ndarray, labels: np.ndarray, bins: np.ndarray, name: str, **axes: Any) -> None:
        fig, ax = plt.subplots()
        for label, flavour in FLAVOURS.items():
            sel = labels == label
            if sel.any():
                ax.hist(values[sel], bins=bins, density=True, histtype="step", label=f"{flavour} jets")
        ax.set(**axes)
        ax.legend()
        save(fig, name)

    per_flavour(np.clip(stats.significance, -20, 40), stats.track_label, np.linspace(-20, 40, 61),
                "d0_significance_by_flavour", yscale="log",
                xlabel="track d0 / σ(d0), lifetime-signed (edge bins: overflow)",
                ylabel="tracks (normalised)")
    widest = int(stats.n_tracks.max(initial=1))
    per_flavour(stats.n_tracks, stats.label, np.arange(0.5, widest + 1.5), "track_multiplicity_by_flavour",
                xlabel="tracks per jet", ylabel="jets (normalised)")
    per_flavour(stats.n_sv, stats.label, np.arange(-0.5, 6.5), "secondary_vertices_by_flavour",
                xlabel="true secondary vertices with a track", ylabel="jets (normalised)")

    fig, ax = plt.subplots()
    for pdg in CTAU_B_MM:
        values = samples[f"ctau_{pdg}"]
        if len(values):
            ax.hist(values, bins=np.linspace(0, 3, 31), density=True, histtype="step", label=f"|id| = {pdg}")
    x = np.linspace(0, 3, 200)
    mean_ctau = float(np.mean(list(CTAU_B_MM.values())))
    ax.plot(x, np.exp(-x / mean_ctau) / mean_ctau, "k--", label=f"exp(−x/{mean_ctau:.3f} mm)")
    ax.set(yscale="log", xlabel="B meson proper decay length cτ [mm]", ylabel="density")
    ax.legend()
    save(fig, "b_hadron_decay_length")

    fig, ax = plt.subplots()
    ax.hist(samples["delta_mass"], bins=np.arange(1.08, 1.9, 0.02), histtype="step")
    ax.axvline(DELTA_PP_MASS_GEV, color="r", ls="--", label="1.232 GeV")
    ax.set(xlabel="Δ++ mass [GeV]", ylabel="Δ++ (id 2224)")
    ax.legend()
    save(fig, "delta_pp_mass")

    fig, ax = plt.subplots()
    ax.hist(samples["pz"], bins=np.linspace(-500, 500, 101), histtype="step")
    ax.set(yscale="log", xlabel="final-state particle pz [GeV]", ylabel="particles")
    save(fig, "final_state_pz")
    return written


def validate_btag(jet_file: str | Path, event_file: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the validation JSON ``out`` and its figures beside it; return the numbers."""
    out = Path(out)
    table = read_jet_table(jet_file)
    stats = _JetStats.of(table)
    checks, samples = _event_checks(event_file)
    result = {
        "sample": "btag",
        "jet_file": Path(jet_file).name,
        "n_jets": table.n_jets,
        "flavours": _per_flavour(stats),
        **checks,
        "provenance": provenance("validate", {"jet_file": Path(jet_file).name,
                                              "event_file": Path(event_file).name}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    result["figures"] = _plots(stats, samples, out.parent)
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result
