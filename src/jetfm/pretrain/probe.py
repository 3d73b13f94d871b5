"""Linear probe: how much of the jet label a frozen encoder's pooled output already holds."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from jetfm.data.features import PaddedJets
from jetfm.models.token_encoder import Backbone
from jetfm.training import autocast


@torch.no_grad()
def pooled_embedding(encoder: Backbone, data: PaddedJets, device: torch.device,
                     batch_size: int = 1024) -> np.ndarray:
    """[J, 2·dim]: mean of the constituent outputs and mean of the registers, per jet."""
    was_training = encoder.training
    encoder.eval()
    parts = []
    for start in range(0, len(data), batch_size):
        part = data.subset(slice(start, start + batch_size))
        mask = part.mask.to(device)
        with autocast(device):
            tokens, registers = encoder(part.features.to(device), part.pid.to(device), mask)
        weights = mask[..., None].float()
        mean = (tokens.float() * weights).sum(1) / weights.sum(1).clamp(min=1)
        reg = registers.float().mean(1) if registers.shape[1] else mean.new_zeros(mean.shape)
        parts.append(torch.cat([mean, reg], dim=1).cpu().numpy())
    encoder.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0, 2 * encoder.dim), np.float32)


def linear_probe(encoder: Backbone, train: PaddedJets, val: PaddedJets, device: torch.device) -> float:
    """Accuracy on ``val`` of a logistic regression fitted on ``train``'s pooled embeddings.

    NaN when the training jets hold a single class.
    """
    y_train, y_val = train.label.numpy(), val.label.numpy()
    if len(np.unique(y_train)) < 2 or len(y_val) == 0:
        return float("nan")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    probe.fit(pooled_embedding(encoder, train, device), y_train)
    return float(probe.score(pooled_embedding(encoder, val, device), y_val))
