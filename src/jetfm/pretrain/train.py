"""The pre-training loop: AdamW, warm-up + exponential decay, clipping, validation losses,
a linear probe, metrics CSV and plot, and resumable checkpoints."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from jetfm.config import config_hash
from jetfm.data.features import FEATURE_VERSION, PaddedJets, pad_jets
from jetfm.jets.parquet_io import read_jet_table
from jetfm.models import JetEncoder
from jetfm.pretrain.masking import sample_mask
from jetfm.pretrain.mpm import MaskedParticleModel
from jetfm.pretrain.mpm_v1 import MaskedParticleModelV1
from jetfm.pretrain.probe import linear_probe
from jetfm.provenance import atomic_output, provenance
from jetfm.tokenize import load_tokenizer
from jetfm.training import (
    BatchPlan,
    autocast,
    resolve_device,
    set_threads,
    step_generator,
    warmup_exponential,
)

CHECKPOINT_KIND = "backbone"
EVAL_SEED = 12345  # the same masks at every evaluation


def build_model(recipe: Mapping[str, Any], max_constituents: int,
                n_tokens: Mapping[str, int]) -> MaskedParticleModel | MaskedParticleModelV1:
    encoder = JetEncoder.from_config(recipe["encoder"])
    if recipe["method"] == "mpm-v1":
        return MaskedParticleModelV1(encoder, recipe, max_constituents, n_tokens)
    return MaskedParticleModel(encoder, recipe, max_constituents, n_tokens)


def mask_fraction(recipe: Mapping[str, Any], generator: torch.Generator | None) -> float:
    """The batch's mask fraction: fixed, or drawn from ssfm_mask_range (None → its midpoint)."""
    if "ssfm_mask_range" not in recipe:
        return float(recipe["mask_fraction"])
    low, high = recipe["ssfm_mask_range"]
    if generator is None:
        return 0.5 * (low + high)
    return low + (high - low) * float(torch.rand((), generator=generator))


def _load_tokens(tokenizer_files: Mapping[str, str | Path], params: Mapping[str, Any],
                 datasets: list[PaddedJets]) -> tuple[dict[str, int], list[dict[str, torch.Tensor]]]:
    """Token targets [J, N] of every token task for each dataset, and the tasks' vocabulary sizes."""
    needed = set(params["tokenizers"])
    missing = needed - set(tokenizer_files)
    if missing:
        raise ValueError(f"backbone '{params['name']}': tasks {sorted(missing)} need tokenizer files "
                         "(--tokenizer TASK=PATH)")
    n_tokens: dict[str, int] = {}
    tokens: list[dict[str, torch.Tensor]] = [{} for _ in datasets]
    for task in sorted(needed):
        tokenizer = load_tokenizer(tokenizer_files[task])
        expected = config_hash(params["tokenizers"][task])
        made_by = tokenizer.info.get("config_hash")
        if made_by is not None and made_by != expected:
            raise ValueError(f"{tokenizer_files[task]}: made by a different tokenizer config than "
                             f"backbone '{params['name']}' expects; re-run the tokenize rule")
        n_tokens[task] = tokenizer.n_tokens
        for out, data in zip(tokens, datasets, strict=True):
            out[task] = tokenizer.tokens(data)
    return n_tokens, tokens


def _batch_tokens(tokens: Mapping[str, torch.Tensor], index: torch.Tensor | slice, width: int,
                  device: torch.device) -> dict[str, torch.Tensor]:
    return {task: t[index][:, :width].to(device) for task, t in tokens.items()}


@torch.no_grad()
def evaluate(model: nn.Module, recipe: Mapping[str, Any], data: PaddedJets,
             tokens: Mapping[str, torch.Tensor], device: torch.device, batch_size: int = 1024
             ) -> dict[str, float]:
    """Validation losses with fixed masks and noise (comparable from one evaluation to the next)."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for i, start in enumerate(range(0, len(data), batch_size)):
        index = slice(start, start + batch_size)
        part = data.subset(index)
        gen = step_generator(EVAL_SEED, i)
        noise = step_generator(EVAL_SEED, i, device)
        masked = sample_mask(part.mask, mask_fraction(recipe, None), gen)
        with autocast(device):
            out = model(part.features.to(device), part.pid.to(device), part.mask.to(device),
                        masked.to(device), _batch_tokens(tokens, index, part.mask.shape[1], device), noise)
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(part)
        count += len(part)
    model.train(was_training)
    return {f"val_{k}": v / count for k, v in sums.items()}


def _subset_for_probe(data: PaddedJets, n: int, seed: int) -> PaddedJets:
    gen = torch.Generator().manual_seed(seed)
    return data.subset(torch.randperm(len(data), generator=gen)[: min(n, len(data))])


def pretrain_backbone(train_file: str | Path, val_file: str | Path,
                      tokenizer_files: Mapping[str, str | Path], params: dict[str, Any],
                      out: str | Path, metrics_out: str | Path, threads: int = 1, progress: bool = True,
                      on_step: Callable[[int], None] | None = None) -> dict[str, float]:
    """Pre-train one backbone; ``params`` is ``stage_params(cfg, 'pretrain', backbone=...)``.

    Writes the checkpoint ``out``, the per-step metrics CSV ``metrics_out`` and its plot
    (same name, .png). While training, ``<out>.resume`` holds the latest resumable state:
    a killed job started again continues from it, and because batches, masks and noise are
    pure functions of (seed, step) the result is the same as an uninterrupted run's. It is
    removed on success. ``on_step(step)`` is called after every optimiser step.
    """
    recipe, opt = params["backbone"], params["pretrain"]
    set_threads(threads)
    device = resolve_device(params["device"])
    torch.manual_seed(opt["seed"])

    train = pad_jets(read_jet_table(train_file))
    val = pad_jets(read_jet_table(val_file))
    width = max(train.mask.shape[1], val.mask.shape[1])
    n_tokens, (train_tokens, val_tokens) = _load_tokens(tokenizer_files, params, [train, val])

    model = build_model(recipe, width, n_tokens).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=opt["lr"], weight_decay=opt["weight_decay"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: warmup_exponential(s, opt["warmup_steps"], opt["half_life_steps"]))
    history: list[dict[str, float]] = []
    step = 0

    resume = Path(f"{out}.resume")
    signature = config_hash(params)
    if resume.exists():
        state = torch.load(resume, map_location=device, weights_only=False)
        if state.get("signature") == signature:
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            schedule.load_state_dict(state["schedule"])
            history, step = state["history"], state["step"]

    plan = BatchPlan(len(train), opt["batch_size"], opt["seed"], lengths=train.lengths)
    probe_train = _subset_for_probe(train, opt["probe_jets"], opt["seed"])
    probe_val = _subset_for_probe(val, opt["probe_jets"], opt["seed"] + 1)
    bar = tqdm(total=opt["steps"], initial=step, desc=f"pretrain {params['name']}", unit="step",
               disable=not progress, mininterval=2.0)
    if step == 0:  # the untrained model: where the loss curves and the probe start
        history = [{"step": 0, **evaluate(model, recipe, val, val_tokens, device),
                    "probe_acc": linear_probe(model.encoder, probe_train, probe_val, device)}]
    model.train()
    tick, jets_since = time.perf_counter(), 0
    while step < opt["steps"]:
        index = plan(step)
        gen = step_generator(opt["seed"], step)
        noise = gen if device.type == "cpu" else step_generator(opt["seed"], step, device)
        part = train.subset(index)
        masked = sample_mask(part.mask, mask_fraction(recipe, gen), gen)
        with autocast(device):
            result = model(part.features.to(device), part.pid.to(device), part.mask.to(device),
                           masked.to(device), _batch_tokens(train_tokens, index, part.mask.shape[1], device),
                           noise)
        optimiser.zero_grad(set_to_none=True)
        result["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), opt["grad_clip"])
        optimiser.step()
        schedule.step()
        step += 1
        jets_since += len(index)

        last = step == opt["steps"]
        if step % 10 == 0 or last:
            elapsed = time.perf_counter() - tick
            row = {"step": step, "lr": schedule.get_last_lr()[0], "grad_norm": float(grad_norm),
                   **{k: float(v.detach()) for k, v in result.items()},
                   "jets_per_s": jets_since / max(elapsed, 1e-9)}
            if step % opt["eval_every"] == 0 or last:
                row |= evaluate(model, recipe, val, val_tokens, device)
            if step % opt["probe_every"] == 0 or last:
                row["probe_acc"] = linear_probe(model.encoder, probe_train, probe_val, device)
            history.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", jets_s=f"{row['jets_per_s']:.0f}")
            tick, jets_since = time.perf_counter(), 0
        bar.update(1)
        if step % opt["checkpoint_every"] == 0 and not last:
            with atomic_output(resume) as tmp:
                torch.save({"signature": signature, "model": model.state_dict(),
                            "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                            "history": history, "step": step}, tmp)
        if on_step is not None:
            on_step(step)
    bar.close()

    final = {k: v for k, v in history[-1].items() if k.startswith(("loss", "acc", "val_", "probe"))}
    checkpoint = {
        "kind": CHECKPOINT_KIND,
        "method": recipe["method"],
        "tasks": recipe["tasks"],
        "sample": recipe["sample"],
        "encoder_config": model.encoder.config,
        "encoder_state": model.encoder.state_dict(),
        # decoder and heads too: the reconstruction (and ssfm generation) stays usable
        "model_state": model.state_dict(),
        "n_tokens": n_tokens,
        "feature_version": FEATURE_VERSION,
        "max_constituents": width,
        "final_metrics": final,
        "provenance": provenance("pretrain", params),
    }
    with atomic_output(out) as tmp:
        torch.save(checkpoint, tmp)
    write_metrics(history, metrics_out)
    from jetfm.report.pretraining import plot_pretraining

    plot_pretraining(history, Path(metrics_out).with_suffix(".png"), title=params["name"])
    resume.unlink(missing_ok=True)
    return final


def write_metrics(history: list[dict[str, float]], path: str | Path) -> None:
    fields = sorted({k for row in history for k in row}, key=lambda k: (k != "step", k))
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """The metrics CSV as columns (NaN where a row has no value)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {k: np.array([float(r[k]) if r[k] else np.nan for r in rows]) for k in (rows[0] if rows else {})}


def load_backbone(path: str | Path, map_location: str | torch.device = "cpu") -> JetEncoder:
    """The pre-trained encoder of a backbone checkpoint."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"backbone checkpoint not found: {path}")
    blob = torch.load(path, map_location=map_location, weights_only=False)
    if blob.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{path}: not a jetfm backbone checkpoint")
    if blob.get("feature_version") != FEATURE_VERSION:
        raise ValueError(f"{path}: trained on feature version {blob.get('feature_version')}, "
                         f"this jetfm uses {FEATURE_VERSION}; re-run pretrain")
    encoder = JetEncoder.from_config(blob["encoder_config"])
    encoder.load_state_dict(blob["encoder_state"])
    return encoder
