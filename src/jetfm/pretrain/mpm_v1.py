"""Masked particle modelling, MPMv1 style.

Nothing is dropped: the masked constituents stay in the encoder input, their embedding
replaced by a unique mask token that depends on their order among the masked ones only
(pT order; constituents are stored pT-ordered). A per-constituent MLP on the encoder
output predicts the masked constituents' targets, by default their VQ-VAE tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from jetfm.models import JetEncoder
from jetfm.pretrain.masking import MaskLayout, masked_order
from jetfm.pretrain.tasks import ReconstructionHeads, total_loss


class MaskedParticleModelV1(nn.Module):
    def __init__(self, encoder: JetEncoder, recipe: Mapping[str, Any], max_constituents: int,
                 n_tokens: Mapping[str, int]) -> None:
        super().__init__()
        self.encoder = encoder
        self.tasks = list(recipe["tasks"])
        self.mask_tokens = nn.Parameter(torch.randn(max_constituents, encoder.dim) * 0.02)
        hidden, depth = recipe["decoder"]["dim"], recipe["decoder"]["layers"]
        layers: list[nn.Module] = []
        width = encoder.dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        self.mlp = nn.Sequential(nn.LayerNorm(encoder.dim), *layers)
        self.heads = ReconstructionHeads(self.tasks, width, n_tokens, recipe["heads"])

    def forward(self, features: torch.Tensor, pid: torch.Tensor, mask: torch.Tensor, masked: torch.Tensor,
                tokens: Mapping[str, torch.Tensor] | None = None,
                generator: torch.Generator | None = None, layout: MaskLayout | None = None
                ) -> dict[str, torch.Tensor]:
        """As :meth:`MaskedParticleModel.forward`."""
        sel = (MaskLayout.of(mask, masked) if layout is None else layout).selected
        order = masked_order(masked)
        enc, _ = self.encoder(features, pid, mask, replace=masked, replacement=self.mask_tokens[order])
        rep = self.mlp(enc[sel])
        targets = {task: t[sel] for task, t in (tokens or {}).items()}
        result = self.heads(rep, features[sel], pid[sel], targets, generator)
        result["loss"] = total_loss(result, self.tasks, features)
        return result
