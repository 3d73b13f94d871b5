"""One downstream run: a backbone in one mode, at one sweep point, with one seed → per-run JSON.

Modes (the MPMv2 paper's protocol):

- ``scratch``: the backbone's architecture, randomly initialised, trained with the head
  (the supervised reference);
- ``fixed``: the pre-trained encoder frozen; only the head trains (its outputs are computed
  once and cached when they fit in memory);
- ``finetune``: the pre-trained encoder frozen for ``frozen_steps``, then trained with a
  learning rate that warms up linearly over as many steps to ``backbone_lr_factor`` × the
  head's;
- ``supervised`` (CWoLa only): trained like ``finetune`` but with the true labels, the
  reference that weak supervision is measured against.

Every learning rate follows a cosine decay to zero over ``steps``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from jetfm.data.features import PaddedJets, pad_jets
from jetfm.downstream.cwola import cwola_training_set, labelled_test_set, supervised_training_set
from jetfm.downstream.tasks import JetClassification, TrackOrigin, VertexFinding
from jetfm.generate.processes import BOOSTED_LABEL_NAMES
from jetfm.jets.parquet_io import read_jet_table
from jetfm.jets.truth import BTAG_LABEL_NAMES, ORIGIN_NAMES
from jetfm.models import JetEncoder
from jetfm.models.token_encoder import Backbone
from jetfm.pretrain import load_backbone
from jetfm.pretrain.train import token_encoder
from jetfm.provenance import provenance
from jetfm.results import write_result
from jetfm.tokenize import VQVAETokenizer, check_made_by
from jetfm.training import BatchPlan, autocast, resolve_device, set_threads

MODES = ("scratch", "fixed", "finetune", "supervised")
CACHE_LIMIT_BYTES = 2 * 1024**3  # frozen-encoder outputs above this are recomputed per step instead


def make_task(benchmark: str, settings: dict[str, Any]) -> Any:
    if benchmark == "btag_vertex_ari":
        return VertexFinding(settings)
    if benchmark == "btag_track_id":
        return TrackOrigin(list(ORIGIN_NAMES), settings)
    if benchmark == "btag_ood_accuracy":
        names = list(BTAG_LABEL_NAMES)
        return JetClassification(names, settings, roc=(names.index("b"), names.index("light")))
    if benchmark == "jetclass_accuracy":
        names = list(BOOSTED_LABEL_NAMES)
        return JetClassification(names, settings, roc=(names.index("Tbqq"), names.index("QCD")))
    if benchmark == "cwola_sic":
        return JetClassification(["half 1", "half 2"], settings, roc=(1, 0),
                                 sic_rejection=settings["background_rejection"], metric="sic_at_rejection",
                                 test_names=[settings["background"], settings["signal"]])
    raise ValueError(f"unknown benchmark '{benchmark}'")


def select_jets(params: dict[str, Any], train: PaddedJets, test: PaddedJets
                ) -> tuple[PaddedJets, PaddedJets]:
    """The training jets of this run (sweep point, CWoLa mixing) and the labelled test jets."""
    point, seed = params["point"], params["seed"]
    if params["benchmark"] == "cwola_sic":
        s = params["settings"]
        bkg, sig = BOOSTED_LABEL_NAMES.index(s["background"]), BOOSTED_LABEL_NAMES.index(s["signal"])
        if params["mode"] == "supervised":
            index, target = supervised_training_set(train.label.numpy(), bkg, sig)
        else:
            index, target = cwola_training_set(train.label.numpy(), bkg, sig, point["n_signal"], seed)
        train = dataclasses.replace(train.subset(torch.from_numpy(index)), label=torch.from_numpy(target))
        t_index, t_target = labelled_test_set(test.label.numpy(), bkg, sig)
        test = dataclasses.replace(test.subset(torch.from_numpy(t_index)), label=torch.from_numpy(t_target))
        return train, test
    n_train = point["n_train"]
    if n_train is not None:
        if n_train > len(train):
            raise ValueError(f"{params['benchmark']}: train_sizes asks for {n_train} jets, "
                             f"the training set has {len(train)}")
        gen = torch.Generator().manual_seed(seed)
        train = train.subset(torch.randperm(len(train), generator=gen)[:n_train])
    return train, test


def make_encoder(params: dict[str, Any], checkpoint: str | Path | None,
                 tokenizer: str | Path | None = None) -> Backbone:
    """The run's backbone: pre-trained from ``checkpoint``, or randomly initialised (scratch; a gpt
    backbone then reads its trained, frozen ``tokenizer``)."""
    if params["mode"] == "scratch":
        arch = params.get("architecture")
        if arch is None:
            return JetEncoder.from_config(params["encoder"])
        if tokenizer is None:
            raise ValueError(f"scratch mode of gpt backbone '{params['backbone_name']}' needs its tokenizer "
                             "(--tokenizer)")
        tok = VQVAETokenizer.load(tokenizer)
        check_made_by(tok, arch["tokenizer"], tokenizer, f"backbone '{params['backbone_name']}'")
        return token_encoder(arch, tok)
    if checkpoint is None:
        raise ValueError(f"mode '{params['mode']}' needs a backbone checkpoint")
    return load_backbone(checkpoint)


def learning_rates(step: int, steps: int, mode: str, settings: dict[str, Any]) -> tuple[float, float]:
    """(head, encoder) learning rates at ``step``."""
    head = settings["lr"] * 0.5 * (1.0 + math.cos(math.pi * step / steps))
    if mode == "scratch":
        return head, head
    if mode == "fixed":
        return head, 0.0
    frozen = settings["frozen_steps"]
    ramp = 0.0 if step < frozen else min(1.0, (step - frozen + 1) / max(frozen, 1))
    return head, head * settings["backbone_lr_factor"] * ramp


@torch.no_grad()
def encode_all(encoder: Backbone, data: PaddedJets, device: torch.device, batch: int = 512
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder outputs of every jet: tokens [J, N, D] at the data's width, registers [J, R, D]."""
    encoder.eval()
    tokens = torch.zeros(*data.mask.shape, encoder.dim)
    registers = torch.zeros(len(data), encoder.n_registers, encoder.dim)
    for index in _length_ordered_batches(data, batch):
        part = data.subset(index)
        with autocast(device):
            t, r = encoder(part.features.to(device), part.pid.to(device), part.mask.to(device))
        tokens[index, :t.shape[1]] = t.float().cpu()
        registers[index] = r.float().cpu()
    return tokens, registers


@torch.no_grad()
def predict(encoder: Backbone, head: nn.Module, data: PaddedJets, device: torch.device,
            output: str, batch: int = 512) -> np.ndarray:
    """Head outputs for every jet; per-track (``output="track"``) and per-pair (``"pair"``)
    outputs are padded back to the data's full width."""
    encoder.eval()
    head.eval()
    width = data.mask.shape[1]
    out: np.ndarray | None = None
    for index in _length_ordered_batches(data, batch):
        part = data.subset(index)
        mask = part.mask.to(device)
        with autocast(device):
            tokens, registers = encoder(part.features.to(device), part.pid.to(device), mask)
            y = head(tokens, registers, mask).float().cpu().numpy()
        rows, w = index.numpy(), y.shape[1]
        if out is None:
            shape = {"jet": y.shape[1:], "track": (width, *y.shape[2:]), "pair": (width, width)}[output]
            out = np.zeros((len(data), *shape), np.float32)
        if output == "jet":
            out[rows] = y
        elif output == "track":
            out[rows, :w] = y
        else:
            out[rows, :w, :w] = y
    assert out is not None
    return out


def _length_ordered_batches(data: PaddedJets, batch: int) -> list[torch.Tensor]:
    order = torch.argsort(data.lengths, stable=True)
    return [order[i:i + batch] for i in range(0, len(data), batch)]


def train_head(task: Any, encoder: Backbone, train: PaddedJets, params: dict[str, Any],
               device: torch.device, progress: bool = True) -> tuple[nn.Module, float]:
    """Train the task head (and the encoder, by mode); returns the head and the last loss."""
    s, mode, seed = params["settings"], params["mode"], params["seed"]
    torch.manual_seed(seed)
    head = task.head(encoder.dim).to(device)
    frozen = mode == "fixed"
    cache = None
    if frozen and len(train) * train.mask.shape[1] * encoder.dim * 4 <= CACHE_LIMIT_BYTES:
        cache = encode_all(encoder, train, device)
    groups = [{"params": list(head.parameters())}]
    if not frozen:
        # a gpt backbone's tokenizer stays frozen in every mode
        groups.append({"params": [p for p in encoder.parameters() if p.requires_grad]})
    optimiser = torch.optim.AdamW(groups, lr=s["lr"], weight_decay=s["weight_decay"])
    plan = BatchPlan(len(train), s["batch_size"], seed, lengths=train.lengths)
    desc = f"{params['benchmark']} {params['backbone_name']}/{mode}/seed{seed}"
    bar = tqdm(range(s["steps"]), desc=desc, unit="step", disable=not progress, mininterval=2.0)
    loss_value = float("nan")
    head.train()
    for step in bar:
        index = plan(step)
        part = train.subset(index)
        head_lr, encoder_lr = learning_rates(step, s["steps"], mode, s)
        for group, lr in zip(optimiser.param_groups, (head_lr, encoder_lr), strict=False):
            group["lr"] = lr
        mask = part.mask.to(device)
        with autocast(device):
            if cache is not None:
                tokens = cache[0][index, :mask.shape[1]].to(device)
                registers = cache[1][index].to(device)
            else:
                train_encoder = encoder_lr > 0.0
                encoder.train(train_encoder)
                with torch.set_grad_enabled(train_encoder):
                    tokens, registers = encoder(part.features.to(device), part.pid.to(device), mask)
            out = head(tokens, registers, mask)
        loss = task.loss(out, part)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
        optimiser.step()
        loss_value = float(loss.detach())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss_value:.4f}")
    return head, loss_value


def run_benchmark(params: dict[str, Any], train_file: str | Path, test_file: str | Path,
                  checkpoint: str | Path | None, out: str | Path, threads: int = 1,
                  progress: bool = True, tokenizer: str | Path | None = None) -> dict[str, Any]:
    """Train and score one (benchmark, backbone, mode, point, seed) run; write its JSON."""
    if params["mode"] not in MODES:
        raise ValueError(f"unknown mode '{params['mode']}' (expected one of {', '.join(MODES)})")
    set_threads(threads)
    device = resolve_device(params["device"])
    task = make_task(params["benchmark"], params["settings"])
    train, test = select_jets(params, pad_jets(read_jet_table(train_file)),
                              pad_jets(read_jet_table(test_file)))
    torch.manual_seed(params["seed"])  # a scratch encoder's initialisation follows the run's seed
    encoder = make_encoder(params, checkpoint, tokenizer).to(device)
    start = time.perf_counter()
    head, last_loss = train_head(task, encoder, train, params, device, progress)
    train_seconds = time.perf_counter() - start
    scores = task.score(predict(encoder, head, test, device, task.output), test)
    row = {"backbone": params["backbone_name"], "mode": params["mode"], "seed": params["seed"],
           "n_train": len(train), **scores, "final_train_loss": last_loss,
           "train_seconds": round(train_seconds, 1)}
    if "n_signal" in params["point"]:
        row["n_signal"] = params["point"]["n_signal"]
    meta = provenance("downstream", params)
    result = {"benchmark": params["benchmark"], "metric": task.metric, "config_hash": meta["config_hash"],
              "rows": [row], "provenance": meta,
              "checkpoint": None if checkpoint is None else Path(checkpoint).name}
    write_result(result, out)
    return result
