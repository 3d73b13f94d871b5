"""The pre-training loop: AdamW, warm-up + exponential decay, clipping, resumable checkpoints."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from jetfm.config import config_hash
from jetfm.data.features import FEATURE_VERSION, PaddedJets, pad_jets
from jetfm.jets.parquet_io import read_jet_table
from jetfm.models import JetEncoder
from jetfm.pretrain.masking import sample_mask
from jetfm.pretrain.mpm import MaskedParticleModel
from jetfm.provenance import atomic_output, provenance
from jetfm.tokenize import KMeansTokenizer
from jetfm.training import autocast, batches, resolve_device, set_threads, warmup_exponential


def token_targets(data: PaddedJets, tokenizer: KMeansTokenizer) -> torch.Tensor:
    """Token of every constituent, [J, N], -1 on padding."""
    tokens = torch.full(data.mask.shape, -1, dtype=torch.int64)
    tokens[data.mask] = torch.from_numpy(tokenizer.encode(data.features[data.mask].numpy()))
    return tokens


def _build(params: dict[str, Any], max_constituents: int, n_tokens: int | None) -> MaskedParticleModel:
    bb = params["backbone"]
    encoder = JetEncoder.from_config(bb["encoder"])
    return MaskedParticleModel(encoder, bb["decoder"], bb["tasks"], max_constituents, n_tokens)


@torch.no_grad()
def _evaluate(model: MaskedParticleModel, data: PaddedJets, tokens: torch.Tensor | None,
              fraction: float, device: torch.device, batch_size: int) -> dict[str, float]:
    model.eval()
    gen = torch.Generator().manual_seed(12345)  # same masks at every evaluation
    sums: dict[str, float] = {}
    count = 0
    for start in range(0, len(data), batch_size):
        part = data.subset(slice(start, start + batch_size))
        masked = sample_mask(part.mask, fraction, gen)
        tok = None if tokens is None else tokens[start:start + batch_size, :part.mask.shape[1]].to(device)
        with autocast(device):
            out = model(part.features.to(device), part.pid.to(device), part.mask.to(device),
                        masked.to(device), tok)
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(part)
        count += len(part)
    model.train()
    return {f"val_{k}": v / count for k, v in sums.items()}


def pretrain_backbone(train_file: str | Path, val_file: str | Path, tokenizer_file: str | Path | None,
                      params: dict[str, Any], out: str | Path, metrics_out: str | Path,
                      threads: int = 1, progress: bool = True) -> dict[str, float]:
    """Pre-train one backbone; ``params`` is ``stage_params(cfg, 'pretrain', backbone=...)``.

    Writes the checkpoint ``out`` and the per-step metrics CSV ``metrics_out``. A
    checkpoint ``<out>.resume`` is kept while training so that a killed job continues
    where it stopped; it is removed on success.
    """
    bb, opt_cfg = params["backbone"], params["pretrain"]
    set_threads(threads)
    device = resolve_device(params["device"])
    torch.manual_seed(opt_cfg["seed"])

    train = pad_jets(read_jet_table(train_file))
    val = pad_jets(read_jet_table(val_file))
    width = max(train.mask.shape[1], val.mask.shape[1])
    tokenizer = KMeansTokenizer.load(tokenizer_file) if "kmeans" in bb["tasks"] else None
    train_tokens = token_targets(train, tokenizer) if tokenizer else None
    val_tokens = token_targets(val, tokenizer) if tokenizer else None

    model = _build(params, width, tokenizer.k if tokenizer else None).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=opt_cfg["lr"],
                                  weight_decay=opt_cfg["weight_decay"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: warmup_exponential(s, opt_cfg["warmup_steps"], opt_cfg["half_life_steps"]))
    gen = torch.Generator().manual_seed(opt_cfg["seed"])
    history: list[dict[str, float]] = []
    step = 0

    resume = Path(f"{out}.resume")
    signature = config_hash(params)
    if resume.exists():
        state = torch.load(resume, map_location=device, weights_only=False)
        if state["signature"] == signature:
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            schedule.load_state_dict(state["schedule"])
            gen.set_state(state["generator"])
            history, step = state["history"], state["step"]

    batch_size = min(opt_cfg["batch_size"], len(train))
    stream = batches(len(train), batch_size, gen, lengths=train.lengths)
    bar = tqdm(total=opt_cfg["steps"], initial=step, desc=f"pretrain {params['name']}",
               unit="step", disable=not progress, mininterval=2.0)
    model.train()
    tick = time.perf_counter()
    while step < opt_cfg["steps"]:
        idx = next(stream)
        part = train.subset(idx)
        masked = sample_mask(part.mask, bb["mask_fraction"], gen)
        tok = None if train_tokens is None else train_tokens[idx][:, :part.mask.shape[1]].to(device)
        with autocast(device):
            out_ = model(part.features.to(device), part.pid.to(device), part.mask.to(device),
                         masked.to(device), tok)
        optimiser.zero_grad(set_to_none=True)
        out_["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), opt_cfg["grad_clip"])
        optimiser.step()
        schedule.step()
        step += 1

        if step % 10 == 0 or step == opt_cfg["steps"]:
            elapsed = time.perf_counter() - tick
            tick = time.perf_counter()
            row = {"step": step, "lr": schedule.get_last_lr()[0], "grad_norm": float(grad_norm),
                   **{k: float(v.detach()) for k, v in out_.items()},
                   "jets_per_s": 10 * batch_size / max(elapsed, 1e-9)}
            if step % 100 == 0 or step == opt_cfg["steps"]:
                row |= _evaluate(model, val, val_tokens, bb["mask_fraction"], device, 1024)
            history.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", jets_s=f"{row['jets_per_s']:.0f}")
        bar.update(1)
        if step % opt_cfg["checkpoint_every"] == 0 and step < opt_cfg["steps"]:
            with atomic_output(resume) as tmp:
                torch.save({"signature": signature, "model": model.state_dict(),
                            "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                            "generator": gen.get_state(), "history": history, "step": step}, tmp)
    bar.close()

    final = {k: v for k, v in history[-1].items() if k.startswith(("loss", "acc", "val_"))}
    checkpoint = {
        "kind": "backbone",
        "method": bb["method"],
        "encoder_config": model.encoder.config,
        "encoder_state": model.encoder.state_dict(),
        "feature_version": FEATURE_VERSION,
        "max_constituents": width,
        "final_metrics": final,
        "provenance": provenance("pretrain", params),
    }
    with atomic_output(out) as tmp:
        torch.save(checkpoint, tmp)
    _write_csv(history, metrics_out)
    resume.unlink(missing_ok=True)
    return final


def _write_csv(history: list[dict[str, float]], path: str | Path) -> None:
    fields = sorted({k for row in history for k in row}, key=lambda k: (k != "step", k))
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)


def load_backbone(path: str | Path, map_location: str | torch.device = "cpu") -> JetEncoder:
    """The pre-trained encoder of a backbone checkpoint."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"backbone checkpoint not found: {path}")
    blob = torch.load(path, map_location=map_location, weights_only=False)
    if blob.get("kind") != "backbone":
        raise ValueError(f"{path}: not a jetfm backbone checkpoint")
    if blob.get("feature_version") != FEATURE_VERSION:
        raise ValueError(f"{path}: trained on feature version {blob.get('feature_version')}, "
                         f"this jetfm uses {FEATURE_VERSION}; re-run pretrain")
    encoder = JetEncoder.from_config(blob["encoder_config"])
    encoder.load_state_dict(blob["encoder_state"])
    return encoder
