"""Pieces every training loop shares: device, precision, moving batches, compilation, schedule,
batching, threads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from jetfm.models.transformer import Transformer

Movable = TypeVar("Movable")


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


def to_device(value: Movable, device: torch.device) -> Movable:
    """A batch on ``device``: a tensor, or anything with ``device``, ``pin_memory()`` and ``to()``
    (:class:`PaddedJets`, a mask layout), or a dict or tuple of those. To a GPU through
    page-locked memory with asynchronous copies, so the host runs ahead of the GPU; count what
    must be counted on the host before moving."""
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, tuple):
        return tuple(to_device(v, device) for v in value)  # type: ignore[return-value]
    if device.type == "cuda" and value.device.type == "cpu":
        return value.pin_memory().to(device, non_blocking=True)  # pin_memory: no copy if pinned
    return value.to(device)


def compile_transformers(model: nn.Module) -> int:
    """``torch.compile`` every transformer stack in ``model``, in place; how many were compiled.

    Only the stacks, where the FLOPs are: the masking, tokenisation and heads around them draw
    from torch.Generator objects and change shape from step to step. Compiled in place
    (``Module.compile``), so parameter names, state dicts and checkpoints stay those of the
    eager model. ``dynamic=True``: jets are padded to each batch's longest, so the batch and
    length dimensions are symbolic from the first step instead of recompiling per length.
    """
    stacks = [m for m in model.modules() if isinstance(m, Transformer)]
    for stack in stacks:
        stack.compile(dynamic=True)
    return len(stacks)


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


def step_seed(seed: int, step: int, stream: int = 0) -> int:
    """A well-mixed 63-bit seed for one (seed, stream, step) triple."""
    state = np.random.SeedSequence([seed, stream, step]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def step_generator(seed: int, step: int, device: torch.device | str = "cpu", stream: int = 0
                   ) -> torch.Generator:
    """The random stream of one training step: a pure function of (seed, step), so that a
    run resumed from a checkpoint draws exactly what the uninterrupted run would have."""
    return torch.Generator(device=device).manual_seed(step_seed(seed, step, stream))


class BatchPlan:
    """Index batch of every step, as a pure function of (seed, step).

    Each epoch is a fresh permutation, bucketed by length like :func:`batches`: sorted by
    multiplicity, cut into batches, batches shuffled. Only the current epoch is kept.
    """

    def __init__(self, n: int, batch_size: int, seed: int, lengths: torch.Tensor | None = None) -> None:
        self.n, self.batch_size, self.seed, self.lengths = n, min(batch_size, n), seed, lengths
        self.per_epoch = max(1, n // self.batch_size)
        self._epoch = -1
        self._chunks: list[torch.Tensor] = []

    def __call__(self, step: int) -> torch.Tensor:
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            gen = step_generator(self.seed, epoch, stream=1)  # stream 1: batching, apart from steps'
            perm = torch.randperm(self.n, generator=gen)
            if self.lengths is not None:
                perm = perm[torch.argsort(self.lengths[perm], stable=True)]
            chunks = [perm[i * self.batch_size:(i + 1) * self.batch_size] for i in range(self.per_epoch)]
            self._chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=gen).tolist()]
            self._epoch = epoch
        return self._chunks[k]


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
