"""Random constituent masks and the compaction that drops masked constituents (MAE style)."""

from __future__ import annotations

import torch


def sample_mask(mask: torch.Tensor, fraction: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Choose round(fraction·n) constituents of each jet to mask, at least one and never all.

    Jets with a single constituent are left unmasked (there is nothing to condition on).
    """
    n = mask.sum(dim=1)
    n_drop = torch.round(fraction * n.float()).long().clamp(min=1)
    n_drop = torch.minimum(n_drop, n - 1).clamp(min=0)
    scores = torch.rand(mask.shape, generator=generator, device=mask.device)
    scores = scores.masked_fill(~mask, 2.0)  # padding sorts last
    rank = scores.argsort(dim=1).argsort(dim=1)
    return rank < n_drop[:, None]


def compact(keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices that move the kept entries of each row to the front, in their order.

    Returns (index [B, K], valid [B, K]) with K the largest number kept in any row.
    """
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    width = max(int(keep.sum(dim=1).max()), 1)
    index = order[:, :width]
    return index, torch.gather(keep, 1, index)


def gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[b, index[b, k], ...] for every b, k."""
    expanded = index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand(*index.shape, *x.shape[2:])
    return torch.gather(x, 1, expanded)


def masked_order(masked: torch.Tensor) -> torch.Tensor:
    """Index of each masked constituent among the masked ones of its jet (pT order), [B, N].

    It selects the unique mask token of MPMv1 and MPMv2; unmasked entries get 0 (unused).
    """
    return (torch.cumsum(masked.long(), dim=1) - 1).clamp(min=0)
