"""The jet_generation benchmark: how far generated jets are from true ones, next to a floor and a ceiling.

The test jets of the backbone's sample are split once, at random with a fixed seed, into
two halves A and B. Every candidate is compared with A, observable by observable
(:mod:`jetfm.jet_generation.observables`, :mod:`jetfm.jet_generation.distances`):

- ``generated`` (one row per backbone and sampling seed): as many generated jets as B
  holds, with B's class mix for a class-conditional backbone;
- ``reconstructed`` (one row per backbone): B through the backbone's own tokenizer, encoded
  and decoded — a perfect next-token model would generate exactly this, so it is the
  ceiling of what the backbone can reach;
- ``baseline-truth`` (the baselines file): B itself, the distance that A's and B's finite
  statistics alone give (the floor).

A row's ``value`` is the mean over the six jet observables of W1 / σ(A); ``bins`` holds each
observable's W1 / σ(A), ``wasserstein`` the W1 in the observable's units, ``kl`` the binned
KL(A ‖ candidate), and ``hist``/``reference_hist``/``edges`` the histograms for the plots.

``bootstrap`` holds the distances as OmniJet-α reports them: KL on 50 quantile bins and W1,
mean ± std over ten bootstrap batches, against the reference OmniJet-α uses for each row
(``bootstrap_reference``): generated jets against the tokenizer's reconstruction of A (what
the model was trained to produce), the reconstruction of B against the true A (the ceiling),
B against A (the floor).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jetfm.jet_generation.distances import (
    binned_kl,
    bootstrap_distances,
    finite,
    histogram,
    histogram_edges,
    wasserstein_1,
)
from jetfm.jet_generation.jet_sets import reconstruct_jets
from jetfm.jet_generation.observables import (
    INTEGER_OBSERVABLES,
    JET_OBSERVABLES,
    OBSERVABLES,
    jet_observables,
)
from jetfm.jets.jet_sets import read_jet_table, read_metadata
from jetfm.jets.parquet_io import JetTable
from jetfm.provenance import provenance
from jetfm.results import write_result

METRIC = "mean_w1_over_std"
HALVES_SEED = 20240305  # the split of the test jets into the reference A and the second sample B
MIN_CLASS_JETS = 20  # per-class distances only for classes with at least this many jets on both sides
BOOTSTRAP_BATCHES = 10
BOOTSTRAP_SEED = 20240306


def reference_halves(table: JetTable) -> tuple[JetTable, JetTable]:
    """The test jets split into halves A (reference) and B (second true sample), always the same way."""
    rng = np.random.default_rng(HALVES_SEED)
    in_a = np.zeros(table.n_jets, dtype=bool)
    in_a[rng.permutation(table.n_jets)[: (table.n_jets + 1) // 2]] = True
    return table.select(in_a), table.select(~in_a)


def _mean_w1_over_std(reference: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> float:
    ratios = []
    for name in JET_OBSERVABLES:
        std = float(np.std(finite(reference[name])))
        ratios.append(wasserstein_1(reference[name], other[name]) / std if std > 0 else np.nan)
    return float(np.nanmean(ratios))


def compare_jets(reference: JetTable, other: JetTable, settings: dict[str, Any],
                 label_names: list[str] | None = None) -> dict[str, Any]:
    """Distances of ``other`` to ``reference`` for every observable, and their histograms."""
    if reference.n_jets == 0 or other.n_jets == 0:
        raise ValueError(f"cannot compare {reference.n_jets} reference jets with {other.n_jets} jets")
    radius, n_bins = settings["radius"], settings["bins"]
    ref, obs = jet_observables(reference, radius), jet_observables(other, radius)
    row: dict[str, Any] = {"value": _mean_w1_over_std(ref, obs), "n_eval": other.n_jets,
                           "n_reference": reference.n_jets, "bins": {}, "wasserstein": {}, "kl": {},
                           "hist": {}, "reference_hist": {}, "edges": {}}
    for name in OBSERVABLES:
        edges = histogram_edges(ref[name], n_bins, integer=name in INTEGER_OBSERVABLES)
        ref_counts, counts = histogram(ref[name], edges), histogram(obs[name], edges)
        w1, std = wasserstein_1(ref[name], obs[name]), float(np.std(finite(ref[name])))
        row["bins"][name] = w1 / std if std > 0 else float("nan")
        row["wasserstein"][name] = w1
        row["kl"][name] = binned_kl(ref_counts, counts)
        row["hist"][name] = counts.tolist()
        row["reference_hist"][name] = ref_counts.tolist()
        row["edges"][name] = edges.tolist()
    labels, ref_labels = other.jets["label"], reference.jets["label"]
    if label_names and (labels >= 0).all():  # class-conditional generation, or true jets
        per_class = {}
        for c, name in enumerate(label_names):
            a, b = ref_labels == c, labels == c
            if a.sum() >= MIN_CLASS_JETS and b.sum() >= MIN_CLASS_JETS:
                per_class[name] = _mean_w1_over_std(jet_observables(reference.select(a), radius),
                                                    jet_observables(other.select(b), radius))
        row["per_class"] = per_class
    return row


def bootstrap_row(reference: JetTable, other: JetTable, radius: float, what: str) -> dict[str, Any]:
    """The OmniJet-α distances of ``other`` to ``reference`` (named ``what``), every observable."""
    ref, obs = jet_observables(reference, radius), jet_observables(other, radius)
    return {"bootstrap_reference": what,
            "bootstrap": {name: bootstrap_distances(ref[name], obs[name], BOOTSTRAP_BATCHES, BOOTSTRAP_SEED)
                          for name in OBSERVABLES}}


def truth_floor_row(test_file: str | Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The second true half B against A: the distances finite statistics alone give."""
    a, b = reference_halves(read_jet_table(test_file))
    names = read_metadata(test_file).get("label_names")
    return {"backbone": "baseline-truth", "mode": "baseline", "seed": 0, "n_train": 0,
            **compare_jets(a, b, settings, names), **bootstrap_row(a, b, settings["radius"], "true A")}


def evaluate_generation(params: dict[str, Any], test_file: str | Path, out: str | Path,
                        generated_file: str | Path | None = None, checkpoint: str | Path | None = None
                        ) -> dict[str, Any]:
    """Score one jet_generation run (mode ``generated`` or ``reconstructed``) and write its JSON."""
    from jetfm.models.checkpoint import load_backbone
    from jetfm.models.token_encoder import TokenJetEncoder

    mode, name = params["mode"], params["backbone_name"]
    if mode not in ("generated", "reconstructed"):
        raise ValueError(f"unknown jet_generation mode '{mode}' (expected 'generated' or 'reconstructed')")
    a, b = reference_halves(read_jet_table(test_file))
    names = read_metadata(test_file).get("label_names")
    if mode == "generated":
        if generated_file is None:
            raise ValueError("mode 'generated' needs the generated jet file (--generated)")
        made_by = read_metadata(generated_file).get("generated", {})
        if made_by.get("backbone") != name:
            raise ValueError(f"{generated_file}: generated by backbone {made_by.get('backbone')!r}, "
                             f"not '{name}'")
    if checkpoint is None:
        raise ValueError(f"mode '{mode}' needs the backbone checkpoint (--checkpoint): its tokenizer "
                         "reconstructs the true jets")
    encoder = load_backbone(checkpoint)
    if not isinstance(encoder, TokenJetEncoder):
        raise ValueError(f"{checkpoint}: not a gpt backbone, it has no tokenizer to reconstruct with")
    radius = params["settings"]["radius"]
    if mode == "generated":
        other = read_jet_table(generated_file)
        boot = bootstrap_row(reconstruct_jets(encoder.tokenizer, a), other, radius, "reconstructed A")
    else:
        other = reconstruct_jets(encoder.tokenizer, b)
        boot = bootstrap_row(a, other, radius, "true A")
    row = {"backbone": name, "mode": mode, "seed": params["seed"], "n_train": None,
           **compare_jets(a, other, params["settings"], names), **boot}
    meta = provenance("evaluate_generation", params)
    result = {"benchmark": "jet_generation", "metric": METRIC, "config_hash": meta["config_hash"],
              "rows": [row], "provenance": meta}
    write_result(result, out)
    return result
