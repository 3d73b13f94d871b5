"""The jet encoder: constituent embedding + registers + transformer. This is the backbone."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from jetfm.contract import CONTINUOUS_FEATURES, N_PID_CLASSES
from jetfm.models.interactions import N_RELATIVE, PairBias, relative_inputs
from jetfm.models.transformer import Transformer


class JetEncoder(nn.Module):
    """Permutation-equivariant set encoder (no positional encoding).

    forward(features [B,N,7], pid [B,N], mask [B,N]) → (tokens [B,N,D], registers [B,R,D]).

    Options (both off in the MPMv2 paper's backbone): ``relative_inputs`` adds log(pT/ΣpT)
    and ΔR to each constituent's inputs; ``pair_bias`` adds a ParT-style pairwise attention
    bias from ln Δ, ln kT, ln z, ln m² (:mod:`jetfm.models.interactions`), shared by all
    blocks, zero towards the registers.
    """

    def __init__(self, dim: int, layers: int, heads: int, registers: int = 4,
                 ff_mult: float = 2.0, layerscale_init: float = 1e-5, relative_inputs: bool = False,
                 pair_bias: bool = False, pair_hidden: int = 32) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "dim": dim, "layers": layers, "heads": heads, "registers": registers,
            "ff_mult": ff_mult, "layerscale_init": layerscale_init,
            "relative_inputs": relative_inputs, "pair_bias": pair_bias, "pair_hidden": pair_hidden,
        }
        self.dim = dim
        self.relative_inputs = relative_inputs
        n_inputs = len(CONTINUOUS_FEATURES) + (N_RELATIVE if relative_inputs else 0)
        self.embed = nn.Sequential(nn.Linear(n_inputs, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.pair_bias = PairBias(heads, pair_hidden) if pair_bias else None
        self.pid_embed = nn.Embedding(N_PID_CLASSES, dim)
        self.registers = nn.Parameter(torch.randn(registers, dim) * 0.02)
        self.transformer = Transformer(dim, layers, heads, ff_mult, layerscale_init)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> JetEncoder:
        return cls(**config)

    @property
    def n_registers(self) -> int:
        return self.registers.shape[0]

    def forward(self, features: torch.Tensor, pid: torch.Tensor, mask: torch.Tensor,
                replace: torch.Tensor | None = None, replacement: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``replace`` [B,N] marks constituents whose embedding is swapped for ``replacement``
        [B,N,D] (MPMv1's mask tokens): their features and id never reach the transformer."""
        b = features.shape[0]
        r = self.registers.shape[0]
        visible = mask if replace is None else mask & ~replace
        inputs = features
        if self.relative_inputs:
            inputs = torch.cat([features, relative_inputs(features, visible)], dim=-1)
        x = self.embed(inputs) + self.pid_embed(pid)
        if replace is not None and replacement is not None:
            x = torch.where(replace[..., None], replacement.to(x.dtype), x)
        x = torch.cat([self.registers.expand(b, r, self.dim).to(x.dtype), x], dim=1)
        key_mask = torch.cat([mask.new_ones(b, r), mask], dim=1)
        if r == 0:
            # A jet always has a constituent, but padded rows of a compacted batch may not.
            key_mask = key_mask | ~key_mask.any(dim=1, keepdim=True)
        bias = None
        if self.pair_bias is not None:
            bias = F.pad(self.pair_bias(features, visible), (r, 0, r, 0))
        y = self.transformer(x, key_mask, bias=bias)
        return y[:, r:], y[:, :r]
