"""`jetfm generate-jets`: sample jets from a gpt backbone and write them as a Parquet jet set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from jetfm.jet_generation.evaluate import reference_halves
from jetfm.jet_generation.jet_sets import decode_codes
from jetfm.jet_generation.sample import sample_codes
from jetfm.jets.build import label_names
from jetfm.jets.jet_sets import read_jet_table
from jetfm.jets.parquet_io import JetTable, write_jet_table
from jetfm.models.checkpoint import load_next_token_model
from jetfm.provenance import provenance
from jetfm.training import resolve_device, set_threads


def condition_labels(n_jets: int, classes: list[str] | None, names: list[str], conditional: bool
                     ) -> np.ndarray:
    """Class of each jet to generate: ``classes`` in turn (equal shares), or −1 (no class)."""
    if not classes:
        return np.full(n_jets, -1, dtype=np.int64)
    if not conditional:
        raise ValueError("classes were asked for, but the backbone is not class-conditional")
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise ValueError(f"unknown classes {unknown} (have: {', '.join(names)})")
    wanted = np.array([names.index(c) for c in classes], dtype=np.int64)
    return wanted[np.arange(n_jets) % len(wanted)]


def generate_jet_file(params: dict[str, Any], checkpoint: str | Path, out: str | Path,
                      n_jets: int | None = None, reference: str | Path | None = None,
                      classes: list[str] | None = None, threads: int = 1, progress: bool = True) -> JetTable:
    """Generate jets with the gpt backbone ``checkpoint`` and write them to ``out``.

    Either ``n_jets`` (of ``classes`` in equal shares, for a class-conditional backbone) or
    ``reference``: a test jet file whose second half (:func:`reference_halves`) sets the
    number of jets and, for a class-conditional backbone, their classes — the jet_generation
    benchmark's set-up. ``params`` = ``stage_params(cfg, 'generate_jets', ...)``.
    """
    set_threads(threads)
    device = resolve_device(params["device"])
    model, blob = load_next_token_model(checkpoint, device)
    model.to(device)
    names = label_names(blob["sample"])
    conditional = model.encoder.n_classes > 0
    if (n_jets is None) == (reference is None):
        raise ValueError("give either the number of jets (--n-jets) or a reference jet file (--reference)")
    if reference is not None:
        if classes:
            raise ValueError("--class and --reference exclude each other: the reference sets the classes")
        second = reference_halves(read_jet_table(reference))[1]
        labels = second.jets["label"].astype(np.int64) if conditional \
            else np.full(second.n_jets, -1, dtype=np.int64)
    else:
        assert n_jets is not None
        if n_jets < 1:
            raise ValueError(f"--n-jets must be positive, got {n_jets}")
        labels = condition_labels(n_jets, classes, names, conditional)
    s = params["settings"]
    codes = sample_codes(model, len(labels), int(blob["max_constituents"]), seed=params["seed"],
                         temperature=s["temperature"], top_k=s["top_k"],
                         labels=torch.from_numpy(labels) if conditional else None,
                         batch_size=s["batch_size"], device=device, progress=progress)
    table = decode_codes(model.encoder.tokenizer.cpu(), codes, labels).with_source("generated")
    meta = provenance("generate_jets", params) | {
        "label_names": names,
        "generated": {"backbone": params["backbone_name"], "checkpoint": Path(checkpoint).name,
                      "checkpoint_config_hash": blob["provenance"]["config_hash"],
                      "sample": blob["sample"], "conditional": conditional,
                      "modelled_features": list(model.encoder.tokenizer.feature_names)},
    }
    write_jet_table(table, out, meta)
    return table
