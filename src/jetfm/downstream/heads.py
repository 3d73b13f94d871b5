"""Task heads that sit on the encoder output: per jet, per track, per track pair."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jetfm.models.transformer import LayerScale, SwiGLU


class ClassAttentionBlock(nn.Module):
    """CaiT class attention: only the class token is updated; it attends to itself and the set."""

    def __init__(self, dim: int, heads: int, ff_mult: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"{heads} heads do not divide dim {dim}")
        self.heads = heads
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.ls1 = LayerScale(dim, 1e-2)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = SwiGLU(dim, max(1, round(dim * ff_mult)))
        self.ls2 = LayerScale(dim, 1e-2)

    def forward(self, cls: torch.Tensor, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        kv_in = self.norm_kv(torch.cat([cls, x], dim=1))
        key_mask = torch.cat([key_mask.new_ones(b, 1), key_mask], dim=1)
        k, v = self.kv(kv_in).view(b, n + 1, 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q = self.q(self.norm_q(cls)).view(b, 1, self.heads, d // self.heads).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
        cls = cls + self.ls1(self.out(y.transpose(1, 2).reshape(b, 1, d)))
        return cls + self.ls2(self.ff(self.norm_ff(cls)))


class ClassAttentionHead(nn.Module):
    """Jet-level classifier: a learned class token, ``layers`` class-attention blocks over the
    constituent tokens and registers, then a linear map to class logits."""

    def __init__(self, dim: int, n_classes: int, layers: int = 2, heads: int = 4,
                 ff_mult: float = 2.0) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.blocks = nn.ModuleList(ClassAttentionBlock(dim, heads, ff_mult) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.linear = nn.Linear(dim, n_classes)

    def forward(self, tokens: torch.Tensor, registers: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.cat([registers, tokens], dim=1)
        key_mask = torch.cat([mask.new_ones(registers.shape[:2]), mask], dim=1)
        cls = self.cls.expand(tokens.shape[0], 1, -1).to(tokens.dtype)
        for block in self.blocks:
            cls = block(cls, x, key_mask)
        return self.linear(self.norm(cls[:, 0]))


class TrackMLPHead(nn.Module):
    """Per-track classifier: a 3-layer MLP on each track's embedding → [B, N, classes]."""

    def __init__(self, dim: int, n_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, n_classes))

    def forward(self, tokens: torch.Tensor, registers: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.mlp(tokens)


class TwinEdgeHead(nn.Module):
    """Track-pair logits of sharing a vertex: φ(x_i)·φ(x_j)/√d + b, symmetric by construction."""

    def __init__(self, dim: int, hidden: int, embed: int) -> None:
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, embed))
        self.bias = nn.Parameter(torch.zeros(()))
        self.scale = embed ** -0.5

    def forward(self, tokens: torch.Tensor, registers: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        z = self.phi(tokens)
        return torch.einsum("bid,bjd->bij", z, z) * self.scale + self.bias


class LinearJetHead(nn.Module):
    """Class logits from a backbone's single jet token (its first register): the final layer of a
    reference model such as ParT, whose own class attention made that token."""

    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, n_classes)

    def forward(self, tokens: torch.Tensor, registers: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.linear(registers[:, 0])
