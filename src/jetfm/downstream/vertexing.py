"""Secondary-vertex finding (benchmark btag_vertex_ari).

Per-track embeddings from the encoder → a twin network gives every track pair the
probability p_ij = σ(φ(x_i)·φ(x_j)/√d + b) of sharing a vertex → pairs above threshold
are joined → connected components are the predicted vertices → adjusted Rand index
against the truth, per jet.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from jetfm.data.features import PaddedJets, pad_jets
from jetfm.downstream.metrics import adjusted_rand_index, binned_mean, n_secondary_vertices
from jetfm.graph import connected_components
from jetfm.jets.parquet_io import read_jet_table
from jetfm.models import JetEncoder
from jetfm.pretrain import load_backbone
from jetfm.provenance import provenance
from jetfm.results import write_result
from jetfm.training import autocast, batches, resolve_device, set_threads

BENCHMARK = "btag_vertex_ari"
METRIC = "adjusted_rand_index"
SV_BINS = [0, 1, 2, 3]  # number of true secondary vertices; last bin is 3+


class TwinEdgeHead(nn.Module):
    def __init__(self, dim: int, hidden: int, embed: int) -> None:
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, embed))
        self.bias = nn.Parameter(torch.zeros(()))
        self.scale = embed ** -0.5

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        z = self.phi(tokens)
        return torch.einsum("bid,bjd->bij", z, z) * self.scale + self.bias


def pair_targets(vertex: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Same-vertex target and the pairs that count (i < j, both real tracks)."""
    same = (vertex[:, :, None] == vertex[:, None, :]).float()
    n = mask.shape[1]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=mask.device), diagonal=1)
    return same, mask[:, :, None] & mask[:, None, :] & upper


def predict_vertices(logits: np.ndarray, mask: np.ndarray, threshold: float) -> np.ndarray:
    prob = 1.0 / (1.0 + np.exp(-logits))
    adjacency = (prob > threshold) & (np.swapaxes(prob, 1, 2) > threshold)
    return connected_components(adjacency, mask)


def score_partitions(true_vertex: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """Mean ARI over jets with at least two tracks, overall and per number of true SVs."""
    use = mask.sum(axis=1) >= 2
    ari = adjusted_rand_index(np.where(mask, true_vertex, 0), np.where(mask, pred, 0), mask)[use]
    n_sv = n_secondary_vertices(true_vertex, mask)[use]
    return {"value": float(ari.mean()), "bins": binned_mean(ari, n_sv, SV_BINS), "n_eval": int(use.sum())}


def _encoder_for(params: dict[str, Any], checkpoint: str | Path | None) -> JetEncoder:
    if params["mode"] == "scratch":
        return JetEncoder.from_config(params["encoder"])
    if checkpoint is None:
        raise ValueError(f"mode '{params['mode']}' needs a backbone checkpoint")
    return load_backbone(checkpoint)


@torch.no_grad()
def _embed(encoder: JetEncoder, data: PaddedJets, device: torch.device, batch: int = 1024) -> torch.Tensor:
    """Encoder output for every jet, [J, N, D] at the data's full width N."""
    encoder.eval()
    out = torch.zeros(*data.mask.shape, encoder.dim, device=device)
    for start in range(0, len(data), batch):
        part = data.subset(slice(start, start + batch))
        with autocast(device):
            tokens, _ = encoder(part.features.to(device), part.pid.to(device), part.mask.to(device))
        out[start:start + len(part), :tokens.shape[1]] = tokens.float()
    return out


def train_vertex_finder(train_file: str | Path, test_file: str | Path, checkpoint: str | Path | None,
                        params: dict[str, Any], out: str | Path, threads: int = 1,
                        progress: bool = True) -> dict[str, Any]:
    """Train the vertexing head in one mode and write the per-run result JSON."""
    cfg = params["vertexing"]
    mode, seed = params["mode"], params["seed"]
    set_threads(threads)
    device = resolve_device(params["device"])
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    train = pad_jets(read_jet_table(train_file))
    if cfg["n_train"] is not None and cfg["n_train"] < len(train):
        train = train.subset(torch.randperm(len(train), generator=gen)[: cfg["n_train"]])
    test = pad_jets(read_jet_table(test_file))  # its own width: a training subset may be narrower

    encoder = _encoder_for(params, checkpoint).to(device)
    head = TwinEdgeHead(encoder.dim, cfg["head_hidden"], cfg["head_embed"]).to(device)
    frozen = mode == "fixed"
    # A frozen encoder is evaluated once; the head then trains on cached embeddings.
    cached = _embed(encoder, train, device) if frozen else None
    groups = [{"params": head.parameters(), "lr": cfg["lr"]}]
    if not frozen:
        groups.append({"params": encoder.parameters(), "lr": cfg["lr"]})
    optimiser = torch.optim.AdamW(groups, weight_decay=1e-5)

    def encoder_lr(step: int) -> float:
        if mode != "finetune":
            return 1.0
        warm = cfg["frozen_steps"]
        if step < warm:
            return 0.0
        return cfg["backbone_lr_factor"] * min(1.0, (step - warm + 1) / max(warm, 1))

    batch_size = min(cfg["batch_size"], len(train))
    stream = batches(len(train), batch_size, gen, lengths=train.lengths)
    bar = tqdm(range(cfg["steps"]), desc=f"vertexing {params['backbone_name']}/{mode}/seed{seed}",
               unit="step", disable=not progress, mininterval=2.0)
    encoder.train(not frozen)
    start_time = time.perf_counter()
    loss_value = float("nan")
    for step in bar:
        idx = next(stream)
        part = train.subset(idx)
        mask, vertex = part.mask.to(device), part.vertex.to(device)
        if not frozen:
            optimiser.param_groups[1]["lr"] = cfg["lr"] * encoder_lr(step)
        with autocast(device):
            if frozen:
                tokens = cached[idx.to(cached.device), :mask.shape[1]]
            else:
                tokens, _ = encoder(part.features.to(device), part.pid.to(device), mask)
            logits = head(tokens).float()
        target, use = pair_targets(vertex, mask)
        loss = F.binary_cross_entropy_with_logits(logits[use], target[use])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        loss_value = float(loss.detach())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss_value:.4f}")
    train_seconds = time.perf_counter() - start_time

    head.eval()
    with torch.no_grad():
        logits = head(_embed(encoder, test, device)).cpu().numpy()
    mask = test.mask.numpy()
    pred = predict_vertices(logits, mask, cfg["threshold"])
    scores = score_partitions(test.vertex.numpy(), pred, mask)
    row = {"backbone": params["backbone_name"], "mode": mode, "seed": seed,
           "value": scores["value"], "n_train": len(train), "bins": scores["bins"],
           "n_eval": scores["n_eval"], "final_train_loss": loss_value,
           "train_seconds": round(train_seconds, 1)}
    meta = provenance("vertexing", params)
    result = {"benchmark": BENCHMARK, "metric": METRIC, "config_hash": meta["config_hash"],
              "rows": [row], "provenance": meta,
              "checkpoint": None if checkpoint is None else Path(checkpoint).name}
    write_result(result, out)
    return result


def vertex_baselines(test_file: str | Path, out: str | Path) -> dict[str, Any]:
    """The two trivial answers: all tracks in one vertex, every track its own vertex."""
    test = pad_jets(read_jet_table(test_file))
    mask, vertex = test.mask.numpy(), test.vertex.numpy()
    n = mask.shape[1]
    one_vertex = np.zeros_like(vertex)
    own_vertex = np.broadcast_to(np.arange(n), vertex.shape).copy()
    rows = []
    for name, pred in (("baseline-one-vertex", one_vertex), ("baseline-own-vertex", own_vertex)):
        scores = score_partitions(vertex, pred, mask)
        rows.append({"backbone": name, "mode": "baseline", "seed": 0, "value": scores["value"],
                     "n_train": 0, "bins": scores["bins"], "n_eval": scores["n_eval"]})
    meta = provenance("vertex_baselines", {"test_file": Path(test_file).name})
    result = {"benchmark": BENCHMARK, "metric": METRIC, "config_hash": meta["config_hash"],
              "rows": rows, "provenance": meta}
    write_result(result, out)
    return result
