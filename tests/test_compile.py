"""torch.compile of the transformer stacks (config key ``compile``): the compiled model computes
what the eager one computes, keeps its parameter names, and pre-trains to the same weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from jetfm.config import stage_params, validate_config
from jetfm.contract import CONTINUOUS_FEATURES, N_PID_CLASSES
from jetfm.downstream.run import run_benchmark
from jetfm.models import JetEncoder, Transformer
from jetfm.models.checkpoint import read_backbone_checkpoint
from jetfm.pretrain import pretrain_backbone
from jetfm.training import compile_transformers

ENCODER = {"dim": 16, "layers": 1, "heads": 2, "registers": 2}


def _batch(n_jets: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, length + 1, (n_jets,), generator=gen)
    counts[0] = length
    mask = torch.arange(length)[None, :] < counts[:, None]
    features = torch.randn(n_jets, length, len(CONTINUOUS_FEATURES), generator=gen) * mask[..., None]
    pid = torch.randint(0, N_PID_CLASSES, (n_jets, length), generator=gen) * mask
    return features, pid, mask


def test_compiled_stack_matches_eager_on_batches_of_changing_shape() -> None:
    torch.manual_seed(0)
    eager = JetEncoder(**ENCODER)
    compiled = JetEncoder(**ENCODER)
    compiled.load_state_dict(eager.state_dict())
    assert compile_transformers(compiled) == 1
    torch._dynamo.reset()  # no graph cached by another test
    counters.clear()
    assert compiled.state_dict().keys() == eager.state_dict().keys()  # checkpoints stay eager-readable
    for seed, (n_jets, length) in enumerate([(8, 5), (6, 11), (9, 3)]):  # new shapes: no recompile needed
        batch = _batch(n_jets, length, seed)
        outputs = []
        for model in (eager, compiled):
            model.zero_grad()
            tokens, registers = model(*batch)
            (tokens[batch[2]].square().mean() + registers.square().mean()).backward()
            outputs.append((tokens, registers, {k: p.grad.clone() for k, p in model.named_parameters()}))
        (t0, r0, g0), (t1, r1, g1) = outputs
        mask = batch[2]
        torch.testing.assert_close(t1[mask], t0[mask], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(r1, r0, rtol=1e-4, atol=1e-5)
        for name, grad in g0.items():
            torch.testing.assert_close(g1[name], grad, rtol=1e-3, atol=1e-6, msg=name)
    # one graph with symbolic batch and length served all three shapes
    assert counters["stats"]["unique_graphs"] == 1


def _config(compile_: bool) -> dict:
    return validate_config({
        "device": "cpu",
        "compile": compile_,
        "backbones": {"mpm-reg": {"tasks": ["reg", "id"], "encoder": ENCODER,
                                  "decoder": {"dim": 8, "layers": 1, "heads": 1}}},
        "downstream": {"btag_ood_accuracy": {"backbones": ["mpm-reg"], "steps": 6, "batch_size": 16,
                                             "eval_every": 3, "head_heads": 2, "head_ff_mult": 1.0}},
        "pretrain": {"steps": 3, "batch_size": 16, "warmup_steps": 1, "eval_every": 3, "probe_every": 3,
                     "probe_jets": 50, "checkpoint_every": 3, "log_every": 1, "threads": 1},
    })


def test_compile_is_recorded_only_when_on() -> None:
    assert "compile" not in stage_params(_config(False), "pretrain", backbone="mpm-reg")
    assert stage_params(_config(True), "pretrain", backbone="mpm-reg")["compile"] is True


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Transformer]:
    """Every transformer stack compiled while the test runs."""
    compiled: list[Transformer] = []
    original = Transformer.compile

    def spy(self: Transformer, *args: Any, **kwargs: Any) -> None:
        compiled.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Transformer, "compile", spy)
    return compiled


def test_compiled_pretraining_reaches_the_eager_weights(tmp_path: Path, jet_files: dict[str, Path],
                                                        calls: list[Transformer]) -> None:
    states, losses = [], []
    for compile_ in (False, True):
        out = tmp_path / f"compile-{compile_}.pt"
        params = stage_params(_config(compile_), "pretrain", backbone="mpm-reg")
        calls.clear()
        final = pretrain_backbone(jet_files["train"], jet_files["val"], {}, params, out,
                                  out.with_suffix(".csv"), progress=False)
        states.append(read_backbone_checkpoint(out)["model_state"])
        losses.append(final["loss"])
        assert len(calls) == (2 if compile_ else 0)  # the encoder's and the decoder's stacks
    assert abs(losses[1] - losses[0]) <= 1e-4 * abs(losses[0])
    assert states[1].keys() == states[0].keys()
    for name, value in states[0].items():
        torch.testing.assert_close(states[1][name], value, rtol=1e-3, atol=1e-5, msg=name)


def test_compiled_downstream_run_follows_the_eager_learning_curve(tmp_path: Path, jet_files: dict[str, Path],
                                                                   calls: list[Transformer]) -> None:
    rows = []
    for compile_ in (False, True):
        params = stage_params(_config(compile_), "downstream", benchmark="btag_ood_accuracy",
                              backbone="mpm-reg", mode="scratch", point="all", seed="0")
        calls.clear()
        result = run_benchmark(params, jet_files["train"], jet_files["val"], jet_files["test"], None,
                               tmp_path / f"run-{compile_}.json", progress=False)
        assert bool(calls) == compile_
        rows.append(result["rows"][0])
    curves = [[point["val_loss"] for point in row["learning_curve"]] for row in rows]
    assert len(curves[0]) >= 2
    np.testing.assert_allclose(curves[1], curves[0], rtol=1e-4)
    assert rows[1]["best_step"] == rows[0]["best_step"]
