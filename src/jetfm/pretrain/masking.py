"""Random constituent masks and the compaction that drops masked constituents (MAE style)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from jetfm.data.features import most_per_row


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


def compact(keep: torch.Tensor, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices that move the kept entries of each row to the front, in their order.

    Returns (index [B, K], valid [B, K]) with K the largest number kept in any row: ``width``
    when the caller knows it (:class:`MaskLayout`), else counted here, which on a GPU makes the
    host wait for the device.
    """
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    width = most_per_row(keep) if width is None else width
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


@dataclass(frozen=True)
class MaskLayout:
    """The data-dependent shapes of one masked-particle step, worked out where the masks are made
    (on the host) so that the forward pass on a GPU never waits for the device to report a size:
    the widths of the compacted visible and masked sets, and the (jet, slot) of every masked
    constituent in row-major order, which is what indexing with the boolean ``masked`` selects.
    """

    kept_width: int
    masked_width: int
    rows: torch.Tensor  # int64 [M]
    cols: torch.Tensor  # int64 [M]

    @classmethod
    def of(cls, mask: torch.Tensor, masked: torch.Tensor) -> MaskLayout:
        rows, cols = masked.nonzero(as_tuple=True)
        return cls(most_per_row(mask & ~masked), most_per_row(masked), rows, cols)

    @property
    def device(self) -> torch.device:
        return self.rows.device

    @property
    def selected(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Index for x [B, N, ...] → its masked entries [M, ...] (as x[masked], without a sync)."""
        return self.rows, self.cols

    def apply(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> MaskLayout:
        """The same layout with ``fn`` applied to its index tensors (as :meth:`PaddedJets.apply`)."""
        return replace(self, rows=fn(self.rows), cols=fn(self.cols))

    def pin_memory(self) -> MaskLayout:
        return self.apply(torch.Tensor.pin_memory)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> MaskLayout:
        return self.apply(lambda t: t.to(device, non_blocking=non_blocking))
