"""Masked particle modelling, MPMv2 style.

Masked constituents are dropped from the encoder (MAE), the encoder output is scattered
back into the full set, and every masked slot receives a unique mask token that depends
only on the order of the masked constituents among themselves. A small transformer
decoder turns the set into one representation per masked constituent, on which the task
heads compute their losses. The ``ssfm`` task instead generates the whole masked set with
a flow-matching decoder that cross-attends to the encoder output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from jetfm.models import JetEncoder, Transformer
from jetfm.pretrain.heads import SetFlowMatchingDecoder
from jetfm.pretrain.masking import MaskLayout, compact, gather_rows, masked_order
from jetfm.pretrain.tasks import CONSTITUENT_TASKS, N_FEATURES, ReconstructionHeads, total_loss


class MaskedParticleModel(nn.Module):
    def __init__(self, encoder: JetEncoder, recipe: Mapping[str, Any], max_constituents: int,
                 n_tokens: Mapping[str, int]) -> None:
        super().__init__()
        self.encoder = encoder
        self.tasks = list(recipe["tasks"])
        self.decoder: Transformer | None = None
        if any(t in CONSTITUENT_TASKS for t in self.tasks):
            dec = recipe["decoder"]
            dd = dec["dim"]
            self.to_decoder = nn.Linear(encoder.dim, dd)
            self.mask_tokens = nn.Parameter(torch.randn(max_constituents, dd) * 0.02)
            self.decoder = Transformer(dd, dec["layers"], dec["heads"], dec["ff_mult"], layerscale_init=1.0)
            self.heads = ReconstructionHeads(self.tasks, dd, n_tokens, recipe["heads"])
        self.ssfm: SetFlowMatchingDecoder | None = None
        if "ssfm" in self.tasks:
            c = recipe["heads"]["ssfm"]
            self.ssfm = SetFlowMatchingDecoder(N_FEATURES, encoder.dim, dim=c["dim"], layers=c["layers"],
                                               heads=c["heads"])

    def forward(self, features: torch.Tensor, pid: torch.Tensor, mask: torch.Tensor, masked: torch.Tensor,
                tokens: Mapping[str, torch.Tensor] | None = None,
                generator: torch.Generator | None = None, layout: MaskLayout | None = None
                ) -> dict[str, torch.Tensor]:
        """Losses (and accuracies) for one batch. ``masked`` marks constituents to drop;
        ``tokens[task]`` [B, N] are the token targets of the kmeans / vqvae tasks; ``layout``,
        computed on the host from the same masks, spares a GPU every wait for a size."""
        layout = MaskLayout.of(mask, masked) if layout is None else layout
        keep = mask & ~masked
        index, kept_valid = compact(keep, layout.kept_width)
        enc, registers = self.encoder(gather_rows(features, index), gather_rows(pid, index), kept_valid)
        result: dict[str, torch.Tensor] = {}

        if self.decoder is not None:
            b, n = mask.shape
            dd = self.to_decoder.out_features
            x = enc.new_zeros(b, n, dd)
            x = x.scatter(1, index[..., None].expand(-1, -1, dd),
                          self.to_decoder(enc) * kept_valid[..., None].to(enc.dtype))
            order = masked_order(masked)
            x = torch.where(masked[..., None], self.mask_tokens[order].to(x.dtype), x)
            regs = self.to_decoder(registers)
            y = self.decoder(torch.cat([regs, x], dim=1),
                             torch.cat([mask.new_ones(b, regs.shape[1]), mask], dim=1))
            sel = layout.selected
            rep = y[:, regs.shape[1]:][sel]
            targets = {task: t[sel] for task, t in (tokens or {}).items()}
            result |= self.heads(rep, features[sel], pid[sel], targets, generator)

        if self.ssfm is not None:
            t_index, t_valid = compact(masked, layout.masked_width)
            latent = torch.cat([registers, enc], dim=1)
            latent_mask = torch.cat([mask.new_ones(registers.shape[:2]), kept_valid], dim=1)
            result["loss_ssfm"] = self.ssfm.loss(gather_rows(features, t_index).float(), t_valid,
                                                 latent.float(), latent_mask, generator)

        result["loss"] = total_loss(result, self.tasks, features)
        return result
