"""Autoregressive sampling of token sequences from a gpt backbone (OmniJet-α generation).

Each jet starts from ``<start>`` (and its ``<class>`` token); the next token is drawn from
the softmax of the logits divided by the temperature, optionally among the ``top_k`` most
probable only, until ``<stop>`` or ``max_constituents`` codes. ``<stop>`` is not allowed
as the first token (a jet has a constituent), and ``<start>``/``<class>`` are never drawn:
the head predicts codes and ``<stop>`` only. Keys and values of past positions are cached,
so a jet of n constituents costs n single-position forward passes.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from jetfm.models.next_token import NextTokenModel
from jetfm.training import autocast, step_generator


def draw_next(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator
              ) -> torch.Tensor:
    """One token per row of logits [B, V]: softmax(logits / temperature), restricted to the top k."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = logits.float() / temperature
    if 0 < top_k < logits.shape[1]:
        kth = torch.topk(logits, top_k, dim=1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator)[:, 0]


@torch.no_grad()
def sample_codes(model: NextTokenModel, n_jets: int, max_constituents: int, *, seed: int,
                 temperature: float = 1.0, top_k: int = 0, labels: torch.Tensor | None = None,
                 batch_size: int = 512, device: torch.device | str = "cpu", progress: bool = False
                 ) -> torch.Tensor:
    """Codes [n_jets, max_constituents] of generated jets, -1 after each jet's last constituent.

    ``labels`` [n_jets] are the classes of a class-conditional backbone (None or -1: no
    class). Batch b draws from its own generator seeded by (seed, b), so the jets depend
    on seed and batch size only.
    """
    if max_constituents < 1 or n_jets < 0:
        raise ValueError(f"need n_jets >= 0 and max_constituents >= 1, got {n_jets}, {max_constituents}")
    device = torch.device(device)
    if labels is not None and len(labels) != n_jets:
        raise ValueError(f"{len(labels)} labels for {n_jets} jets")
    model.eval()
    encoder = model.encoder
    stop = encoder.stop_id
    out = torch.full((n_jets, max_constituents), -1, dtype=torch.long)
    starts = range(0, n_jets, batch_size)
    for b, start in enumerate(tqdm(starts, desc="generate jets", unit="batch", disable=not progress)):
        size = min(batch_size, n_jets - start)
        gen = step_generator(seed, b, device)
        label = None if labels is None else labels[start:start + size].to(device)
        prefix = encoder.prefix(size, device, label)
        caches = encoder.transformer.new_caches(prefix.shape[1] + max_constituents)
        codes = torch.full((size, max_constituents), -1, dtype=torch.long, device=device)
        done = torch.zeros(size, dtype=torch.bool, device=device)
        with autocast(device):
            logits = model.logits(prefix, caches)[:, -1]
        for t in range(max_constituents):
            if t == 0:
                logits[:, stop] = float("-inf")
            token = draw_next(logits, temperature, top_k, gen)
            done |= token == stop
            codes[:, t] = torch.where(done, -1, token)
            if bool(done.all()) or t == max_constituents - 1:
                break
            with autocast(device):
                logits = model.logits(token[:, None], caches)[:, -1]
        out[start:start + size] = codes.cpu()
    return out
