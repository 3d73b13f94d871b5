"""Events → jets with tracks and truth labels (rule jets, `jetfm jets`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from tqdm import tqdm

from jetfm.contract import LABEL_B, LABEL_C, LABEL_LIGHT, LABEL_NAMES, ORIGIN_NAMES, SPLITS
from jetfm.detector import d0_error_with_beam_spot, impact_parameters_with_beam_spot, measure_tracks
from jetfm.events.root_io import flat_particles, read_events, read_provenance
from jetfm.jets import truth
from jetfm.jets.boosted import boosted_jets_from_events
from jetfm.jets.cluster import cluster_antikt, clustering_input, visible_mask
from jetfm.jets.constituents import constituent_truth, leading_per_jet
from jetfm.jets.pairs import delta_r, nearest_within, pt_eta_phi, same_event_pairs, wrap_phi
from jetfm.jets.parquet_io import JetTable, write_jet_tables
from jetfm.jets.readers import read_source
from jetfm.provenance import provenance

# The particle branches the jets stage reads (m, mother2 and t are not needed).
JETS_STAGE_FIELDS = ("no", "id", "status", "mother1", "px", "py", "pz", "e", "charge", "x", "y", "z")


def _file_seed(base: int, path: Path) -> int:
    return int.from_bytes(hashlib.sha256(f"{base}:{path.name}".encode()).digest()[:8], "little")


def jets_from_events(events: ak.Array, jets_cfg: dict[str, Any], det: dict[str, Any],
                     rng: np.random.Generator) -> JetTable:
    """Cluster, measure tracks, associate them to jets and label everything, for one file."""
    n_events = len(events)
    flat, event_of = flat_particles(events)
    counts = np.bincount(event_of, minlength=n_events)
    index = truth.RecordIndex(event_of, flat["no"])

    visible = clustering_input(flat, counts, visible_mask(flat["status"], flat["id"]))
    jets = cluster_antikt(visible, jets_cfg["radius"], jets_cfg["pt_min_gev"], jets_cfg["abs_eta_max"])
    jet_event = np.repeat(np.arange(n_events), ak.num(jets).to_numpy())
    fj = ak.flatten(jets)
    jet_px, jet_py, jet_pz, jet_e = (ak.to_numpy(getattr(fj, a)) for a in ("px", "py", "pz", "E"))
    jet_pt, jet_eta, jet_phi = pt_eta_phi(jet_px, jet_py, jet_pz)
    jet_mass = np.sqrt(np.clip(jet_e**2 - jet_px**2 - jet_py**2 - jet_pz**2, 0.0, None))

    # --- tracks: charged final-state particles through the detector --------------------
    charged = np.flatnonzero((flat["status"] > 0) & (flat["charge"] != 0))
    t_pt, t_eta, t_phi = pt_eta_phi(*(flat[k][charged].astype(np.float64) for k in ("px", "py", "pz")))
    inside = np.abs(t_eta) < det["tracking"]["track_abs_eta_max"]  # the rest never makes a track
    charged, t_pt, t_eta, t_phi = charged[inside], t_pt[inside], t_eta[inside], t_phi[inside]
    t_event = event_of[charged]

    # Nearest jet in ΔR (within track_match_dr) owns the track. Rows are event-ordered.
    owner = nearest_within(t_event, t_eta, t_phi, jet_event, jet_eta, jet_phi, n_events,
                           jets_cfg["track_match_dr"])
    sel = np.flatnonzero(owner >= 0)
    t_jet = owner[sel]
    rows = charged[sel]

    true_d0, true_z0 = impact_parameters_with_beam_spot(
        *(flat[k][rows].astype(np.float64) for k in ("x", "y", "z", "px", "py", "pz")),
        event_of[rows], (jet_px[t_jet], jet_py[t_jet], jet_pz[t_jet]), det["tracking"], rng)
    meas = measure_tracks(t_pt[sel], t_eta[sel], true_d0, true_z0, det["tracking"], rng)
    rows, t_jet = rows[meas.kept], t_jet[meas.kept]
    trk = {
        "pt": meas.pt,
        "deta": t_eta[sel][meas.kept] - jet_eta[t_jet],
        "dphi": wrap_phi(t_phi[sel][meas.kept] - jet_phi[t_jet]),
        "d0": meas.d0, "z0": meas.z0, "z0_err": meas.z0_err,
        "d0_err": d0_error_with_beam_spot(meas.d0_err, det["tracking"]),
    }

    # Leading max_tracks tracks of each jet, pT-ordered.
    order, rank = leading_per_jet(t_jet, trk["pt"], len(jet_pt))
    keep = rank < jets_cfg["max_tracks"]
    order, rank = order[keep], rank[keep]
    t_jet, rows = t_jet[order], rows[order]
    trk = {k: v[order] for k, v in trk.items()}
    n_tracks = np.bincount(t_jet, minlength=len(jet_pt))

    # --- truth: origin, vertex, flavour ------------------------------------------------
    weak_b, weak_c = truth.weak_heavy_hadron_rows(flat["id"], event_of, flat["no"], flat["mother1"])
    trk["origin"], trk["vertex"] = constituent_truth(flat, event_of, index, weak_b, weak_c, rows, t_jet,
                                                     rank, jets_cfg["vertex_merge_mm"])
    trk["pid"] = truth.pid_class(flat["id"][rows], flat["charge"][rows])
    trk["charge"] = flat["charge"][rows].astype(np.int8)

    label = _flavour_labels(flat, weak_b, weak_c, event_of, jets_cfg, n_events,
                            jet_event, jet_eta, jet_phi)

    keep_jet = n_tracks >= jets_cfg["min_tracks"]
    return JetTable.from_flat(
        jets={"jet_pt": jet_pt, "jet_eta": jet_eta, "jet_phi": jet_phi, "jet_mass": jet_mass,
              "n_constituents": n_tracks, "label": label, "event": jet_event},
        tracks=trk, track_jet=t_jet, keep_jet=keep_jet,
    )


def _flavour_labels(flat: dict[str, np.ndarray], weak_b: np.ndarray, weak_c: np.ndarray,
                    event_of: np.ndarray, jets_cfg: dict[str, Any], n_events: int,
                    jet_event: np.ndarray, jet_eta: np.ndarray, jet_phi: np.ndarray) -> np.ndarray:
    """b if a weakly decaying b hadron (pT above threshold) lies within ΔR of the jet axis,
    else c likewise, else light (ATLAS-style cone labelling)."""
    label = np.full(len(jet_eta), LABEL_LIGHT, dtype=np.int8)
    hadron_pt = np.hypot(flat["px"], flat["py"])
    for flavour, weak in ((LABEL_C, weak_c), (LABEL_B, weak_b)):
        cand = np.flatnonzero(weak & (hadron_pt > jets_cfg["heavy_hadron_pt_min_gev"]))
        _, h_eta, h_phi = pt_eta_phi(flat["px"][cand], flat["py"][cand], flat["pz"][cand])
        ia, ib = same_event_pairs(event_of[cand], jet_event, n_events)
        hit = delta_r(h_eta[ia], h_phi[ia], jet_eta[ib], jet_phi[ib]) < jets_cfg["flavour_match_dr"]
        label[ib[hit]] = flavour  # b is assigned last, so it wins over c
    return label


def split_of_events(n_events: int, seed: int, fractions: dict[str, float]) -> np.ndarray:
    """Split index (0 train, 1 val, 2 test) per event, reproducible from the seed."""
    u = np.random.default_rng(seed).random(n_events)
    edges = np.cumsum([fractions[s] for s in SPLITS])
    return np.searchsorted(edges, u, side="right").clip(0, len(SPLITS) - 1)


def label_names(sample: str) -> list[str]:
    return list(LABEL_NAMES[sample])


def _tables_from_events(path: Path, params: dict[str, Any]) -> tuple[JetTable, int, int]:
    """One generated event file → its jets, the number of events and the file's seed."""
    det = params["detector"]
    seed = _file_seed(det["seed"], path)
    rng = np.random.default_rng(seed)
    made_by = read_provenance(path).get("config", {})
    if made_by.get("sample") != params["sample"]:
        raise ValueError(f"{path}: not a {params['sample']}-sample event file (made for sample "
                         f"{made_by.get('sample')!r}, process {made_by.get('process')!r})")
    events = read_events(path, JETS_STAGE_FIELDS)
    if len(events) == 0:
        raise ValueError(f"{path}: holds no events")
    if params["sample"] == "btag":
        table = jets_from_events(events, params["jets"], det, rng)
    else:
        table = boosted_jets_from_events(events, made_by["process"], params["jets"], det, rng)
    return table, len(events), seed


def build_jet_sets(event_files: Sequence[str | Path], params: dict[str, Any],
                   outputs: dict[str, str | Path], progress: bool = True) -> dict[str, int]:
    """Turn ROOT files (usually one shard) into train/val/test Parquet jet files.

    ``params`` is ``stage_params(cfg, 'jets', sample=...)``: generated event files for
    source ``pythia``, public-dataset files for ``btag-root``/``jetclass-root``.
    ``outputs`` maps split → path. Returns the number of jets per split. A jet's split is a
    pure function of (detector seed, file name, event), so adding a shard never moves a jet
    between splits; class fractions are applied by the split's manifest (:mod:`jetfm.jets.manifest`).
    """
    jets_cfg, sample, source = params["jets"], params["sample"], params["source"]
    if set(outputs) != set(SPLITS):
        raise ValueError(f"outputs must name the splits {SPLITS}, got {sorted(outputs)}")
    if not event_files:
        raise ValueError("no input files given")
    paths = [Path(p) for p in event_files]
    event_keys = _refuse_repeated_inputs(paths, source)
    parts: dict[str, list[JetTable]] = {s: [] for s in SPLITS}
    for path in tqdm(paths, desc=f"jets {sample}", unit="file", disable=not progress):
        if source == "pythia":
            table, n_events, seed = _tables_from_events(path, params)
        else:
            width = jets_cfg["max_tracks"] if sample == "btag" else jets_cfg["max_constituents"]
            table = read_source(source, path, width)
            n_events = int(table.jets["event"].max(initial=-1)) + 1
            seed = _file_seed(0, path)
        table = table.with_source(path.stem)
        jet_split = split_of_events(n_events, seed + 1, jets_cfg["split"])[table.jets["event"]]
        for i, name in enumerate(SPLITS):
            parts[name].append(table.select(jet_split == i))
    meta = provenance("jets", params) | {
        "label_names": label_names(sample),
        "origin_names": list(ORIGIN_NAMES),
        "inputs": [p.name for p in paths],
        # what a manifest needs to refuse two shards of the same events
        "event_keys": event_keys,
    }
    tables = {name: JetTable.concatenate(parts[name]) for name in SPLITS}
    if sum(t.n_jets for t in tables.values()) == 0:  # checked before anything is written
        raise ValueError(f"the selection selects no jets from {len(paths)} files "
                         f"(config key 'samples.{sample}.jets'); nothing written")
    write_jet_tables(tables, outputs, {name: meta | {"split": name} for name in tables},
                     row_group_jets=jets_cfg.get("row_group_jets"))
    return {name: table.n_jets for name, table in tables.items()}


def _refuse_repeated_inputs(paths: list[Path], source: str) -> list[list[Any]]:
    """The same events twice would double every jet: the same file, or a generated file whose
    Pythia seed and process another one already has."""
    seen: dict[Any, Path] = {}
    event_keys: list[list[Any]] = []
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"event file not found: {path}")
        keys: list[Any] = [path.resolve()]
        if source == "pythia":
            made_by = read_provenance(path)
            keys.append((made_by.get("config", {}).get("process"), made_by.get("pythia_seed")))
            event_keys.append(list(keys[-1]))
        for key in keys:
            if key in seen:
                what = "given twice" if key == path.resolve() else f"holds the same events as {seen[key]}"
                raise ValueError(f"{path}: {what} (each event file may be read once)")
            seen[key] = path
    return event_keys
