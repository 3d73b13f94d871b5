"""Training on several processes with PyTorch's DistributedDataParallel (DDP).

A launcher starts one process per rank: ``torchrun`` (locally, or one per node under SLURM's
``srun``) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
each process then joins the group here (NCCL on GPUs, gloo on CPUs). A process started without
a launcher is a world of one and trains exactly as it would without this module.

Every rank runs the same loop on its own share of each global batch; DDP averages the
gradients. Rank 0 alone writes checkpoints, metrics and progress. What the ranks must agree on
(normalisation counts, logged losses, validation sums, stream positions) is exchanged with
the collectives below.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes outputs (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def share(self) -> slice:
        """This rank's rows of a global batch: every ``size``-th, from its rank (all for one rank)."""
        return slice(self.rank, None, self.size)


def world_from_environment(environ: Mapping[str, str] | None = None) -> World:
    """The world a launcher described in the environment: torchrun's variables, or SLURM's for
    tasks started by :func:`launch_command` with srun (``JETFM_LAUNCHER=srun``); a world of one
    without them. (SLURM's variables alone are not trusted: a single process inside an
    allocation of several tasks would wait for ranks that never come.)"""
    env = os.environ if environ is None else environ
    if env.get("JETFM_LAUNCHER") == "srun":
        env = {"RANK": env.get("SLURM_PROCID", ""), "WORLD_SIZE": env.get("SLURM_NTASKS", ""),
               "LOCAL_RANK": env.get("SLURM_LOCALID", "")}
    if "WORLD_SIZE" not in env:
        return World()
    try:
        world = World(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", env["RANK"])))
    except (KeyError, ValueError) as exc:
        raise RuntimeError("WORLD_SIZE is set but RANK / LOCAL_RANK are missing or not integers: "
                           "start several ranks with torchrun, or `jetfm launch` (srun under SLURM)") from exc
    if not 0 <= world.rank < world.size:
        raise RuntimeError(f"RANK {world.rank} outside WORLD_SIZE {world.size}")
    return world


def join(world: World, device: torch.device) -> torch.device:
    """Join the process group of ``world`` (nothing for a world of one); returns the device of
    this rank: its own GPU (``cuda:LOCAL_RANK``) when ``device`` is a GPU, else ``device``."""
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank if world.distributed else (device.index or 0))
        torch.cuda.set_device(device)
    if world.distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=world.rank, world_size=world.size,
                                device_id=device if device.type == "cuda" else None)
    return device


def leave(world: World) -> None:
    """Leave the process group (after every rank has finished)."""
    if world.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def process_group(world: World, device: torch.device) -> Iterator[torch.device]:
    """Join for the duration of a training run. An exception propagates at once, without waiting
    for the other ranks: the process ends, its peers' collectives fail on the closed connection
    and the launcher reports the first failure (:func:`report_to_launcher`), so one rank's error
    fails the job instead of hanging it."""
    device = join(world, device)
    yield device
    leave(world)


def report_to_launcher(exc: BaseException) -> None:
    """Hand an exception to torchrun (its error file, when it gave one), which names the first
    failing rank and its message as the job's root cause."""
    if os.environ.get("TORCHELASTIC_ERROR_FILE"):
        from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

        ErrorHandler().record_exception(exc)


def wrap(model: nn.Module, world: World, device: torch.device, find_unused_parameters: bool = False
         ) -> nn.Module:
    """``model`` in DDP when there are several ranks, else ``model`` itself.
    ``find_unused_parameters``: some steps leave parameters without gradients (a frozen phase)."""
    if not world.distributed:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                               find_unused_parameters=find_unused_parameters)


def per_rank_batch(global_batch: int, world: World, key: str) -> int:
    """Jets per rank and step: the config's global batch shared equally between the ranks."""
    if global_batch % world.size:
        raise ValueError(f"{key} = {global_batch} is the global batch and must be a multiple of the "
                         f"{world.size} ranks")
    return global_batch // world.size


def sum_over_ranks(values: Sequence[float] | torch.Tensor, world: World, device: torch.device
                   ) -> torch.Tensor:
    """Element-wise sum over ranks (float64, on the CPU); the values themselves for one rank."""
    tensor = torch.as_tensor(values, dtype=torch.float64)
    if not world.distributed:
        return tensor
    tensor = tensor.to(device)
    dist.all_reduce(tensor)
    return tensor.cpu()


def gather_objects(value: Any, world: World) -> list[Any]:
    """Every rank's ``value``, in rank order (on every rank)."""
    if not world.distributed:
        return [value]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, value)
    return out


def loss_weight(count: int, total: int, world: World) -> float:
    """The factor on a rank's mean loss over its ``count`` terms of the global batch's ``total``
    (size · count / total; 1 for one rank) that makes DDP's average of the ranks' gradients the
    gradient of the global batch's mean loss."""
    return world.size * count / total if world.distributed and total > 0 else 1.0


def launch_command(command: Sequence[str], nodes: int, ranks_per_node: int,
                   environ: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """How to start ``command`` (a jetfm command line, without ``jetfm``) on ``nodes`` ×
    ``ranks_per_node`` ranks: the command line and the environment it adds.

    One rank: ``jetfm`` itself. Inside a SLURM allocation (``SLURM_JOB_ID``): srun starts one
    task per rank on the allocation's nodes, and every task finds its rank in SLURM's variables
    and the group's address at this (the batch) node, on a port derived from the job id.
    Elsewhere: torchrun on this machine (``--standalone``: it picks a free port itself).
    """
    env = os.environ if environ is None else environ
    ranks = nodes * ranks_per_node
    jetfm = [sys.executable, "-m", "jetfm.cli"]
    if ranks == 1:
        return [*jetfm, *command], {}
    if env.get("SLURM_JOB_ID"):
        port = 20000 + int(env["SLURM_JOB_ID"]) % 20000
        srun = ["srun", f"--nodes={nodes}", f"--ntasks={ranks}", f"--ntasks-per-node={ranks_per_node}",
                "--kill-on-bad-exit=1"]
        return [*srun, *jetfm, *command], {"JETFM_LAUNCHER": "srun", "MASTER_ADDR": socket.gethostname(),
                                           "MASTER_PORT": str(port)}
    if nodes > 1:
        raise ValueError(f"{nodes} nodes need a SLURM allocation (run the workflow with --profile "
                         "profiles/slurm); on this machine use nodes: 1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                "--nproc_per_node", str(ranks_per_node), "--no-python"]
    return [*torchrun, *jetfm, *command], {}


__all__ = ["World", "gather_objects", "join", "launch_command", "leave", "loss_weight", "per_rank_batch",
           "process_group", "report_to_launcher", "sum_over_ranks", "world_from_environment", "wrap"]
