"""Per-constituent reconstruction tasks shared by MPMv1 and MPMv2.

Every task maps the decoder output of each masked constituent to a loss: ``id`` (particle
type, cross-entropy), ``reg`` (continuous features, L1), ``kmeans`` / ``vqvae`` (token,
cross-entropy), ``cnf`` (conditional normalising flow, negative log-likelihood) and ``cfm``
(conditional flow matching). ``ssfm`` is a set-level decoder and lives in the MPMv2 model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from jetfm.contract import CONTINUOUS_FEATURES, N_PID_CLASSES
from jetfm.pretrain.heads import ConditionalFlowHead, FlowMatchingHead

N_FEATURES = len(CONTINUOUS_FEATURES)
CLASSIFICATION_TASKS = ("id", "kmeans", "vqvae")
CONSTITUENT_TASKS = ("id", "reg", "kmeans", "vqvae", "cnf", "cfm")


class ReconstructionHeads(nn.Module):
    """The task heads on top of a per-constituent representation of width ``dim``."""

    def __init__(self, tasks: list[str], dim: int, n_tokens: Mapping[str, int],
                 head_cfg: Mapping[str, Any]) -> None:
        super().__init__()
        self.tasks = [t for t in tasks if t in CONSTITUENT_TASKS]
        for task in ("kmeans", "vqvae"):
            if task in self.tasks and not n_tokens.get(task):
                raise ValueError(f"the {task} task needs its tokenizer's number of tokens")
        heads: dict[str, nn.Module] = {}
        for task in self.tasks:
            if task == "id":
                heads[task] = nn.Linear(dim, N_PID_CLASSES)
            elif task == "reg":
                heads[task] = nn.Linear(dim, N_FEATURES)
            elif task in ("kmeans", "vqvae"):
                heads[task] = nn.Linear(dim, n_tokens[task])
            elif task == "cnf":
                c = head_cfg["cnf"]
                heads[task] = ConditionalFlowHead(N_FEATURES, dim, blocks=c["blocks"], hidden=c["hidden"],
                                                  bins=c["bins"])
            elif task == "cfm":
                c = head_cfg["cfm"]
                heads[task] = FlowMatchingHead(N_FEATURES, dim, hidden=c["hidden"], layers=c["layers"])
        self.heads = nn.ModuleDict(heads)

    def forward(self, rep: torch.Tensor, features: torch.Tensor, pid: torch.Tensor,
                tokens: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        """Losses (and accuracies) for M masked constituents.

        rep [M, dim]; features [M, 7] and pid [M] are the true values; tokens[task] [M].
        """
        rep = rep.float()
        features = features.float()
        # a batch may mask nothing (e.g. only one-constituent jets): zero, still in the graph
        empty = rep.sum() * 0.0
        targets = {"id": pid, **tokens}
        out: dict[str, torch.Tensor] = {}
        for task in self.tasks:
            head = self.heads[task]
            if task in CLASSIFICATION_TASKS:
                if task not in targets:
                    raise ValueError(f"the {task} task needs token targets")
                logits = head(rep)
                target = targets[task]
                out[f"loss_{task}"] = F.cross_entropy(logits, target) if len(target) else empty
                out[f"acc_{task}"] = ((logits.argmax(-1) == target).float().mean() if len(target)
                                      else empty.detach())
            elif task == "reg":
                out["loss_reg"] = F.l1_loss(head(rep), features) if len(rep) else empty
            elif task == "cnf":
                out["loss_cnf"] = head.loss(features, rep)
            elif task == "cfm":
                out["loss_cfm"] = head.loss(features, rep, generator)
        return out


def total_loss(losses: Mapping[str, torch.Tensor], tasks: list[str], like: torch.Tensor) -> torch.Tensor:
    return sum((losses[f"loss_{t}"] for t in tasks), like.new_zeros((), dtype=torch.float32))
