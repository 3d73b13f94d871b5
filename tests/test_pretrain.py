"""Every pre-training method at tiny scale: the loss falls, the checkpoint reloads
bit-identically, a run killed mid-way resumes to the same result, bf16 autocast works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from jetfm.config import ConfigError, stage_params, validate_config
from jetfm.data.features import pad_jets
from jetfm.jets import read_jet_table
from jetfm.models.checkpoint import load_backbone
from jetfm.pretrain import build_model, pretrain_backbone, sample_mask
from jetfm.pretrain.train import read_metrics

ENCODER = {"dim": 32, "layers": 2, "heads": 2, "registers": 2}
DECODER = {"dim": 16, "layers": 1, "heads": 1}
SMALL_HEADS = {"cnf": {"blocks": 2, "hidden": 16}, "cfm": {"hidden": 32, "layers": 2},
               "ssfm": {"dim": 16, "layers": 1, "heads": 2}}
PART_OPTIONS = {"pair_bias": True, "relative_inputs": True}
BACKBONES = {
    "mpm-kmeans": {"tasks": ["kmeans", "id"]},
    "mpm-reg": {"tasks": ["reg", "id"]},
    "mpm-vqvae": {"tasks": ["vqvae", "id"]},
    "mpm-cnf": {"tasks": ["cnf", "id"]},
    "mpm-cfm": {"tasks": ["cfm", "id"]},
    "mpm-ssfm": {"tasks": ["ssfm"]},
    "mpm-all": {"tasks": ["id", "reg", "kmeans", "vqvae", "cnf", "cfm", "ssfm"]},
    "mpm-v1": {"method": "mpm-v1", "tasks": ["vqvae"], "mask_fraction": 0.3, "decoder": {"dim": 16}},
    # the ParT-style options of the encoder, in both masking schemes
    "mpm-pair": {"tasks": ["kmeans", "id"], "encoder": ENCODER | PART_OPTIONS},
    "mpm-v1-pair": {"method": "mpm-v1", "tasks": ["reg"], "mask_fraction": 0.3, "decoder": {"dim": 16},
                    "encoder": ENCODER | PART_OPTIONS},
}


def _config(steps: int = 80) -> dict:
    return validate_config({
        "tokenizers": {"kmeans": {"k": 16, "n_fit": 5000, "iterations": 10},
                       "vqvae": {"kind": "vqvae", "codebook_size": 16, "latent_dim": 4, "dim": 16,
                                 "layers": 1, "heads": 2, "steps": 60, "batch_size": 64,
                                 "warmup_steps": 5}},
        "backbones": {name: {"encoder": ENCODER, "decoder": DECODER, "heads": SMALL_HEADS} | spec
                      for name, spec in BACKBONES.items()},
        "pretrain": {"steps": steps, "batch_size": 64, "warmup_steps": 5, "lr": 2e-3, "threads": 1,
                     "checkpoint_every": 20, "eval_every": 20, "probe_every": 40, "probe_jets": 200},
    })


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory: pytest.TempPathFactory, jet_files: dict) -> dict[str, Path]:
    from jetfm.tokenize import fit_tokenizer

    out = tmp_path_factory.mktemp("tokenizers")
    cfg = _config()
    files = {}
    for name in ("kmeans", "vqvae"):
        files[name] = out / f"{name}.pt"
        fit_tokenizer(jet_files["train"], jet_files["val"], stage_params(cfg, "tokenize", tokenizer=name),
                      files[name], out / f"{name}.json", progress=False)
    return files


def _run(name: str, tmp_path: Path, jet_files: dict, tokenizers: dict, cfg: dict | None = None,
         **kwargs: object) -> tuple[Path, dict]:
    params = stage_params(cfg or _config(), "pretrain", backbone=name)
    out = tmp_path / f"{name}.pt"
    final = pretrain_backbone(jet_files["train"], jet_files["val"],
                              {task: tokenizers[tok] for task, tok in
                               [("kmeans", "kmeans"), ("vqvae", "vqvae")] if task in params["tokenizers"]},
                              params, out, tmp_path / f"{name}.csv", progress=False, **kwargs)
    return out, final


@pytest.mark.parametrize("name", list(BACKBONES))
def test_each_method_learns_and_reloads_identically(name: str, tmp_path: Path, jet_files: dict,
                                                    tokenizers: dict) -> None:
    out, final = _run(name, tmp_path, jet_files, tokenizers)
    metrics = read_metrics(tmp_path / f"{name}.csv")
    evaluated = ~torch.isnan(torch.from_numpy(metrics["val_loss"]))
    val = metrics["val_loss"][evaluated.numpy()]
    assert metrics["step"][0] == 0 and len(val) >= 3
    # the same validation masks and noise at every evaluation: the loss must fall clearly
    assert val[-1] < val[0] - 0.05 * abs(val[0]), val
    assert 0.0 <= final["probe_acc"] <= 1.0
    # the figure is the report layer's, drawn from the CSV (as `jetfm pretrain` does)
    from jetfm.report.pretraining import plot_metrics_file

    plot_metrics_file(tmp_path / f"{name}.csv", tmp_path / f"{name}.png", title=name)
    assert (tmp_path / f"{name}.png").stat().st_size > 0
    assert not Path(f"{out}.resume").exists()

    blob = torch.load(out, weights_only=False)
    assert blob["method"] == BACKBONES[name].get("method", "mpm-v2")
    enc = load_backbone(out).eval()
    for key, value in enc.state_dict().items():
        assert torch.equal(value, blob["encoder_state"][key])
    data = pad_jets(read_jet_table(jet_files["test"]))
    a, ra = enc(data.features, data.pid, data.mask)
    b, rb = load_backbone(out).eval()(data.features, data.pid, data.mask)
    assert torch.equal(a, b) and torch.equal(ra, rb)
    # the whole pre-training model (decoder, heads) reloads too
    model = build_model(blob["provenance"]["config"]["backbone"], blob["max_constituents"], blob["n_tokens"])
    model.load_state_dict(blob["model_state"])


class _Killed(RuntimeError):
    pass


@pytest.mark.parametrize("name", ["mpm-kmeans", "mpm-ssfm", "mpm-v1"])
def test_killed_run_resumes_to_the_uninterrupted_result(name: str, tmp_path: Path, jet_files: dict,
                                                        tokenizers: dict) -> None:
    cfg = _config(steps=50)
    whole, _ = _run(name, tmp_path / "whole", jet_files, tokenizers, cfg)

    def kill(step: int) -> None:
        if step == 33:
            raise _Killed

    with pytest.raises(_Killed):
        _run(name, tmp_path / "resumed", jet_files, tokenizers, cfg, on_step=kill)
    resume = tmp_path / "resumed" / f"{name}.pt.resume"
    assert torch.load(resume, weights_only=False)["step"] == 20
    seen: list[int] = []
    resumed, _ = _run(name, tmp_path / "resumed", jet_files, tokenizers, cfg, on_step=seen.append)
    assert seen[0] == 21  # continued from the checkpoint, not from scratch
    a, b = torch.load(whole, weights_only=False), torch.load(resumed, weights_only=False)
    for key, value in a["model_state"].items():
        assert torch.equal(value, b["model_state"][key]), key
    np.testing.assert_array_equal(read_metrics(tmp_path / "whole" / f"{name}.csv")["loss"],
                                  read_metrics(tmp_path / "resumed" / f"{name}.csv")["loss"])


def test_resume_file_of_another_config_is_ignored(tmp_path: Path, jet_files: dict, tokenizers: dict) -> None:
    cfg = _config(steps=30)

    def kill(step: int) -> None:
        if step == 25:
            raise _Killed

    with pytest.raises(_Killed):
        _run("mpm-reg", tmp_path, jet_files, tokenizers, cfg, on_step=kill)
    cfg["pretrain"]["lr"] = 1e-3  # a different recipe: the old state must not be reused
    seen: list[int] = []
    _run("mpm-reg", tmp_path, jet_files, tokenizers, cfg, on_step=seen.append)
    assert seen[0] == 1


def test_all_tasks_under_bf16_autocast() -> None:
    """The CUDA path uses bf16 autocast; CPU autocast exercises the same dtype mixing."""
    from jetfm.downstream.heads import TwinEdgeHead

    cfg = _config()
    torch.manual_seed(0)
    recipe = stage_params(cfg, "pretrain", backbone="mpm-all")["backbone"]
    model = build_model(recipe, 8, {"kmeans": 10, "vqvae": 12})
    x, pid = torch.randn(4, 8, 7), torch.randint(0, 8, (4, 8))
    mask = torch.arange(8)[None, :] < torch.tensor([[2], [5], [8], [3]])
    masked = sample_mask(mask, 0.4, torch.Generator().manual_seed(1))
    tokens = {"kmeans": torch.randint(0, 10, (4, 8)), "vqvae": torch.randint(0, 12, (4, 8))}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, pid, mask, masked, tokens, torch.Generator().manual_seed(2))
        logits = TwinEdgeHead(32, 16, 8)(model.encoder(x, pid, mask)[0])
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and out["loss"].dtype == torch.float32
    assert set(out) >= {f"loss_{t}" for t in recipe["tasks"]}
    assert logits.shape == (4, 8, 8)
    assert all(p.grad is not None for p in model.encoder.parameters() if p.requires_grad)


def test_mpm_v1_keeps_every_constituent_in_the_encoder() -> None:
    cfg = _config()
    recipe = stage_params(cfg, "pretrain", backbone="mpm-v1")["backbone"]
    torch.manual_seed(0)
    model = build_model(recipe, 8, {"vqvae": 12}).eval()
    x, pid = torch.randn(2, 8, 7), torch.randint(0, 8, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.bool)
    masked = torch.zeros(2, 8, dtype=torch.bool)
    masked[:, [1, 4]] = True
    seen = {}
    model.encoder.register_forward_hook(lambda m, args, kwargs, out: seen.update(n=args[0].shape[1]),
                                        with_kwargs=True)
    out = model(x, pid, mask, masked, {"vqvae": torch.randint(0, 12, (2, 8))})
    assert seen["n"] == 8 and torch.isfinite(out["loss"])
    # the masked constituents' features are invisible: changing them changes nothing
    x2 = x.clone()
    x2[:, [1, 4]] += 10.0
    tokens = {"vqvae": torch.zeros(2, 8, dtype=torch.long)}
    loss, loss_changed = (model(v, pid, mask, masked, tokens)["loss"] for v in (x, x2))
    assert torch.equal(loss, loss_changed)


def test_backbone_config_errors_name_the_key() -> None:
    keep: dict = {}  # downstream benchmarks default to every backbone
    with pytest.raises(ConfigError, match=r"backbones\.b\.tasks.*mpm-v2"):
        validate_config({"backbones": {"b": {"method": "mpm-v1", "tasks": ["cnf"]}}} | keep)
    with pytest.raises(ConfigError, match=r"backbones\.b\.vqvae_tokenizer.*needs a vqvae tokenizer"):
        validate_config({"tokenizers": {"vqvae": {"kind": "kmeans"}},
                         "backbones": {"b": {"tasks": ["vqvae"]}}} | keep)
    with pytest.raises(ConfigError, match=r"backbones\.b\.tokenizer.*boosted"):
        validate_config({"tokenizers": {"kmeans": {"sample": "btag"}},
                         "backbones": {"b": {"sample": "boosted", "tasks": ["kmeans"]}}} | keep)
    with pytest.raises(ConfigError, match=r"backbones\.b\.heads.ssfm.heads"):
        validate_config({"backbones": {"b": {"tasks": ["ssfm"], "heads": {"ssfm": {"dim": 30, "heads": 4}}}}}
                        | keep)


def test_pretrain_params_hold_only_what_the_backbone_uses() -> None:
    base = _config()
    keep: dict = {}  # downstream benchmarks default to every backbone
    cfg = validate_config({"backbones": {"b": {"tasks": ["reg", "id"]}},
                           "tokenizers": {"kmeans": {}}} | keep)
    params = stage_params(cfg, "pretrain", backbone="b")
    assert params["tokenizers"] == {} and params["backbone"]["heads"] == {}
    changed = validate_config({"backbones": {"b": {"tasks": ["reg", "id"], "heads": {"cnf": {"blocks": 3}},
                                                   "ssfm_mask_range": [0.3, 0.9]}},
                               "tokenizers": {"kmeans": {"k": 8}}} | keep)
    assert stage_params(changed, "pretrain", backbone="b") == params
    # a token task carries its tokenizer's recipe, so a new tokenizer re-runs the backbone
    kmeans = stage_params(base, "pretrain", backbone="mpm-kmeans")
    assert kmeans["tokenizers"]["kmeans"] == stage_params(base, "tokenize", tokenizer="kmeans")


@pytest.mark.parametrize("name", list(BACKBONES))
def test_a_batch_with_nothing_masked_still_backpropagates(name: str) -> None:
    """Length-bucketed batches of one-constituent jets mask nothing (one constituent always stays)."""
    recipe = stage_params(_config(), "pretrain", backbone=name)["backbone"]
    model = build_model(recipe, 4, {"kmeans": 10, "vqvae": 12})
    mask = torch.zeros(5, 4, dtype=torch.bool)
    mask[:, 0] = True
    masked = sample_mask(mask, 0.4, torch.Generator().manual_seed(0))
    assert not masked.any()
    tokens = {"kmeans": torch.randint(0, 10, (5, 4)), "vqvae": torch.randint(0, 12, (5, 4))}
    out = model(torch.randn(5, 4, 7), torch.randint(0, 8, (5, 4)), mask, masked, tokens,
                torch.Generator().manual_seed(1))
    assert float(out["loss"].detach()) == 0.0
    out["loss"].backward()


def test_batch_plan_is_a_function_of_seed_and_step() -> None:
    from jetfm.training import BatchPlan, step_generator

    lengths = torch.tensor([1, 9, 2, 8, 3, 7, 4, 6, 5, 5])
    plan = BatchPlan(10, 2, seed=3, lengths=lengths)
    epoch = [plan(step) for step in range(5)]
    assert sorted(torch.cat(epoch).tolist()) == list(range(10))  # an epoch covers every jet once
    assert all(abs(int(lengths[b[0]]) - int(lengths[b[1]])) <= 1 for b in epoch)  # bucketed
    fresh = BatchPlan(10, 2, seed=3, lengths=lengths)
    assert torch.equal(fresh(7), plan(7)) and torch.equal(fresh(3), epoch[3])  # random access
    assert not torch.equal(torch.cat([plan(s) for s in range(5, 10)]), torch.cat(epoch))  # new epoch order
    a = torch.rand(4, generator=step_generator(0, 5))
    assert torch.equal(a, torch.rand(4, generator=step_generator(0, 5)))
    assert not torch.equal(a, torch.rand(4, generator=step_generator(0, 6)))


class _HostWaits(TorchDispatchMode):
    """The ATen calls of a step that would make the host wait for a GPU: reading a value (item,
    int(), bool()), nonzero, masked_select, and indexing with a boolean mask."""

    WAITING = frozenset({"_local_scalar_dense", "nonzero", "masked_select", "is_nonzero", "equal"})

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = func.overloadpacket.__name__
        boolean_index = name == "index" and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or []))
        if name in self.WAITING or boolean_index:
            self.found.append(name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("backbone", ["mpm-all", "mpm-v1"])
def test_a_masked_step_given_its_layout_never_waits_for_the_device(backbone: str) -> None:
    """With the MaskLayout worked out on the host (as batch_losses does), forward and backward of
    every MPM task call nothing that makes a GPU host wait; without it the same step would. The
    exception is cnf: normflows' spline picks its in-range inputs by boolean indexing."""
    from jetfm.pretrain.masking import MaskLayout

    torch.manual_seed(0)
    cfg = _config()
    cfg["backbones"]["mpm-all"]["tasks"].remove("cnf")
    recipe = stage_params(cfg, "pretrain", backbone=backbone)["backbone"]
    model = build_model(recipe, 8, {"kmeans": 10, "vqvae": 12})
    x, pid = torch.randn(4, 8, 7), torch.randint(0, 8, (4, 8))
    mask = torch.arange(8)[None, :] < torch.tensor([[2], [5], [8], [3]])
    masked = sample_mask(mask, 0.4, torch.Generator().manual_seed(1))
    tokens = {"kmeans": torch.randint(0, 10, (4, 8)), "vqvae": torch.randint(0, 12, (4, 8))}
    layout = MaskLayout.of(mask, masked)
    with _HostWaits() as waits:
        out = model(x, pid, mask, masked, tokens, torch.Generator().manual_seed(2), layout=layout)
        out["loss"].backward()
    assert waits.found == []
    with _HostWaits() as waits:
        again = model(x, pid, mask, masked, tokens, torch.Generator().manual_seed(2))
    assert waits.found  # the check sees the waits the layout spares
    torch.testing.assert_close(again["loss"], out["loss"])


def test_a_next_token_step_given_its_scored_positions_never_waits_for_the_device() -> None:
    from jetfm.models.next_token import NextTokenModel, scored_positions
    from jetfm.models.token_encoder import TokenJetEncoder

    torch.manual_seed(0)
    tokenizer = {"codebook_size": 12, "latent_dim": 4, "dim": 16, "layers": 1, "heads": 2,
                 "features": ["pt", "deta", "dphi"]}
    model = NextTokenModel(TokenJetEncoder(dim=32, layers=2, heads=4, tokenizer=tokenizer, n_classes=3),
                           class_dropout=0.1)
    mask = torch.arange(8)[None, :] < torch.tensor([[2], [5], [8], [3]])
    codes = torch.where(mask, torch.randint(0, 12, (4, 8)), -1)
    scored = scored_positions(mask)
    # labels stay None here: on the CPU the label range is checked with a read (skipped on a GPU)
    with _HostWaits() as waits:
        out = model(mask, codes, None, torch.Generator().manual_seed(1), scored=scored)
        out["loss"].backward()
    assert waits.found == []
    again = model(mask, codes, None, torch.Generator().manual_seed(1))
    torch.testing.assert_close(again["loss"], out["loss"])
