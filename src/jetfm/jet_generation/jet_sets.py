"""Jet tables from token codes: decoding generated sequences and the tokenizer's reconstruction.

Decoded constituents are written in the usual jet schema (docs/data-formats.md). What the
tokens carry — the tokenizer's ``features``, for OmniJet-α pT, Δη, Δφ — is decoded; every
other constituent field takes the value "not modelled": 0 for impact parameters and their
errors and for the charge, −1 for ``pid``, ``vertex`` and ``origin``. Constituents are
ordered by pT; the jet columns are computed from them (massless constituents in the jet
frame, so ``jet_eta`` and ``jet_phi`` are the constituent sum's direction, close to 0).
"""

from __future__ import annotations

import numpy as np
import torch

from jetfm.contract import CONSTITUENT_FIELDS
from jetfm.data.features import pad_jets, postprocess_continuous
from jetfm.jets.parquet_io import JetTable
from jetfm.jets.substructure import jet_kinematics
from jetfm.models.vqvae import VQVAE
from jetfm.tokenize.vqvae import VQVAETokenizer

NOT_MODELLED = {"d0": 0.0, "z0": 0.0, "d0_err": 0.0, "z0_err": 0.0, "pid": -1, "charge": 0, "vertex": -1,
                "origin": -1}


def jets_from_features(features: torch.Tensor, mask: torch.Tensor, names: tuple[str, ...],
                       labels: np.ndarray) -> JetTable:
    """A jet table of preprocessed features [J, W, F] (``names``) on the slots ``mask`` [J, W]."""
    if "pt" not in names or "deta" not in names or "dphi" not in names:
        raise ValueError(f"decoded jets need pt, deta and dphi; the tokenizer has {list(names)}")
    mask_np = mask.numpy()
    jet, _ = np.nonzero(mask_np)
    values = postprocess_continuous(features[mask].numpy(), names)
    order = np.lexsort((-values["pt"], jet))  # by jet, then descending pT
    jet = jet[order]
    tracks = {k: (values[k][order] if k in values else np.full(len(jet), NOT_MODELLED[k]))
              for k in CONSTITUENT_FIELDS}
    counts = mask_np.sum(axis=1)
    kinematics = jet_kinematics(tracks["pt"], tracks["deta"], tracks["dphi"], counts)
    jets = {"jet_pt": kinematics["pt"], "jet_eta": kinematics["eta"], "jet_phi": kinematics["phi"],
            "jet_mass": kinematics["mass"], "n_constituents": counts, "label": np.asarray(labels),
            "event": np.arange(len(counts))}
    return JetTable.from_flat(jets, tracks, jet, np.ones(len(counts), dtype=bool))


def decode_codes(tokenizer: VQVAE, codes: torch.Tensor, labels: np.ndarray) -> JetTable:
    """Generated code sequences [J, W] (-1 after the last constituent) as a jet table."""
    wrapper = VQVAETokenizer(tokenizer, {})
    return jets_from_features(wrapper.decode(codes), codes >= 0, wrapper.feature_names, labels)


def reconstruct_jets(tokenizer: VQVAE, table: JetTable) -> JetTable:
    """True jets after tokenization and decoding: what a perfect token model would generate."""
    wrapper = VQVAETokenizer(tokenizer, {})
    data = pad_jets(table)
    return jets_from_features(wrapper.reconstruct(data), data.mask, wrapper.feature_names,
                              table.jets["label"])
