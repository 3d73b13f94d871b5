"""The VQ-VAE network of the constituent tokenizers (MPMv1, OmniJet-α): a transformer encoder
maps each constituent, conditioned on the whole jet, to a latent vector; the vector is replaced
by the nearest of ``codebook_size`` codes (Euclidean), and a transformer decoder reconstructs
every constituent's features from the jet's codes. The quantiser is
``vector_quantize_pytorch.VectorQuantize``: straight-through gradients, commitment loss, EMA
codebook updates, K-Means initialisation and dead-code replacement. ``features`` chooses which
continuous features are tokenized: all seven (MPMv1) or the kinematics pT, Δη, Δφ alone
(OmniJet-α). Fitted by :func:`jetfm.tokenize.vqvae.fit_vqvae`; a gpt backbone holds one
(:class:`jetfm.models.token_encoder.TokenJetEncoder`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from vector_quantize_pytorch import VectorQuantize

from jetfm.contract import CONTINUOUS_FEATURES
from jetfm.data.features import PaddedJets
from jetfm.models.transformer import Transformer

# EMA decay of the codebook and of each code's usage count. A code unused for n steps has
# its count multiplied by decay**n: 0.99 gives a ~100-step memory, so with
# dead_code_threshold ≈ 0.37 × the typical count a code is re-initialised after ~100 unused
# steps, the thesis's rule.
DEFAULT_DECAY = 0.99
# Latents from at most this many training constituents feed the K-Means initialisation.
KMEANS_INIT_SAMPLES = 16384
KMEANS_INIT_ITERATIONS = 10


class VQVAE(nn.Module):
    """features [B, N, 7] → its ``features`` [B, N, F] → encoder → latent [B, N, L] → nearest code
    → decoder → [B, N, F]."""

    def __init__(self, codebook_size: int = 512, latent_dim: int = 16, dim: int = 64, layers: int = 2,
                 heads: int = 4, ff_mult: float = 2.0, commitment_weight: float = 0.25,
                 dead_code_threshold: float = 1.0, decay: float = DEFAULT_DECAY,
                 kmeans_init: bool = True, kmeans_iters: int = KMEANS_INIT_ITERATIONS,
                 features: Sequence[str] = CONTINUOUS_FEATURES) -> None:
        super().__init__()
        unknown = [f for f in features if f not in CONTINUOUS_FEATURES]
        if unknown or not features:
            raise ValueError(f"VQ-VAE features {list(features)}: each must be one of "
                             f"{list(CONTINUOUS_FEATURES)}")
        self.config = {"codebook_size": codebook_size, "latent_dim": latent_dim, "dim": dim, "layers": layers,
                       "heads": heads, "ff_mult": ff_mult, "commitment_weight": commitment_weight,
                       "dead_code_threshold": dead_code_threshold, "decay": decay,
                       "kmeans_init": kmeans_init, "kmeans_iters": kmeans_iters, "features": list(features)}
        self.feature_index = [CONTINUOUS_FEATURES.index(f) for f in features]
        n_features = len(features)
        self.embed = nn.Linear(n_features, dim)
        self.encoder = Transformer(dim, layers, heads, ff_mult)
        self.to_latent = nn.Linear(dim, latent_dim)
        # rotation_trick=False: the plain straight-through estimator of the thesis.
        self.quantizer = VectorQuantize(
            dim=latent_dim, codebook_size=codebook_size, decay=decay, commitment_weight=commitment_weight,
            kmeans_init=kmeans_init, kmeans_iters=kmeans_iters, threshold_ema_dead_code=dead_code_threshold,
            rotation_trick=False)
        self.from_latent = nn.Linear(latent_dim, dim)
        self.decoder = Transformer(dim, layers, heads, ff_mult)
        self.head = nn.Linear(dim, n_features)

    @property
    def codebook_size(self) -> int:
        return int(self.config["codebook_size"])

    @staticmethod
    def _key_mask(mask: torch.Tensor) -> torch.Tensor:
        # a jet without constituents would give attention rows with no key (NaN); let it see its padding
        return mask | ~mask.any(dim=1, keepdim=True)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.config["features"])

    def select(self, features: torch.Tensor) -> torch.Tensor:
        """The tokenized features [..., F] of the 7 continuous features [..., 7]."""
        return features[..., self.feature_index]

    def encode(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Latent [B, N, latent_dim] of every slot (padding slots are meaningless); features [B, N, 7]."""
        return self.to_latent(self.encoder(self.embed(self.select(features)), self._key_mask(mask)))

    def quantize(self, latent: torch.Tensor,
                 mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(quantised latent [B, N, L] (0 on padding), tokens [B, N] (-1 on padding), commitment loss).

        Only the valid rows reach the quantiser, so padding never enters the K-Means
        initialisation, the EMA codebook updates or the dead-code replacement.
        """
        quantised, index, loss = self.quantizer(latent[mask][None])
        out = latent.new_zeros(latent.shape)
        out[mask] = quantised[0].to(out.dtype)
        tokens = torch.full(mask.shape, -1, dtype=torch.int64, device=mask.device)
        tokens[mask] = index[0]
        return out, tokens, loss

    def decode(self, quantised: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.from_latent(quantised), self._key_mask(mask)))

    def decode_codes(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Features [B, N, F] that a jet's codes [B, N] decode to (the decoder sees all of them)."""
        quantised = self.quantizer.codebook.new_zeros(*tokens.shape, int(self.config["latent_dim"]))
        quantised[mask] = self.quantizer.get_output_from_indices(tokens[mask]).to(quantised.dtype)
        return self.decode(quantised, mask)

    def forward(self, features: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction [B, N, 7], tokens [B, N], commitment loss)."""
        quantised, tokens, loss = self.quantize(self.encode(features, mask), mask)
        return self.decode(quantised, mask), tokens, loss

    @torch.no_grad()
    def init_codebook(self, data: PaddedJets, constituents_per_step: float, batch_size: int = 1024) -> None:
        """K-Means of the codebook on the latents of the (untrained) encoder, as in the thesis.

        The library records each code's cluster size from the K-Means sample; those counts
        are rescaled to one training step's worth of constituents. Otherwise the EMA would
        treat the initial codebook as worth many steps of data (freezing it while the encoder
        learns) and no code could fall below the dead-code threshold for hundreds of steps.
        """
        was_training = self.training
        self.eval()
        latents = torch.cat([self.encode(part.features, part.mask)[part.mask]
                             for part in batch_slices(data, batch_size)])
        # in eval mode the quantiser only runs its (library) K-Means initialisation
        self.quantizer(latents[None])
        codebook = self.quantizer._codebook
        scale = constituents_per_step / len(latents)
        codebook.cluster_size.mul_(scale)
        codebook.embed_avg.mul_(scale)
        self.train(was_training)


def batch_slices(data: PaddedJets, batch_size: int) -> list[PaddedJets]:
    """``data`` in consecutive slices of ``batch_size`` jets."""
    return [data.subset(slice(start, start + batch_size)) for start in range(0, len(data), batch_size)]
