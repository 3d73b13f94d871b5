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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from jetfm.contract import CONTINUOUS_FEATURES
from jetfm.data.features import PaddedJets
from jetfm.distributed import World, loss_weight, sum_over_ranks, wrap
from jetfm.models.vqvae import DEFAULT_DECAY, KMEANS_INIT_SAMPLES, VQVAE, batch_slices
from jetfm.provenance import atomic_output
from jetfm.tokenize.kmeans import read_checkpoint
from jetfm.training import batches, set_threads, warmup_exponential


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
        for part in batch_slices(data, batch_size):
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
