"""The pre-training loop: AdamW, warm-up + exponential decay, clipping, validation losses,
a linear probe, metrics CSV and plot, and resumable checkpoints.

One loop for every method: masked particle modelling (MPMv1, MPMv2) and OmniJet-α
generative pre-training (``gpt``); :func:`batch_losses` is where they differ.
"""

from __future__ import annotations

import csv
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from jetfm.config import config_hash
from jetfm.data.features import FEATURE_VERSION, PaddedJets, pad_jets
from jetfm.data.stream import JetStream, StreamPosition, stream_batches
from jetfm.distributed import (
    World,
    gather_objects,
    loss_weight,
    per_rank_batch,
    process_group,
    sum_over_ranks,
    world_from_environment,
    wrap,
)
from jetfm.jets.jet_sets import read_jet_set
from jetfm.jets.parquet_io import JetFileError
from jetfm.models import JetEncoder
from jetfm.models.checkpoint import CHECKPOINT_KIND, token_encoder, write_backbone_checkpoint
from jetfm.models.next_token import NextTokenModel, scored_positions
from jetfm.pretrain.masking import MaskLayout, sample_mask
from jetfm.pretrain.mpm import MaskedParticleModel
from jetfm.pretrain.mpm_v1 import MaskedParticleModelV1
from jetfm.pretrain.probe import linear_probe
from jetfm.provenance import atomic_output, provenance
from jetfm.tokenize import Tokenizer, VQVAETokenizer, check_made_by, load_tokenizer
from jetfm.training import (
    BatchPlan,
    autocast,
    compile_transformers,
    resolve_device,
    set_threads,
    step_generator,
    to_device,
    warmup_exponential,
)

EVAL_SEED = 12345  # the same masks at every evaluation


PretrainModel = MaskedParticleModel | MaskedParticleModelV1 | NextTokenModel


def build_model(recipe: Mapping[str, Any], max_constituents: int, n_tokens: Mapping[str, int],
                tokenizers: Mapping[str, Tokenizer] | None = None) -> PretrainModel:
    if recipe["method"] == "gpt":
        tokenizer = (tokenizers or {}).get("gpt")
        if not isinstance(tokenizer, VQVAETokenizer):
            raise ValueError("the gpt task needs its VQ-VAE tokenizer")
        return NextTokenModel(token_encoder(recipe, tokenizer), recipe.get("class_dropout", 0.0))
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
                 datasets: list[PaddedJets]
                 ) -> tuple[dict[str, Tokenizer], list[dict[str, torch.Tensor]]]:
    """The tokenizer of every token task, and its tokens [J, N] of each dataset."""
    needed = set(params["tokenizers"])
    missing = needed - set(tokenizer_files)
    if missing:
        raise ValueError(f"backbone '{params['name']}': tasks {sorted(missing)} need tokenizer files "
                         "(--tokenizer TASK=PATH)")
    tokenizers: dict[str, Tokenizer] = {}
    tokens: list[dict[str, torch.Tensor]] = [{} for _ in datasets]
    for task in sorted(needed):
        tokenizer = load_tokenizer(tokenizer_files[task])
        check_made_by(tokenizer, params["tokenizers"][task], tokenizer_files[task],
                      f"backbone '{params['name']}'")
        tokenizers[task] = tokenizer
        for out, data in zip(tokens, datasets, strict=True):
            out[task] = tokenizer.tokens(data)
    return tokenizers, tokens


def _batch_tokens(tokens: Mapping[str, torch.Tensor], index: torch.Tensor | slice, width: int
                  ) -> dict[str, torch.Tensor]:
    return {task: t[index][:, :width] for task, t in tokens.items()}


def draw_mask(recipe: Mapping[str, Any], mask: torch.Tensor, generator: torch.Generator,
              evaluation: bool = False) -> torch.Tensor | None:
    """The constituents an MPM batch masks (None for gpt): the mask fraction (the fixed midpoint
    when ``evaluation``) and the mask, both drawn from ``generator`` (CPU)."""
    if recipe["method"] == "gpt":
        return None
    return sample_mask(mask, mask_fraction(recipe, None if evaluation else generator), generator)


def loss_count(recipe: Mapping[str, Any], mask: torch.Tensor, masked: torch.Tensor | None) -> int:
    """How many terms a batch's loss averages: masked constituents (MPM), or predicted tokens
    (gpt: every code and the first <stop>). Ranks weight their losses by it, so that several
    ranks average exactly what one process would over the whole global batch."""
    if recipe["method"] == "gpt" or masked is None:
        return int(mask.sum()) + mask.shape[0]
    return int(masked.sum())


def batch_losses(model: nn.Module, recipe: Mapping[str, Any], part: PaddedJets,
                 tokens: Mapping[str, torch.Tensor], generator: torch.Generator, noise: torch.Generator,
                 device: torch.device, evaluation: bool = False, masked: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
    """Losses of one batch: masked reconstruction (MPM) or next-token prediction (gpt).

    ``part`` (the jets), ``tokens`` (their token targets) and ``masked`` (the batch's mask, else
    drawn here from ``generator`` with :func:`draw_mask`) on the host: the shapes that depend on
    the masks are worked out here, and everything then goes to ``device`` at once, so that a GPU
    step never waits for the device to report a size. ``noise`` draws the generative heads'
    noise and the gpt class-token dropout.
    """
    if recipe["method"] == "gpt":
        encoder = getattr(model, "module", model).encoder  # DDP keeps the model as .module
        if encoder.n_classes:
            encoder.check_labels(part.label)
        scored = to_device(scored_positions(part.mask), device)
        part, tokens = to_device(part, device), to_device(dict(tokens), device)
        with autocast(device):
            return model(part.mask, tokens["gpt"], part.label, noise, scored=scored)
    if masked is None:
        masked = draw_mask(recipe, part.mask, generator, evaluation)
        assert masked is not None
    layout = to_device(MaskLayout.of(part.mask, masked), device)
    part, tokens, masked = to_device(part, device), to_device(dict(tokens), device), to_device(masked, device)
    with autocast(device):
        return model(part.features, part.pid, part.mask, masked, tokens, noise, layout=layout)


@torch.no_grad()
def evaluate(model: nn.Module, recipe: Mapping[str, Any], data: PaddedJets,
             tokens: Mapping[str, torch.Tensor], device: torch.device, batch_size: int = 1024,
             world: World | None = None) -> dict[str, float]:
    """Validation losses with fixed masks and noise (comparable from one evaluation to the next).
    Several ranks share the batches and sum their results: the same numbers as one process."""
    world = world or World()
    was_training = model.training
    model.eval()
    starts = list(range(0, len(data), batch_size))
    mine = [i for i in range(len(starts)) if i % world.size == world.rank]
    sums: dict[str, float] = {}
    count = 0
    # a rank without a batch of its own evaluates the first with weight 0: every rank must know
    # the losses' names to take part in the sum
    for i, weight in [(i, 1) for i in mine] or [(0, 0)]:
        index = slice(starts[i], starts[i] + batch_size)
        part = data.subset(index)
        out = batch_losses(model, recipe, part, _batch_tokens(tokens, index, part.mask.shape[1]),
                           step_generator(EVAL_SEED, i), step_generator(EVAL_SEED, i, device), device,
                           evaluation=True)
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(part) * weight
        count += len(part) * weight
    model.train(was_training)
    keys = sorted(sums)
    total = sum_over_ranks([*(sums[k] for k in keys), count], world, device)
    return {f"val_{k}": float(v) / float(total[-1]) for k, v in zip(keys, total[:-1], strict=True)}


def _subset_for_probe(data: PaddedJets, n: int, seed: int) -> PaddedJets:
    gen = torch.Generator().manual_seed(seed)
    return data.subset(torch.randperm(len(data), generator=gen)[: min(n, len(data))])


def pretrain_backbone(train_file: str | Path, val_file: str | Path,
                      tokenizer_files: Mapping[str, str | Path], params: dict[str, Any],
                      out: str | Path, metrics_out: str | Path, threads: int = 1, progress: bool = True,
                      on_step: Callable[[int], None] | None = None, world: World | None = None
                      ) -> dict[str, float]:
    """Pre-train one backbone; ``params`` is ``stage_params(cfg, 'pretrain', backbone=...)``.

    Writes the checkpoint ``out`` and the per-step metrics CSV ``metrics_out`` (`jetfm pretrain`
    draws it beside, same name, .png: :func:`jetfm.report.pretraining.plot_metrics_file`).
    While training, ``<out>.resume`` holds the latest resumable state:
    a killed job started again continues from it, and because batches, masks and noise are
    pure functions of (seed, step) the result is the same as an uninterrupted run's. It is
    removed on success. ``on_step(step)`` is called after every optimiser step.

    Started by a launcher with several ranks (``world``, by default read from torchrun's
    environment), every rank trains on its share of each global batch of
    ``pretrain.batch_size`` jets under DDP, and rank 0 writes the outputs. With the in-memory
    loader the ranks split the very batches and masks one process would draw, and weight their
    losses by their share of its terms: N ranks train the model one process trains, up to
    floating-point summation order (tasks that draw noise, cnf, cfm and ssfm, draw it per rank).
    """
    world = world_from_environment() if world is None else world
    with process_group(world, resolve_device(params["device"])) as device:
        return _pretrain(train_file, val_file, tokenizer_files, params, out, metrics_out, threads,
                         progress and world.main, on_step, world, device)


def _pretrain(train_file: str | Path, val_file: str | Path, tokenizer_files: Mapping[str, str | Path],
              params: dict[str, Any], out: str | Path, metrics_out: str | Path, threads: int, progress: bool,
              on_step: Callable[[int], None] | None, world: World, device: torch.device) -> dict[str, float]:
    recipe, opt = params["backbone"], params["pretrain"]
    set_threads(threads)
    torch.manual_seed(opt["seed"])
    rank_batch = per_rank_batch(opt["batch_size"], world, "pretrain.batch_size")

    sample, loader = recipe.get("sample"), opt.get("loader", "memory")
    val = pad_jets(read_jet_set(val_file, sample, max_jets=opt.get("val_jets")))
    if loader == "memory":
        train = pad_jets(read_jet_set(train_file, sample))
        width = max(train.mask.shape[1], val.mask.shape[1])
        tokenizers, (train_tokens, val_tokens) = _load_tokens(tokenizer_files, params, [train, val])
        probe_source = train
    else:
        tokenizers, (val_tokens,) = _load_tokens(tokenizer_files, params, [val])
        stream = _train_stream(train_file, sample, opt, tokenizers, rank_batch, world)
        width = max(stream.max_length, val.mask.shape[1])
        probe_source = stream.sample(opt["probe_jets"], opt["seed"])
    n_tokens = {task: tok.n_tokens for task, tok in tokenizers.items()}

    model = build_model(recipe, width, n_tokens, tokenizers).to(device)
    if params.get("compile"):
        compile_transformers(model)
    optimiser = torch.optim.AdamW(model.parameters(), lr=opt["lr"], weight_decay=opt["weight_decay"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: warmup_exponential(s, opt["warmup_steps"], opt["half_life_steps"]))
    history: list[dict[str, float]] = []
    step = 0

    resume = Path(f"{out}.resume")
    # a streamed run's batches depend on how the shards are shared between ranks: its resume
    # state fits only the same number of ranks; the in-memory loader's fits any number
    signature = config_hash(params | {"ranks": world.size}
                            if loader == "stream" and world.distributed else params)
    position = StreamPosition()
    state = _read_resume(resume, device, move_aside=world.main)
    if state is not None:
        if state.get("signature") == signature:
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            schedule.load_state_dict(state["schedule"])
            history, step = state["history"], state["step"]
            positions = state.get("streams", [state.get("stream", {})])
            position = StreamPosition(**positions[world.rank])
    trained = wrap(model, world, device)

    if loader == "memory":
        plan = BatchPlan(len(train), opt["batch_size"], opt["seed"], lengths=train.lengths)

        def next_batch(step: int) -> tuple[PaddedJets, dict[str, torch.Tensor]]:
            index = plan(step)  # the global batch: each rank keeps every world.size-th jet of it
            part = train.subset(index)
            return part, {task: t[index][:, :part.mask.shape[1]] for task, t in train_tokens.items()}
    else:
        batches = stream_batches(stream, position, opt["loader_workers"], pin_memory=device.type == "cuda")

        def next_batch(step: int) -> tuple[PaddedJets, dict[str, torch.Tensor]]:
            part = next(batches)
            return part, dict(part.tokens or {})

    probe_train = _subset_for_probe(probe_source, opt["probe_jets"], opt["seed"])
    probe_val = _subset_for_probe(val, opt["probe_jets"], opt["seed"] + 1)
    bar = tqdm(total=opt["steps"], initial=step, desc=f"pretrain {params['name']}", unit="step",
               disable=not progress, mininterval=2.0)
    if step == 0:  # the untrained model: where the loss curves and the probe start
        history = [{"step": 0, **evaluate(model, recipe, val, val_tokens, device, world=world)}]
        if world.main:
            history[0]["probe_acc"] = linear_probe(model.encoder, probe_train, probe_val, device)
    model.train()
    tick, jets_since = time.perf_counter(), 0
    while step < opt["steps"]:
        part, batch_tokens = next_batch(step)
        gen, noise = _step_generators(opt["seed"], step, world, loader, device)
        masked = draw_mask(recipe, part.mask, gen)
        total_count = loss_count(recipe, part.mask, masked)
        if loader == "memory" and world.distributed:
            part = part.subset(world.share)
            n = part.mask.shape[1]
            batch_tokens = {task: t[world.share][:, :n] for task, t in batch_tokens.items()}
            masked = None if masked is None else masked[world.share][:, :n]
        count = loss_count(recipe, part.mask, masked)
        if loader != "memory" and world.distributed:  # ranks' batches differ: add their counts up
            total_count = int(sum_over_ranks([count], world, device)[0])
        result = batch_losses(trained, recipe, part, batch_tokens, gen, noise, device, masked=masked)
        optimiser.zero_grad(set_to_none=True)
        (result["loss"] * loss_weight(count, total_count, world)).backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), opt["grad_clip"])
        optimiser.step()
        schedule.step()
        step += 1
        jets_since += len(part)

        last = step == opt["steps"]
        if step % opt["log_every"] == 0 or last:
            values = {k: float(v.detach()) for k, v in result.items()}
            jets = jets_since
            if world.distributed:  # the global batch's means, as one process would log them
                keys = sorted(values)
                summed = sum_over_ranks([*(values[k] * count for k in keys), jets_since], world, device)
                values = {k: float(v) / max(total_count, 1) for k, v in zip(keys, summed, strict=False)}
                jets = int(summed[-1])
            elapsed = time.perf_counter() - tick
            row = {"step": step, "lr": schedule.get_last_lr()[0], "grad_norm": float(grad_norm), **values,
                   "jets_per_s": jets / max(elapsed, 1e-9)}
            if step % opt["eval_every"] == 0 or last:
                row |= evaluate(model, recipe, val, val_tokens, device, world=world)
            if world.main and (step % opt["probe_every"] == 0 or last):
                row["probe_acc"] = linear_probe(model.encoder, probe_train, probe_val, device)
            history.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", jets_s=f"{row['jets_per_s']:.0f}")
            tick, jets_since = time.perf_counter(), 0
        bar.update(1)
        if step % opt["checkpoint_every"] == 0 and not last:
            positions = gather_objects(position.state_dict(), world)
            if world.main:
                with atomic_output(resume) as tmp:
                    torch.save({"signature": signature, "model": model.state_dict(),
                                "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                                "history": history, "step": step, "stream": positions[0],
                                "streams": positions}, tmp)
        if on_step is not None:
            on_step(step)
    bar.close()

    final = {k: v for k, v in history[-1].items() if k.startswith(("loss", "acc", "val_", "probe"))}
    if not world.main:
        return final
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
        "ranks": world.size,
        "provenance": provenance("pretrain", params),
    }
    write_backbone_checkpoint(checkpoint, out)
    write_metrics(history, metrics_out)
    resume.unlink(missing_ok=True)
    return final


def _step_generators(seed: int, step: int, world: World, loader: str, device: torch.device
                     ) -> tuple[torch.Generator, torch.Generator]:
    """The random streams of a training step: masks (CPU) and noise (on ``device``). One process
    uses one stream for both on the CPU. Ranks of an in-memory run draw the global batch's masks
    together (the same stream); streamed ranks, whose batches differ, and the noise of every
    rank get streams of their own."""
    gen = step_generator(seed, step)
    if not world.distributed:
        return gen, gen if device.type == "cpu" else step_generator(seed, step, device)
    if loader != "memory":
        gen = step_generator(seed, step, stream=100 + world.rank)
    return gen, step_generator(seed, step, device, stream=200 + world.rank)


def _train_stream(train_file: str | Path, sample: str | None, opt: Mapping[str, Any],
                  tokenizers: Mapping[str, Tokenizer], batch_size: int, world: World) -> JetStream:
    """The streamed training jets of loader ``stream`` (tokenized per pool), this rank's share of
    the shards: a split's manifest is required."""
    if Path(train_file).suffix != ".json":
        raise ValueError(f"{train_file}: pretrain.loader 'stream' reads a split's manifest "
                         "(data/jets/SAMPLE/train.json), not a single file")
    stream = JetStream(train_file, batch_size, opt["seed"], pool_jets=opt["pool_jets"],
                       tokenizers=tokenizers, rank=world.rank, world_size=world.size)
    if sample is not None and stream.sample_name != sample:
        raise JetFileError(f"{train_file}: jets made for sample '{stream.sample_name}', not '{sample}'")
    stream.require_partitions(opt["loader_workers"])
    return stream


def _read_resume(resume: Path, device: torch.device, move_aside: bool = True) -> dict[str, Any] | None:
    """The resumable state, or None. A file that cannot be read (truncated by a full disk, say)
    is moved aside to ``<name>.corrupt`` (by rank 0 alone: ``move_aside``) and training restarts
    from step 0, with a warning."""
    if not resume.exists():
        return None
    try:
        state = torch.load(resume, map_location=device, weights_only=False)
        if not isinstance(state, dict) or "step" not in state:
            raise ValueError("not a jetfm resume state")
    except Exception as exc:
        aside = resume.with_name(resume.name + ".corrupt")
        if not move_aside:
            return None
        resume.replace(aside)
        warnings.warn(f"{resume}: unreadable resume state ({exc}); moved to {aside.name}, "
                      "training restarts from step 0", stacklevel=2)
        return None
    return state


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
