"""OmniJet-α generative pre-training: next-token prediction on VQ-VAE token sequences.

The backbone (:class:`jetfm.models.TokenJetEncoder`) reads ``<start> [<class>] c_1 … c_n
<stop>``; a linear head on each state predicts the next token, over the K codes and
``<stop>`` (the start and class tokens are never predicted). The loss is the cross-entropy
of every code and of the first ``<stop>``, so the model learns the constituents and when a
jet ends. Sampling (``jetfm.jet_generation.sample``) runs the same model token by token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jetfm.models.token_encoder import TokenJetEncoder
from jetfm.models.transformer import KVCache


class NextTokenModel(nn.Module):
    def __init__(self, encoder: TokenJetEncoder, class_dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.dim, encoder.n_codes + 1)  # the codes and <stop>
        self.class_dropout = class_dropout

    def logits(self, ids: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        """Next-token logits [B, L, K+1] after each of the token ids [B, L]."""
        return self.head(self.encoder.hidden(ids, caches))

    def forward(self, mask: torch.Tensor, codes: torch.Tensor, label: torch.Tensor | None = None,
                generator: torch.Generator | None = None,
                scored: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Loss and accuracy of predicting c_1 … c_n and <stop> for a batch of code sequences [B, N].

        ``scored``: :func:`scored_positions` of ``mask``, computed on the host, which spares a GPU
        the wait for the number of scored positions."""
        if self.encoder.n_classes:
            if label is not None and self.training and self.class_dropout > 0:
                drop = torch.rand(label.shape, generator=generator, device=label.device) < self.class_dropout
                label = torch.where(drop, -1, label)
        else:
            label = None
        ids = self.encoder.sequence(codes, mask, label)
        p = self.encoder.prefix_length
        targets = ids[:, p:]  # c_1 … c_n, <stop>, padding
        scored = scored_positions(mask) if scored is None else scored
        # the head only on scored positions: [B, L, K+1] logits would be large for big codebooks
        h = self.encoder.hidden(ids)[:, p - 1:-1]
        logits = self.head(h[scored]).float()
        target = targets[scored]
        loss = F.cross_entropy(logits, target)
        return {"loss_gpt": loss, "acc_gpt": (logits.argmax(-1) == target).float().mean().detach(),
                "loss": loss}


def scored_positions(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(jet, position) of every predicted token of :class:`NextTokenModel`'s targets for
    constituent ``mask`` [B, N]: c_1 … c_n and ``<stop>``, in row-major order."""
    positions = torch.arange(mask.shape[1] + 1, device=mask.device)[None, :]
    rows, cols = (positions <= mask.sum(dim=1)[:, None]).nonzero(as_tuple=True)
    return rows, cols
