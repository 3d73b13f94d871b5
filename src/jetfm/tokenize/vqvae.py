"""Contextual constituent tokens from a transformer VQ-VAE (MPMv1, OmniJet-α).

A transformer encoder maps each constituent, conditioned on the whole jet, to a latent
vector; the vector is replaced by the nearest of ``codebook_size`` codes (Euclidean), and a
transformer decoder reconstructs every constituent's features from the jet's codes. The
quantiser is ``vector_quantize_pytorch.VectorQuantize``: straight-through gradients,
commitment loss, EMA codebook updates, K-Means initialisation and dead-code replacement.
``features`` chooses which continuous features are tokenized: all seven (MPMv1) or the
kinematics pT, Δη, Δφ alone (OmniJet-α), which the decoder turns codes back into.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm
from vector_quantize_pytorch import VectorQuantize

from jetfm.contract import CONTINUOUS_FEATURES
from jetfm.data.features import PaddedJets
from jetfm.distributed import World, loss_weight, sum_over_ranks, wrap
from jetfm.models.transformer import Transformer
from jetfm.provenance import atomic_output
from jetfm.tokenize.kmeans import read_checkpoint
from jetfm.training import batches, set_threads, warmup_exponential

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
                             for part in _slices(data, batch_size)])
        # in eval mode the quantiser only runs its (library) K-Means initialisation
        self.quantizer(latents[None])
        codebook = self.quantizer._codebook
        scale = constituents_per_step / len(latents)
        codebook.cluster_size.mul_(scale)
        codebook.embed_avg.mul_(scale)
        self.train(was_training)


def _slices(data: PaddedJets, batch_size: int) -> list[PaddedJets]:
    return [data.subset(slice(start, start + batch_size)) for start in range(0, len(data), batch_size)]


@dataclass
class VQVAETokenizer:
    model: VQVAE
    info: dict[str, Any]

    def __post_init__(self) -> None:
        self.model.eval()

    @property
    def n_tokens(self) -> int:
        return self.model.codebook_size

    @torch.no_grad()
    def _apply(self, data: PaddedJets, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.model.eval()
        tokens = torch.full(data.mask.shape, -1, dtype=torch.int64)
        recon = torch.zeros(*data.mask.shape, len(self.model.feature_names), dtype=torch.float32)
        start = 0
        for part in _slices(data, batch_size):
            rec, tok = self.model(part.features, part.mask)[:2]
            end, width = start + len(part), part.mask.shape[1]
            tokens[start:end, :width] = tok
            recon[start:end, :width] = torch.where(part.mask[..., None], rec, 0.0)
            start = end
        return tokens, recon

    def tokens(self, data: PaddedJets, batch_size: int = 4096) -> torch.Tensor:
        """int64 [J, W], -1 on padding; each token depends on the whole jet (eval mode, whole jets)."""
        return self._apply(data, batch_size)[0]

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.model.feature_names

    def reconstruct(self, data: PaddedJets, batch_size: int = 4096) -> torch.Tensor:
        """float32 [J, W, F]: decoded preprocessed features (``feature_names``), 0 on padding."""
        return self._apply(data, batch_size)[1]

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """float32 [J, W, F]: the features that code sequences [J, W] (-1 on padding) decode to."""
        self.model.eval()
        out = torch.zeros(*tokens.shape, len(self.feature_names), dtype=torch.float32)
        for start in range(0, len(tokens), batch_size):
            part = tokens[start:start + batch_size]
            mask = part >= 0
            out[start:start + batch_size] = torch.where(
                mask[..., None], self.model.decode_codes(part.clamp(min=0), mask), 0.0)
        return out

    def save(self, path: str | Path) -> None:
        with atomic_output(path) as tmp:
            torch.save({"kind": "vqvae", "config": self.model.config, "state_dict": self.model.state_dict(),
                        "info": self.info}, tmp)

    @classmethod
    def from_checkpoint(cls, blob: dict[str, Any]) -> VQVAETokenizer:
        model = VQVAE(**blob["config"])
        model.load_state_dict(blob["state_dict"])
        return cls(model, blob["info"])

    @classmethod
    def load(cls, path: str | Path) -> VQVAETokenizer:
        return cls.from_checkpoint(read_checkpoint(path, "vqvae"))


def fit_vqvae(train: PaddedJets, name: str, cfg: dict[str, Any], threads: int = 1,
              progress: bool = True, world: World | None = None,
              device: torch.device | None = None) -> VQVAETokenizer:
    """Train the VQ-VAE on ``train``; ``info`` holds only the training summary.

    AdamW with linear warm-up and exponential decay (half-life steps/4, so the rate ends at
    1/16 of its peak), gradient clipping at 1.0, length-bucketed batches. Loss = MSE of the
    valid constituents' features + the library's commitment loss. Deterministic given the
    seed: weights, K-Means initialisation and code replacement draw from the torch RNG,
    seeded here (and restored afterwards), batches from their own generator.

    On several ranks (``world``, its process group joined before this call) each rank takes
    every ``world.size``-th jet of the global batch of ``batch_size``, weights its loss by its
    share of the batch's constituents, and DDP averages the gradients; the quantiser's library
    sums the codebook's EMA statistics, K-Means and dead-code samples over the ranks, so every
    rank holds the same codebook.
    """
    world = world or World()
    device = device or torch.device("cpu")
    n_constituents = int(train.mask.sum())
    if n_constituents < cfg["codebook_size"]:
        raise ValueError(f"tokenizer '{name}' (vqvae): {n_constituents} training constituents for "
                         f"codebook_size={cfg['codebook_size']}; generate more events or shrink the codebook")
    if cfg["dim"] % cfg["heads"]:
        raise ValueError(f"tokenizer '{name}' (vqvae): {cfg['heads']} heads do not divide dim {cfg['dim']}")
    set_threads(threads)
    steps, warmup = cfg["steps"], cfg["warmup_steps"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg["seed"])
        model = VQVAE(codebook_size=cfg["codebook_size"], latent_dim=cfg["latent_dim"], dim=cfg["dim"],
                      layers=cfg["layers"], heads=cfg["heads"], ff_mult=cfg["ff_mult"],
                      commitment_weight=cfg["commitment_weight"],
                      dead_code_threshold=cfg["dead_code_threshold"],
                      decay=cfg.get("decay", DEFAULT_DECAY), kmeans_init=cfg["kmeans_init"],
                      features=cfg.get("features", CONTINUOUS_FEATURES))
        gen = torch.Generator().manual_seed(cfg["seed"])
        batch_size = min(cfg["batch_size"], len(train))
        if cfg["kmeans_init"]:
            sample = torch.randperm(len(train), generator=gen)
            # enough jets for KMEANS_INIT_SAMPLES constituents on average; several ranks share them
            # (the library's K-Means sums its statistics over the ranks)
            mean_length = n_constituents / len(train)
            chosen = sample[:math.ceil(KMEANS_INIT_SAMPLES / mean_length)][world.rank::world.size]
            model.init_codebook(train.subset(chosen), constituents_per_step=batch_size * mean_length)
        model.to(device)
        trained = wrap(model, world, device)
        optimiser = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda s: warmup_exponential(s, warmup, max(1, steps // 4)))
        stream = batches(len(train), batch_size, gen, lengths=train.lengths)
        last_used = torch.full((model.codebook_size,), -10**9, dtype=torch.int64)
        losses: list[float] = []
        bar = tqdm(total=steps, desc=f"tokenize {name}", unit="step", disable=not (progress and world.main),
                   mininterval=2.0)
        model.train()
        for step in range(steps):
            part = train.subset(next(stream))
            total = int(part.mask.sum())
            if world.distributed:  # the global batch: this rank keeps every world.size-th jet
                part = part.subset(world.share)
            weight = loss_weight(int(part.mask.sum()), total, world)  # terms: the constituents
            features, mask = part.features.to(device), part.mask.to(device)
            recon, tokens, commitment = trained(features, mask)
            reconstruction = F.mse_loss(recon[mask], model.select(features[mask]))
            loss = reconstruction + commitment
            optimiser.zero_grad(set_to_none=True)
            (loss * weight).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            last_used[tokens[mask].cpu()] = step
            losses.append(float(loss.detach()) * weight / world.size)
            if world.distributed:  # the global batch's loss, as one process logs it
                losses[-1] = float(sum_over_ranks([losses[-1]], world, device)[0])
            if step % 20 == 0 or step == steps - 1:
                # codes used within the last 100 steps: the thesis's notion of a live code
                live = float((step - last_used < 100).float().mean())
                bar.set_postfix(loss=f"{losses[-1]:.4f}", rec=f"{float(reconstruction.detach()):.4f}",
                                used=f"{live:.2f}")
            bar.update(1)
        bar.close()
    window = max(1, min(50, steps // 10))
    fit = {
        "steps": steps,
        "loss_start": sum(losses[:window]) / window,
        "loss_end": sum(losses[-window:]) / window,
        "train_codes_live_last_100_steps": float((steps - 1 - last_used < 100).float().mean()),
    }
    return VQVAETokenizer(model.cpu(), {"fit": fit})
