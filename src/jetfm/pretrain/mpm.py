"""Masked particle modelling, MPMv2 style.

Masked constituents are dropped from the encoder (MAE), the encoder output is scattered
back into the full set, and every masked slot receives a unique mask token that depends
only on the order of the masked constituents among themselves. A small transformer
decoder reconstructs them; task heads compute the losses.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from jetfm.data.features import CONTINUOUS_FEATURES, N_PID_CLASSES
from jetfm.models import JetEncoder, Transformer
from jetfm.pretrain.masking import compact, gather_rows


class MaskedParticleModel(nn.Module):
    def __init__(self, encoder: JetEncoder, decoder_cfg: dict[str, Any], tasks: list[str],
                 max_constituents: int, n_tokens: int | None = None) -> None:
        super().__init__()
        if "kmeans" in tasks and not n_tokens:
            raise ValueError("the kmeans task needs the tokenizer's number of tokens")
        self.encoder = encoder
        self.tasks = list(tasks)
        dd = decoder_cfg["dim"]
        self.to_decoder = nn.Linear(encoder.dim, dd)
        self.mask_tokens = nn.Parameter(torch.randn(max_constituents, dd) * 0.02)
        self.decoder = Transformer(dd, decoder_cfg["layers"], decoder_cfg["heads"],
                                   decoder_cfg["ff_mult"], layerscale_init=1.0)
        heads = {"id": N_PID_CLASSES, "reg": len(CONTINUOUS_FEATURES), "kmeans": n_tokens or 0}
        self.heads = nn.ModuleDict({t: nn.Linear(dd, heads[t]) for t in tasks})

    def forward(self, features: torch.Tensor, pid: torch.Tensor, mask: torch.Tensor,
                masked: torch.Tensor, tokens: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Losses (and accuracies) for one batch. ``masked`` marks constituents to drop."""
        keep = mask & ~masked
        index, kept_valid = compact(keep)
        enc, registers = self.encoder(gather_rows(features, index), gather_rows(pid, index), kept_valid)

        b, n = mask.shape
        dd = self.to_decoder.out_features
        x = enc.new_zeros(b, n, dd)
        x = x.scatter(1, index[..., None].expand(-1, -1, dd),
                      self.to_decoder(enc) * kept_valid[..., None].to(enc.dtype))
        order = (torch.cumsum(masked.long(), dim=1) - 1).clamp(min=0)
        x = torch.where(masked[..., None], self.mask_tokens[order].to(x.dtype), x)
        regs = self.to_decoder(registers)
        y = self.decoder(torch.cat([regs, x], dim=1),
                         torch.cat([mask.new_ones(b, regs.shape[1]), mask], dim=1))
        out = y[:, regs.shape[1]:][masked].float()

        if "kmeans" in self.tasks and tokens is None:
            raise ValueError("the kmeans task needs token targets")
        targets = {"id": pid, "kmeans": tokens}
        result: dict[str, torch.Tensor] = {}
        for task in self.tasks:
            prediction = self.heads[task](out)
            if task == "reg":
                result["loss_reg"] = F.l1_loss(prediction, features[masked].float())
                continue
            target = targets[task][masked]
            result[f"loss_{task}"] = F.cross_entropy(prediction, target)
            result[f"acc_{task}"] = (prediction.argmax(-1) == target).float().mean()
        total = sum((result[f"loss_{task}"] for task in self.tasks), out.new_zeros(()))
        result["loss"] = total
        return result
