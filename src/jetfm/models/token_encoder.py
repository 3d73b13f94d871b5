"""The OmniJet-α backbone: a jet as a sequence of VQ-VAE tokens, read by a causal transformer.

A frozen VQ-VAE tokenizer turns the pT-ordered constituents into codes c_1 … c_n, and the
jet becomes the sequence ``<start> [<class>] c_1 … c_n <stop>``. Token embeddings (no
positional encoding: the causal mask tells each position how much precedes it, as in
OmniJet-α) pass through the pre-norm transformer with a causal mask. The backbone
answers like :class:`jetfm.models.JetEncoder` — ``forward(features, pid, mask)`` →
(per-constituent states [B, N, D], registers [B, 1, D]) — so every downstream head and the
linear probe use it unchanged: the state at c_i has seen c_1 … c_i, and the single
"register" is the state at ``<stop>``, the one position that has seen the whole jet.

Vocabulary: codes 0 … K−1, ``<stop>`` = K, ``<start>`` = K+1, then, for a class-conditional
backbone, one token per class and a last "no class" token (used downstream and for
unconditional generation).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from jetfm.models.encoder import JetEncoder
from jetfm.models.transformer import KVCache, Transformer
from jetfm.models.vqvae import VQVAE


class TokenJetEncoder(nn.Module):
    def __init__(self, dim: int, layers: int, heads: int, tokenizer: dict[str, Any], n_classes: int = 0,
                 ff_mult: float = 2.0, layerscale_init: float = 1e-5) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "kind": "token", "dim": dim, "layers": layers, "heads": heads, "tokenizer": dict(tokenizer),
            "n_classes": n_classes, "ff_mult": ff_mult, "layerscale_init": layerscale_init,
        }
        self.dim = dim
        self.n_classes = n_classes
        self.tokenizer = VQVAE(**tokenizer)
        self.tokenizer.requires_grad_(False)
        self.n_codes = self.tokenizer.codebook_size
        self.stop_id = self.n_codes
        self.start_id = self.n_codes + 1
        self.no_class_id = self.n_codes + 2 + n_classes  # only with n_classes > 0
        vocab = self.n_codes + 2 + (n_classes + 1 if n_classes else 0)
        self.embed = nn.Embedding(vocab, dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.transformer = Transformer(dim, layers, heads, ff_mult, layerscale_init)
        self.tokenizer.eval()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TokenJetEncoder:
        return cls(**{k: v for k, v in config.items() if k != "kind"})

    @property
    def prefix_length(self) -> int:
        """Positions before the first code: ``<start>``, and ``<class>`` when conditional."""
        return 2 if self.n_classes else 1

    @property
    def n_registers(self) -> int:
        return 1

    def train(self, mode: bool = True) -> TokenJetEncoder:
        super().train(mode)
        self.tokenizer.eval()  # frozen: no EMA codebook updates, whatever the mode
        return self

    def check_labels(self, label: torch.Tensor) -> None:
        """Fail with a message on a class label this model has no ``<class>`` token for (reading
        the labels: on a GPU that waits for the device, so check them on the host)."""
        if label.numel() and int(label.max()) >= self.n_classes:
            raise ValueError(f"class label {int(label.max())} out of range for {self.n_classes} classes")

    def class_ids(self, label: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:
        """The ``<class>`` token of each jet; a negative or missing label gives "no class"."""
        if label is None:
            return torch.full((batch,), self.no_class_id, dtype=torch.long, device=device)
        if label.device.type == "cpu":  # free here; on a GPU the caller checks the host's labels
            self.check_labels(label)
        return torch.where(label >= 0, self.n_codes + 2 + label, self.no_class_id).long()

    def prefix(self, batch: int, device: torch.device, label: torch.Tensor | None = None) -> torch.Tensor:
        """[B, P] ``<start>`` (and ``<class>``) tokens that every sequence begins with."""
        ids = torch.full((batch, 1), self.start_id, dtype=torch.long, device=device)
        if self.n_classes:
            ids = torch.cat([ids, self.class_ids(label, batch, device)[:, None]], dim=1)
        return ids

    def sequence(self, codes: torch.Tensor, mask: torch.Tensor, label: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """[B, P + N + 1] token ids ``<start> [<class>] c_1 … c_n <stop>``, then ``<stop>`` as padding.

        ``codes`` [B, N] with ``mask`` [B, N] marking each jet's first n slots (constituents
        are stored left-aligned).
        """
        b = codes.shape[0]
        body = torch.where(mask, codes, self.stop_id)
        end = torch.full((b, 1), self.stop_id, dtype=torch.long, device=codes.device)
        return torch.cat([self.prefix(b, codes.device, label), body.long(), end], dim=1)

    def hidden(self, ids: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        """Causal transformer states [B, L, D] of token ids [B, L] (after the cached positions)."""
        return self.transformer(self.embed(ids), causal=True, caches=caches)

    @torch.no_grad()
    def tokenize(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Codes [B, N] (-1 on padding) of preprocessed features [B, N, 7], in full precision."""
        with torch.autocast(features.device.type, enabled=False):
            latent = self.tokenizer.encode(features.float(), mask)
            return self.tokenizer.quantize(latent, mask)[1]

    def forward(self, features: torch.Tensor, pid: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(state at each constituent's code [B, N, D], state at ``<stop>`` [B, 1, D]).

        ``pid`` is not used: OmniJet-α tokens carry the kinematics only. A class-conditional
        backbone reads the "no class" token here.
        """
        n, p = mask.shape[1], self.prefix_length
        h = self.hidden(self.sequence(self.tokenize(features, mask), mask))
        stop = (p + mask.sum(dim=1))[:, None, None].expand(-1, 1, h.shape[-1])
        return h[:, p:p + n], torch.gather(h, 1, stop)


# Either backbone: both answer forward(features, pid, mask) → (states [B, N, D], registers [B, R, D]).
Backbone = JetEncoder | TokenJetEncoder
