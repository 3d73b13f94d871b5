"""What each benchmark trains and how it is scored: head, loss, metric.

A task sees encoder outputs (tokens [B,N,D], registers [B,R,D]) and a batch of jets; the
training loop in :mod:`jetfm.downstream.run` is shared by all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from jetfm.data.features import PaddedJets
from jetfm.downstream.heads import ClassAttentionHead, TrackMLPHead, TwinEdgeHead
from jetfm.downstream.metrics import (
    accuracy,
    adjusted_rand_index,
    balanced_accuracy,
    bin_masks,
    binned_mean,
    confusion_matrix,
    n_secondary_vertices,
    roc_points,
    sic_at_rejection,
)
from jetfm.graph import connected_components

SV_BINS = [0, 1, 2, 3]  # number of true secondary vertices; last bin is 3+
TRACK_BINS = [1, 2, 3, 4, 5, 6, 7, 8]  # tracks per jet; last bin is 8+


@dataclass
class JetClassification:
    """Per-jet classes with a class-attention head; accuracy, or SIC for a two-class CWoLa task.

    ``roc`` = (signal class, background class) for the stored ROC curve, scored by
    p_s / (p_s + p_b). ``sic_rejection`` makes the metric the SIC at that rejection.
    """

    class_names: list[str]
    settings: dict[str, Any]
    roc: tuple[int, int] | None = None
    sic_rejection: float | None = None
    metric: str = "accuracy"
    output: str = "jet"
    test_names: list[str] = field(default_factory=list)

    def head(self, dim: int) -> nn.Module:
        s = self.settings
        return ClassAttentionHead(dim, len(self.class_names), s["head_layers"], s["head_heads"],
                                  s["head_ff_mult"])

    def loss(self, out: torch.Tensor, part: PaddedJets) -> torch.Tensor:
        return F.cross_entropy(out.float(), part.label.to(out.device))

    def loss_terms(self, part: PaddedJets) -> int:
        """How many terms :meth:`loss` averages (jets)."""
        return len(part.label)

    def score(self, out: np.ndarray, test: PaddedJets) -> dict[str, Any]:
        true = test.label.numpy()
        prob = _softmax(out)
        pred = prob.argmax(axis=1)
        names = self.test_names or self.class_names
        row: dict[str, Any] = {"value": accuracy(true, pred), "n_eval": len(true)}
        if self.sic_rejection is None:
            row["confusion"] = confusion_matrix(true, pred, len(names)).tolist()
            row["class_names"] = names
        if self.roc is not None:
            sig, bkg = self.roc
            use = (true == sig) | (true == bkg)
            ratio = prob[use, sig] / np.clip(prob[use, sig] + prob[use, bkg], 1e-12, None)
            row["roc"] = roc_points(ratio, true[use] == sig) | {"signal": names[sig],
                                                                 "background": names[bkg]}
            if self.sic_rejection is not None:
                row["value"] = sic_at_rejection(ratio, true[use] == sig, self.sic_rejection)
                row["accuracy"] = accuracy(true, pred)
        return row


@dataclass
class TrackOrigin:
    """Per-track origin (primary / c / b / other) with a 3-layer MLP; balanced accuracy."""

    class_names: list[str]
    settings: dict[str, Any]
    metric: str = "balanced_accuracy"
    output: str = "track"

    def head(self, dim: int) -> nn.Module:
        return TrackMLPHead(dim, len(self.class_names), self.settings["head_hidden"])

    def loss(self, out: torch.Tensor, part: PaddedJets) -> torch.Tensor:
        # padding has origin -1: ignored, with no boolean indexing (whose size the host must learn)
        origin = part.origin.to(out.device)
        return F.cross_entropy(out.float().flatten(0, 1), origin.flatten(), ignore_index=-1)

    def loss_terms(self, part: PaddedJets) -> int:
        """How many terms :meth:`loss` averages (tracks)."""
        return int(part.mask.sum())

    def score(self, out: np.ndarray, test: PaddedJets) -> dict[str, Any]:
        mask = test.mask.numpy()
        true, pred = test.origin.numpy()[mask], out.argmax(axis=-1)[mask]
        n_tracks = np.broadcast_to(mask.sum(axis=1, keepdims=True), mask.shape)[mask]
        bins = {label: balanced_accuracy(true[sel], pred[sel])
                for label, sel in bin_masks(n_tracks, TRACK_BINS).items()}
        return {"value": balanced_accuracy(true, pred), "bins": bins, "n_eval": int(mask.sum()),
                "confusion": confusion_matrix(true, pred, len(self.class_names)).tolist(),
                "class_names": self.class_names}


@dataclass
class VertexFinding:
    """Track pairs sharing a vertex (twin network) → connected components → ARI per jet."""

    settings: dict[str, Any]
    metric: str = "adjusted_rand_index"
    output: str = "pair"

    def head(self, dim: int) -> nn.Module:
        return TwinEdgeHead(dim, self.settings["head_hidden"], self.settings["head_embed"])

    def loss(self, out: torch.Tensor, part: PaddedJets) -> torch.Tensor:
        target, use = pair_targets(part.vertex.to(out.device), part.mask.to(out.device))
        # the mean over the pairs that count, without boolean indexing (no host sync on a GPU)
        terms = F.binary_cross_entropy_with_logits(out.float(), target, reduction="none")
        return torch.where(use, terms, 0.0).sum() / use.sum().clamp(min=1)

    def loss_terms(self, part: PaddedJets) -> int:
        """How many terms :meth:`loss` averages (track pairs i < j)."""
        n = part.mask.sum(dim=1)
        return int((n * (n - 1) // 2).sum())

    def score(self, out: np.ndarray, test: PaddedJets) -> dict[str, Any]:
        mask = test.mask.numpy()
        pred = predict_vertices(out, mask, self.settings["threshold"])
        return score_partitions(test.vertex.numpy(), pred, mask)


def pair_targets(vertex: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Same-vertex target and the pairs that count (i < j, both real tracks)."""
    same = (vertex[:, :, None] == vertex[:, None, :]).float()
    n = mask.shape[1]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=mask.device), diagonal=1)
    return same, mask[:, :, None] & mask[:, None, :] & upper


def predict_vertices(logits: np.ndarray, mask: np.ndarray, threshold: float) -> np.ndarray:
    """Join track pairs whose edge probability exceeds ``threshold`` both ways; components = vertices."""
    prob = 1.0 / (1.0 + np.exp(-logits))
    adjacency = (prob > threshold) & (np.swapaxes(prob, 1, 2) > threshold)
    return connected_components(adjacency, mask)


def score_partitions(true_vertex: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """Mean ARI over jets with at least two tracks, overall and per number of true SVs."""
    use = mask.sum(axis=1) >= 2
    ari = adjusted_rand_index(np.where(mask, true_vertex, 0), np.where(mask, pred, 0), mask)[use]
    n_sv = n_secondary_vertices(true_vertex, mask)[use]
    return {"value": float(ari.mean()), "bins": binned_mean(ari, n_sv, SV_BINS), "n_eval": int(use.sum())}


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)
