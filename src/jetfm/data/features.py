"""Constituent features as the models see them.

The 7 continuous features of the MPMv2 paper (pT, Δη, Δφ, d0, z0, σ(d0), σ(z0)) pass
through fixed, documented transforms (no fitted statistics), so the tokenizer, the
pre-training and every downstream task agree on them by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from jetfm.contract import CONTINUOUS_FEATURES
from jetfm.jets.parquet_io import JetTable

JET_KINEMATICS = ("jet_pt", "jet_eta", "jet_phi", "jet_mass")
# Version of the transforms below; stored with tokenizers and backbones.
FEATURE_VERSION = 1


def preprocess_continuous(tracks: dict[str, np.ndarray]) -> np.ndarray:
    """[n, 7] float32 model inputs, each of order one.

    log pT; Δη, Δφ in units of 0.4; asinh-compressed impact parameters (linear within
    ~50 µm / 100 µm, logarithmic in the lifetime tails); log resolutions.
    """
    columns = [
        np.log(np.clip(tracks["pt"], 1e-3, None)) - 1.5,
        tracks["deta"] / 0.4,
        tracks["dphi"] / 0.4,
        np.arcsinh(tracks["d0"] / 0.05) / 3.0,
        np.arcsinh(tracks["z0"] / 0.1) / 3.0,
        np.log(np.clip(tracks["d0_err"], 1e-4, None) / 0.02),
        np.log(np.clip(tracks["z0_err"], 1e-4, None) / 0.05),
    ]
    return np.stack(columns, axis=1).astype(np.float32)


# Inverse of each transform in preprocess_continuous; ``xp`` is numpy or torch (same function names).
_INVERSE = {
    "pt": lambda f, xp: xp.exp(f + 1.5),
    "deta": lambda f, xp: f * 0.4,
    "dphi": lambda f, xp: f * 0.4,
    "d0": lambda f, xp: xp.sinh(3.0 * f) * 0.05,
    "z0": lambda f, xp: xp.sinh(3.0 * f) * 0.1,
    "d0_err": lambda f, xp: xp.exp(f) * 0.02,
    "z0_err": lambda f, xp: xp.exp(f) * 0.05,
}


def postprocess_continuous(features: np.ndarray, names: tuple[str, ...] | list[str] = CONTINUOUS_FEATURES
                           ) -> dict[str, np.ndarray]:
    """Physical values (GeV, mm) of preprocessed features [n, F] in ``names`` order: the inverse
    of :func:`preprocess_continuous` (exact above its clipping floors)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != len(names):
        raise ValueError(f"features of shape {features.shape} do not match the {len(names)} names "
                         f"{list(names)}")
    return {name: _INVERSE[name](features[:, i], np).astype(np.float32) for i, name in enumerate(names)}


def physical_constituents(features: torch.Tensor) -> dict[str, torch.Tensor]:
    """Physical values (GeV, mm) of model features [..., 7] as tensors, on their device."""
    if features.shape[-1] != len(CONTINUOUS_FEATURES):
        raise ValueError(f"expected {len(CONTINUOUS_FEATURES)} features, got shape {tuple(features.shape)}")
    features = features.float()
    return {name: _INVERSE[name](features[..., i], torch) for i, name in enumerate(CONTINUOUS_FEATURES)}


def most_per_row(flags: torch.Tensor) -> int:
    """The largest number of True entries in a row of [B, N] ``flags`` (at least 1)."""
    return max(int(flags.sum(dim=1).max()), 1) if len(flags) else 1


@dataclass(frozen=True)
class PaddedJets:
    """Fixed-size tensors for a jet set: [jets, max_tracks, ...] with a validity mask."""

    features: torch.Tensor  # float32 [J, T, 7]
    pid: torch.Tensor  # int64 [J, T]
    mask: torch.Tensor  # bool [J, T]
    vertex: torch.Tensor  # int64 [J, T], -1 on padding
    origin: torch.Tensor  # int64 [J, T], -1 on padding
    label: torch.Tensor  # int64 [J]
    # float32 [J, 4]: the jet's (pT, η, φ, mass), for models that read absolute or jet-relative
    # kinematics (the ParT reference); None where a caller built the tensors by hand
    jet: torch.Tensor | None = None
    # int64 [J, T] per tokenizer task, -1 on padding: tokens computed with the jets (a streamed
    # pool's), so that a training step need not tokenize its batch
    tokens: dict[str, torch.Tensor] | None = None

    def __len__(self) -> int:
        return self.features.shape[0]

    def subset(self, index: torch.Tensor | slice, keep_width: bool = False) -> PaddedJets:
        """The selected jets, with padding columns that no selected jet uses removed (unless
        ``keep_width``)."""
        mask = self.mask[index]
        width = mask.shape[1] if keep_width else most_per_row(mask)
        tokens = None if self.tokens is None else {k: v[index][:, :width] for k, v in self.tokens.items()}
        return PaddedJets(self.features[index][:, :width], self.pid[index][:, :width], mask[:, :width],
                          self.vertex[index][:, :width], self.origin[index][:, :width], self.label[index],
                          None if self.jet is None else self.jet[index], tokens)

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(dim=1)

    def apply(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> PaddedJets:
        """The same jets with ``fn`` applied to every tensor (tokens and kinematics included)."""
        return PaddedJets(fn(self.features), fn(self.pid), fn(self.mask), fn(self.vertex), fn(self.origin),
                          fn(self.label), None if self.jet is None else fn(self.jet),
                          None if self.tokens is None else {k: fn(v) for k, v in self.tokens.items()})

    @property
    def device(self) -> torch.device:
        return self.features.device

    def pin_memory(self) -> PaddedJets:
        """A copy in page-locked host memory, from which copies to a GPU run asynchronously; a
        DataLoader with ``pin_memory=True`` calls this for every batch."""
        return self.apply(torch.Tensor.pin_memory)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PaddedJets:
        return self.apply(lambda t: t.to(device, non_blocking=non_blocking))


def pad_jets(table: JetTable, max_tracks: int | None = None) -> PaddedJets:
    """Scatter a :class:`JetTable`'s flat constituents into padded tensors (no Python loop)."""
    counts = np.diff(table.offsets)
    width = int(counts.max(initial=1)) if max_tracks is None else max_tracks
    if counts.max(initial=0) > width:
        raise ValueError(f"jets have up to {counts.max()} constituents, more than {width}")
    jet, slot = table.track_slots()

    def scatter(values: np.ndarray, fill: float, dtype: type) -> np.ndarray:
        out = np.full((table.n_jets, width, *values.shape[1:]), fill, dtype=dtype)
        out[jet, slot] = values
        return out

    mask = np.zeros((table.n_jets, width), dtype=bool)
    mask[jet, slot] = True
    return PaddedJets(
        features=torch.from_numpy(scatter(preprocess_continuous(table.tracks), 0.0, np.float32)),
        pid=torch.from_numpy(scatter(table.tracks["pid"], 0, np.int64)),
        mask=torch.from_numpy(mask),
        vertex=torch.from_numpy(scatter(table.tracks["vertex"], -1, np.int64)),
        origin=torch.from_numpy(scatter(table.tracks["origin"], -1, np.int64)),
        label=torch.from_numpy(table.jets["label"].astype(np.int64)),
        jet=torch.from_numpy(np.stack([table.jets[k] for k in JET_KINEMATICS], axis=1).astype(np.float32)),
    )
