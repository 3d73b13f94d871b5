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

Every learning rate follows a cosine decay to zero over ``steps``, which is a maximum: every
``eval_every`` steps the loss on the validation jets is measured, training stops once it has
not improved for ``patience`` evaluations (never before a fine-tuned encoder has finished its
warm-up), and the test set is scored with the weights of the best validation loss. The run
file keeps the learning curve, the best and the last step.

Reference models (``references`` in the config; ParT from weaver-core) are trained from
scratch with the same jets, splits, seeds and protocol: in mode ``scratch``, and for CWoLa
also ``supervised`` (the true labels).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from jetfm.contract import BENCHMARK_SAMPLES, BOOSTED_LABEL_NAMES, BTAG_LABEL_NAMES, MODES, ORIGIN_NAMES
from jetfm.data.features import PaddedJets, pad_jets
from jetfm.data.stream import JetStream, StreamPosition, stream_batches
from jetfm.distributed import (
    World,
    loss_weight,
    per_rank_batch,
    process_group,
    sum_over_ranks,
    world_from_environment,
    wrap,
)
from jetfm.downstream.cwola import cwola_training_set, labelled_test_set, supervised_training_set
from jetfm.downstream.heads import LinearJetHead
from jetfm.downstream.tasks import JetClassification, TrackOrigin, VertexFinding
from jetfm.jets.jet_sets import read_jet_set
from jetfm.jets.parquet_io import JetFileError
from jetfm.models import JetEncoder
from jetfm.models.checkpoint import checkpoint_record, load_backbone, token_encoder
from jetfm.models.part import ParTBackbone
from jetfm.models.token_encoder import Backbone
from jetfm.provenance import provenance
from jetfm.results import write_result
from jetfm.tokenize import VQVAETokenizer, check_made_by
from jetfm.training import (
    BatchPlan,
    autocast,
    compile_transformers,
    resolve_device,
    set_threads,
    to_device,
)

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


def select_jets(params: dict[str, Any], train: PaddedJets | JetStream, val: PaddedJets, test: PaddedJets
                ) -> tuple[PaddedJets | JetStream, PaddedJets, PaddedJets]:
    """The training jets of this run (sweep point, CWoLa mixing), its validation jets (mixed
    like the training jets, at most ``val_jets``) and the labelled test jets. Streamed training
    jets (the `all` point) are taken as they come."""
    point, seed, s = params["point"], params["seed"], params["settings"]
    if isinstance(train, JetStream):
        return train, _capped(val, s["val_jets"]), test
    if params["benchmark"] == "cwola_sic":
        bkg, sig = BOOSTED_LABEL_NAMES.index(s["background"]), BOOSTED_LABEL_NAMES.index(s["signal"])
        labels = train.label.numpy()
        if params["mode"] == "supervised":
            index, target = supervised_training_set(labels, bkg, sig)
            v_index, v_target = supervised_training_set(val.label.numpy(), bkg, sig)
        else:
            n_signal = point["n_signal"]
            index, target = cwola_training_set(labels, bkg, sig, n_signal, seed)
            # the same signal fraction in the validation halves: selection sees weak labels only
            v_labels = val.label.numpy()
            ratio = (v_labels == bkg).sum() / max(int((labels == bkg).sum()), 1)
            v_signal = min(round(n_signal * ratio), int((v_labels == sig).sum()))
            v_index, v_target = cwola_training_set(v_labels, bkg, sig, v_signal, seed)
        train = _relabelled(train, index, target)
        val = _relabelled(val, v_index, v_target)
        t_index, t_target = labelled_test_set(test.label.numpy(), bkg, sig)
        return train, _capped(val, s["val_jets"]), _relabelled(test, t_index, t_target)
    n_train = point["n_train"]
    if n_train is not None:
        if n_train > len(train):
            raise ValueError(f"{params['benchmark']}: train_sizes asks for {n_train} jets, "
                             f"the training set has {len(train)}")
        gen = torch.Generator().manual_seed(seed)
        train = train.subset(torch.randperm(len(train), generator=gen)[:n_train])
    return train, _capped(val, s["val_jets"]), test


def _relabelled(data: PaddedJets, index: np.ndarray, target: np.ndarray) -> PaddedJets:
    return dataclasses.replace(data.subset(torch.from_numpy(index)), label=torch.from_numpy(target))


def _capped(val: PaddedJets, limit: int | None) -> PaddedJets:
    """At most ``limit`` validation jets, the same ones for every run of a benchmark."""
    if len(val) == 0:
        raise ValueError("the validation split has no jets (samples.<sample>.jets.split.val)")
    if limit is None or len(val) <= limit:
        return val
    return val.subset(torch.randperm(len(val), generator=torch.Generator().manual_seed(0))[:limit])


def make_encoder(params: dict[str, Any], checkpoint: str | Path | None,
                 tokenizer: str | Path | None = None) -> Backbone | ParTBackbone:
    """The run's backbone: pre-trained from ``checkpoint``, or randomly initialised (scratch and
    reference models; a gpt backbone then reads its trained, frozen ``tokenizer``)."""
    if "reference" in params:
        return ParTBackbone.from_config(params["reference"])
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
    expected = params["encoder"] if "encoder" in params else params["architecture"]["encoder"]
    return load_backbone(checkpoint, expected=expected, name=params["backbone_name"])


def make_head(task: Any, encoder: nn.Module, params: dict[str, Any]) -> nn.Module:
    """The task's head; a reference model brings its own classifier (ParT: one linear layer)."""
    if "reference" in params:
        if not isinstance(task, JetClassification):
            raise ValueError(f"reference model '{params['backbone_name']}' classifies jets; "
                             f"benchmark {params['benchmark']} is not a jet classification")
        return LinearJetHead(encoder.dim, len(task.class_names))
    return task.head(encoder.dim)


def schedule_mode(params: dict[str, Any]) -> str:
    """The learning-rate schedule of a run: reference models always train like scratch."""
    return "scratch" if "reference" in params else params["mode"]


def encode(encoder: nn.Module, part: PaddedJets, device: torch.device
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """The backbone's outputs for a batch; models that read the jets' kinematics get them."""
    needs_jet = getattr(encoder, "needs_jet", False) and part.jet is not None
    extra = {"jet": part.jet.to(device)} if needs_jet else {}
    return encoder(part.features.to(device), part.pid.to(device), part.mask.to(device), **extra)


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
            t, r = encode(encoder, part, device)
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
            tokens, registers = encode(encoder, part, device)
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


@dataclasses.dataclass
class Training:
    """What a downstream training run did: the selected head, its curve and where it stopped."""

    head: nn.Module
    curve: list[dict[str, float]]
    best_step: int
    stopped_step: int
    stop_reason: str  # "patience", "max_steps" or "max_seconds"
    best_val_loss: float
    last_train_loss: float
    # where the wall time went besides the training steps: evaluations of the validation loss,
    # and a frozen encoder's outputs computed once for the whole training and validation sets
    validation_seconds: float = 0.0
    cache_seconds: float = 0.0


@dataclasses.dataclass
class EarlyStopping:
    """The stop rule of every downstream run: stop after ``patience`` evaluations without a lower
    validation loss, counted only after ``min_steps`` (a fine-tuned encoder's frozen and warm-up
    steps); the weights of the lowest loss are the run's."""

    patience: int
    min_steps: int = 0
    best_loss: float = math.inf
    best_step: int = 0
    bad: int = 0

    def update(self, step: int, loss: float) -> tuple[bool, bool]:
        """Record the evaluation at ``step``: (is it the best so far, must training stop)."""
        if loss < self.best_loss:
            self.best_loss, self.best_step, self.bad = loss, step, 0
            return True, False
        if step > self.min_steps:
            self.bad += 1
        return False, self.bad >= self.patience


def patience_start(params: dict[str, Any]) -> int:
    """The step after which evaluations without a lower validation loss count towards the
    patience: a fine-tuned encoder's frozen steps and as many of warm-up, else 0."""
    frozen = params["settings"]["frozen_steps"]
    return 2 * frozen if schedule_mode(params) in ("finetune", "supervised") else 0


def replay_stopping(curve: Sequence[dict[str, float]], patience: int, min_steps: int = 0) -> tuple[int, int]:
    """(selected step, last step) of a recorded run had it stopped with ``patience``. The curve up
    to a stop does not depend on the patience (the schedule's length is ``steps``), so the
    same selected step means the same weights and the same test score."""
    stopper = EarlyStopping(patience, min_steps)
    for point in curve:
        if stopper.update(int(point["step"]), float(point["val_loss"]))[1]:
            return stopper.best_step, int(point["step"])
    return stopper.best_step, int(curve[-1]["step"])


def backbone_outputs(encoder: nn.Module, part: PaddedJets, index: torch.Tensor | None, device: torch.device,
                     cache: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens and registers of the batch ``part`` (rows ``index`` of its set): from the frozen
    encoder's cached outputs when there are any, else from a forward pass."""
    if cache is None or index is None:
        return encode(encoder, part, device)
    return cache[0][index, :part.mask.shape[1]].to(device), cache[1][index].to(device)


@torch.no_grad()
def validation_loss(task: Any, encoder: nn.Module, head: nn.Module, val: PaddedJets, device: torch.device,
                    cache: tuple[torch.Tensor, torch.Tensor] | None = None, batch: int = 512,
                    world: World | None = None) -> float:
    """Mean of the task loss over the validation jets (batches weighted by their jets). Several
    ranks share the batches and add up their sums: the same number as one process."""
    world = world or World()
    encoder.eval()
    head.eval()
    total = 0.0
    for i, index in enumerate(_length_ordered_batches(val, batch)):
        if i % world.size != world.rank:
            continue
        part = val.subset(index)
        with autocast(device):
            tokens, registers = backbone_outputs(encoder, part, index, device, cache)
            out = head(tokens, registers, part.mask.to(device))
        total += float(task.loss(out, part)) * len(index)
    return float(sum_over_ranks([total], world, device)[0]) / len(val)


class TrainedModules(nn.Module):
    """What a run trains, as one module (DDP wraps it): the head, and the encoder unless it is
    frozen for the whole run; forward computes the head's output of a batch."""

    def __init__(self, encoder: nn.Module, head: nn.Module, train_encoder: bool) -> None:
        super().__init__()
        self.head = head
        self.encoder = encoder if train_encoder else None

    def forward(self, part: PaddedJets, mask: torch.Tensor, device: torch.device, train_encoder: bool,
                outputs: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``outputs``: a frozen encoder's (tokens, registers); else the encoder runs, with
        gradients when ``train_encoder``."""
        if outputs is None:
            assert self.encoder is not None
            with torch.set_grad_enabled(train_encoder and torch.is_grad_enabled()):
                outputs = encode(self.encoder, part, device)
        return self.head(*outputs, mask)


EPOCHS_PER_EVALUATION = 10


def evaluation_interval(eval_every: int, n_train: int, batch_size: int) -> int:
    """Steps between validations: ``eval_every``, but at least every ten epochs, so that a small
    training set (a data-efficiency point) is not validated only after it has long overfitted."""
    steps_per_epoch = max(1, n_train // max(1, min(batch_size, n_train)))
    return max(1, min(eval_every, EPOCHS_PER_EVALUATION * steps_per_epoch))


def _snapshot(modules: list[nn.Module]) -> list[dict[str, torch.Tensor]]:
    return [{k: v.detach().to("cpu", copy=True) for k, v in m.state_dict().items()} for m in modules]


def train_head(task: Any, encoder: nn.Module, train: PaddedJets | JetStream, val: PaddedJets,
               params: dict[str, Any], device: torch.device, progress: bool = True,
               max_seconds: float | None = None, world: World | None = None) -> Training:
    """Train the head (and the encoder, by mode) with early stopping on the validation loss;
    leaves the head and the encoder at the weights of the best validation loss.

    ``max_seconds`` (benchmarks at equal wall time) stops training after that much wall time
    (validation included), with a last evaluation at that step.

    On several ranks (``world``) every rank takes its share of each global batch of
    ``batch_size`` jets (in memory: every ``world.size``-th jet of the batch one process draws;
    streamed: its own partition of the shards) and weights its loss by its share of the batch's
    terms; validation losses are summed over the ranks, so every rank stops at the same step.
    In memory, N ranks train what one process trains, up to rounding (ParT's dropout aside)."""
    world = world or World()
    if world.distributed and max_seconds is not None:
        raise ValueError("max_seconds (equal-wall-time benchmarks) runs on one rank only")
    s, mode, seed = params["settings"], params["mode"], params["seed"]
    schedule = schedule_mode(params)
    torch.manual_seed(seed)
    head = make_head(task, encoder, params).to(device)
    if params.get("compile"):
        compile_transformers(encoder)
        compile_transformers(head)
    frozen = schedule == "fixed"
    cache = val_cache = None
    cache_seconds = validation_seconds = 0.0
    streamed = isinstance(train, JetStream)
    n_train = train.n_jets if streamed else len(train)
    if frozen and not streamed and (len(train) + len(val)) * train.mask.shape[1] * encoder.dim * 4 \
            <= CACHE_LIMIT_BYTES:
        started = time.perf_counter()
        cache, val_cache = encode_all(encoder, train, device), encode_all(encoder, val, device)
        cache_seconds = time.perf_counter() - started
    groups = [{"params": list(head.parameters())}]
    if not frozen:
        # a gpt backbone's tokenizer stays frozen in every mode
        groups.append({"params": [p for p in encoder.parameters() if p.requires_grad]})
    trained = [head] if frozen else [head, encoder]
    # a fine-tuned encoder is frozen for its first steps: DDP must expect parameters without gradients
    model = wrap(TrainedModules(encoder, head, not frozen), world, device,
                 find_unused_parameters=schedule in ("finetune", "supervised"))
    optimiser = torch.optim.AdamW(groups, lr=s["lr"], weight_decay=s["weight_decay"])
    if streamed:  # one pool in memory at a time; a frozen encoder runs on every batch
        batches = stream_batches(train, StreamPosition(), pin_memory=device.type == "cuda")
        batch_size = train.batch_size * world.size

        def next_batch(step: int) -> tuple[PaddedJets, torch.Tensor | None, int]:
            part = next(batches)
            count = task.loss_terms(part)
            total = int(sum_over_ranks([count], world, device)[0]) if world.distributed else count
            return part, None, total
    else:
        plan = BatchPlan(len(train), s["batch_size"], seed, lengths=train.lengths)
        batch_size = plan.batch_size

        def next_batch(step: int) -> tuple[PaddedJets, torch.Tensor | None, int]:
            index = plan(step)
            part = train.subset(index)
            total = task.loss_terms(part)
            if world.distributed:  # the global batch: this rank keeps every world.size-th jet
                index, part = index[world.share], part.subset(world.share)
            return part, index, total
    # a fine-tuned encoder has its full learning rate only after frozen_steps and as many of warm-up
    min_steps = patience_start(params)
    max_steps, patience = s["steps"], s["patience"]
    eval_every = evaluation_interval(s["eval_every"], n_train, batch_size)
    desc = f"{params['benchmark']} {params['backbone_name']}/{mode}/seed{seed}"
    bar = tqdm(range(max_steps), desc=desc, unit="step", disable=not (progress and world.main),
               mininterval=2.0)
    curve: list[dict[str, float]] = []
    stopper, best_state = EarlyStopping(patience, min_steps), _snapshot(trained)
    # the running training loss stays on the device until an evaluation: no host sync per step
    running = torch.zeros((), dtype=torch.float64, device=device)
    n_running, stop_reason, step = 0, "max_steps", 0
    start = time.perf_counter()
    for step in bar:
        head.train()
        part, index, total = next_batch(step)
        head_lr, encoder_lr = learning_rates(step, max_steps, schedule, s)
        for group, lr in zip(optimiser.param_groups, (head_lr, encoder_lr), strict=False):
            group["lr"] = lr
        count = task.loss_terms(part)  # on the host, before the batch goes to the device
        part = to_device(part, device)
        mask = part.mask
        with autocast(device):
            train_encoder = cache is None and encoder_lr > 0.0
            encoder.train(train_encoder)
            outputs = None
            if frozen:
                with torch.no_grad():
                    outputs = backbone_outputs(encoder, part, index, device, cache)
            out = model(part, mask, device, train_encoder, outputs)
        loss = task.loss(out, part)
        weight = loss_weight(count, total, world)
        optimiser.zero_grad(set_to_none=True)
        (loss * weight).backward()
        nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
        optimiser.step()
        # this rank's part of the global batch's mean loss
        running += loss.detach().double() * (weight / world.size)
        n_running += 1
        out_of_time = max_seconds is not None and time.perf_counter() - start > max_seconds
        if (step + 1) % eval_every and step + 1 < max_steps and not out_of_time:
            continue
        started = time.perf_counter()
        val_loss = validation_loss(task, encoder, head, val, device, val_cache, world=world)
        validation_seconds += time.perf_counter() - started
        train_loss = float(running) / n_running
        if world.distributed:
            train_loss = float(sum_over_ranks([float(running)], world, device)[0]) / n_running
        curve.append({"step": step + 1, "train_loss": train_loss, "val_loss": val_loss})
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
        running, n_running = torch.zeros((), dtype=torch.float64, device=device), 0
        improved, stop = stopper.update(step + 1, val_loss)
        if improved:
            best_state = _snapshot(trained)
        elif stop:
            stop_reason = "patience"
            break
        if out_of_time:
            stop_reason = "max_seconds"
            break
    for module, state in zip(trained, best_state, strict=True):
        module.load_state_dict(state)
    return Training(head, curve, stopper.best_step, step + 1, stop_reason, stopper.best_loss,
                    curve[-1]["train_loss"], validation_seconds, cache_seconds)


def train_and_score(params: dict[str, Any], train: PaddedJets | JetStream, val: PaddedJets, test: PaddedJets,
                    device: torch.device, checkpoint: str | Path | None = None,
                    tokenizer: str | Path | None = None, progress: bool = True,
                    max_seconds: float | None = None, world: World | None = None
                    ) -> tuple[Any, dict[str, Any]]:
    """Select the run's jets from the three splits, train with early stopping, score the test set
    with the best-validation weights; returns the task and the run's result row (on rank 0;
    the other ranks of a distributed run train with it and return an empty row)."""
    world = world or World()
    task = make_task(params["benchmark"], params["settings"])
    train, val, test = select_jets(params, train, val, test)
    torch.manual_seed(params["seed"])  # a scratch encoder's initialisation follows the run's seed
    encoder = make_encoder(params, checkpoint, tokenizer).to(device)
    start = time.perf_counter()
    fit = train_head(task, encoder, train, val, params, device, progress, max_seconds, world)
    train_seconds = time.perf_counter() - start
    if not world.main:
        return task, {}
    scores = task.score(predict(encoder, fit.head, test, device, task.output), test)
    n_train = train.n_jets if isinstance(train, JetStream) else len(train)
    row = {"backbone": params["backbone_name"], "mode": params["mode"], "seed": params["seed"],
           "n_train": n_train, "n_val": len(val), **scores, "final_train_loss": fit.last_train_loss,
           "best_val_loss": fit.best_val_loss, "best_step": fit.best_step, "stopped_step": fit.stopped_step,
           "stop_reason": fit.stop_reason, "learning_curve": fit.curve,
           "train_seconds": round(train_seconds, 1), "validation_seconds": round(fit.validation_seconds, 1),
           "cache_seconds": round(fit.cache_seconds, 1), "ranks": world.size, "architecture": encoder.config,
           "parameters": sum(p.numel() for p in [*encoder.parameters(), *fit.head.parameters()])}
    if "n_signal" in params["point"]:
        row["n_signal"] = params["point"]["n_signal"]
    return task, row


def streams(params: dict[str, Any]) -> bool:
    """Whether this run streams its training jets: loader ``stream`` at the `all` point, outside
    CWoLa (whose mixed halves and data-efficiency subsets are drawn in memory)."""
    return (params["settings"].get("loader") == "stream" and params["benchmark"] != "cwola_sic"
            and params["point"].get("n_train", 0) is None)


def _stream(params: dict[str, Any], train_file: str | Path, sample: str, batch_size: int,
            world: World) -> JetStream:
    if Path(train_file).suffix != ".json":
        raise ValueError(f"{train_file}: loader 'stream' reads a split's manifest "
                         "(data/jets/SAMPLE/train.json), not a single file")
    stream = JetStream(train_file, batch_size, params["seed"], pool_jets=params["settings"]["pool_jets"],
                       rank=world.rank, world_size=world.size)
    stream.require_partitions()
    if stream.sample_name != sample:
        raise JetFileError(f"{train_file}: jets made for sample '{stream.sample_name}', not '{sample}'")
    return stream


def run_benchmark(params: dict[str, Any], train_file: str | Path, val_file: str | Path, test_file: str | Path,
                  checkpoint: str | Path | None, out: str | Path, threads: int = 1,
                  progress: bool = True, tokenizer: str | Path | None = None, world: World | None = None
                  ) -> dict[str, Any]:
    """Train and score one (benchmark, backbone, mode, point, seed) run; write its JSON (rank 0
    of a distributed run, whose ranks a launcher describes in the environment)."""
    if params["mode"] not in MODES:
        raise ValueError(f"unknown mode '{params['mode']}' (expected one of {', '.join(MODES)})")
    world = world_from_environment() if world is None else world
    rank_batch = per_rank_batch(params["settings"]["batch_size"], world,
                                f"downstream.{params['benchmark']}.batch_size")
    set_threads(threads)
    with process_group(world, resolve_device(params["device"])) as device:
        return _run_benchmark(params, train_file, val_file, test_file, checkpoint, out, progress, tokenizer,
                              rank_batch, world, device)


def _run_benchmark(params: dict[str, Any], train_file: str | Path, val_file: str | Path,
                   test_file: str | Path, checkpoint: str | Path | None, out: str | Path, progress: bool,
                   tokenizer: str | Path | None, rank_batch: int, world: World, device: torch.device
                   ) -> dict[str, Any]:
    sample = BENCHMARK_SAMPLES[params["benchmark"]]
    val, test = (pad_jets(read_jet_set(f, sample)) for f in (val_file, test_file))
    if streams(params):
        train: PaddedJets | JetStream = _stream(params, train_file, sample, rank_batch, world)
    else:
        train = pad_jets(read_jet_set(train_file, sample))
    task, row = train_and_score(params, train, val, test, device, checkpoint, tokenizer, progress,
                                world=world)
    if not world.main:
        return {"benchmark": params["benchmark"], "rows": []}
    meta = provenance("downstream", params)
    result = {"benchmark": params["benchmark"], "metric": task.metric, "config_hash": meta["config_hash"],
              "rows": [row], "provenance": meta,
              "checkpoint": None if checkpoint is None else checkpoint_record(checkpoint)}
    write_result(result, out)
    return result
