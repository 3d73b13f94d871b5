"""Pieces every training loop shares: device, precision, schedule, batching, threads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def autocast(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast on CUDA; full precision on the CPU (bf16 matmuls are slow there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def warmup_exponential(step: int, warmup: int, half_life: int) -> float:
    """Learning-rate factor: linear warm-up from zero, then exponential decay (MPMv2)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    return 0.5 ** ((step - warmup) / half_life)


def batches(n: int, batch_size: int, generator: torch.Generator,
            lengths: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    """Endless stream of random index batches; each epoch is a fresh permutation.

    With ``lengths`` (constituents per jet) batches are bucketed: each epoch's random
    permutation is sorted by length, cut into batches, and the batches are shuffled. Jets
    of similar multiplicity then share a batch, so little compute goes to padding.
    """
    stop = n - batch_size + 1 if n >= batch_size else 1
    while True:
        perm = torch.randperm(n, generator=generator)
        if lengths is not None:
            perm = perm[torch.argsort(lengths[perm], stable=True)]
        chunks = [perm[start:start + batch_size] for start in range(0, stop, batch_size)]
        for i in torch.randperm(len(chunks), generator=generator).tolist():
            yield chunks[i]


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
