"""The way batches reach the device: every tensor of a batch moves together, DataLoader pins
PaddedJets (so that copies to a GPU are asynchronous), and the track losses need no boolean
indexing (whose result size would make the host wait for the GPU at every step)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data._utils.pin_memory import pin_memory

from jetfm.data.features import PaddedJets
from jetfm.downstream.run import make_task
from jetfm.downstream.tasks import pair_targets
from jetfm.training import to_device


def _jets(seed: int = 0) -> PaddedJets:
    gen = torch.Generator().manual_seed(seed)
    mask = torch.arange(6)[None, :] < torch.tensor([[6], [3], [1], [4]])
    pad = lambda high: torch.where(mask, torch.randint(0, high, (4, 6), generator=gen), -1)  # noqa: E731
    return PaddedJets(features=torch.randn(4, 6, 7, generator=gen) * mask[..., None], pid=pad(8).clamp(min=0),
                      mask=mask, vertex=pad(3), origin=pad(4), label=torch.tensor([0, 1, 2, 1]),
                      jet=torch.randn(4, 4, generator=gen), tokens={"kmeans": pad(16)})


def _tensors(jets: PaddedJets) -> list[torch.Tensor]:
    return [jets.features, jets.pid, jets.mask, jets.vertex, jets.origin, jets.label, jets.jet,
            *jets.tokens.values()]


def test_every_tensor_of_a_batch_moves() -> None:
    jets = _jets()
    seen: list[torch.Tensor] = []
    moved = jets.apply(lambda t: seen.append(t) or t + 0)
    assert len(seen) == 8
    for a, b in zip(_tensors(jets), _tensors(moved), strict=True):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    on_cpu = to_device(jets, torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(_tensors(jets), _tensors(on_cpu), strict=True))
    assert to_device({"kmeans": jets.pid}, torch.device("cpu"))["kmeans"] is jets.pid


def test_dataloader_pins_every_tensor_of_padded_jets(monkeypatch: pytest.MonkeyPatch) -> None:
    """DataLoader(pin_memory=True) pins a batch through its pin_memory(); without that method it
    would hand PaddedJets back unpinned, silently."""
    pinned: list[torch.Tensor] = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t, *a, **k: pinned.append(t) or t.clone())
    out = pin_memory(_jets())
    assert isinstance(out, PaddedJets) and len(pinned) == 8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_batches_travel_pinned_and_arrive_equal() -> None:
    jets = _jets()
    assert all(t.is_pinned() for t in _tensors(pin_memory(jets)))
    on_gpu = to_device(jets, torch.device("cuda"))
    assert all(t.is_cuda for t in _tensors(on_gpu))
    for a, b in zip(_tensors(jets), _tensors(on_gpu), strict=True):
        assert torch.equal(a, b.cpu())


def test_track_losses_equal_the_mean_over_real_tracks_and_pairs() -> None:
    jets = _jets(1)
    gen = torch.Generator().manual_seed(2)
    track = make_task("btag_track_id", {"head_hidden": 8})
    out = torch.randn(4, 6, 4, generator=gen)
    expected = F.cross_entropy(out[jets.mask], jets.origin[jets.mask])
    torch.testing.assert_close(track.loss(out, jets), expected)
    vertex = make_task("btag_vertex_ari", {"head_hidden": 8, "head_embed": 4, "threshold": 0.5})
    logits = torch.randn(4, 6, 6, generator=gen)
    target, use = pair_targets(jets.vertex, jets.mask)
    expected = F.binary_cross_entropy_with_logits(logits[use], target[use])
    torch.testing.assert_close(vertex.loss(logits, jets), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_pretraining_steps_never_wait_for_the_device() -> None:
    """batch_losses works out the mask layout on the host and copies asynchronously: forward,
    backward, clipping and the optimiser step run with CUDA's sync debug mode set to error."""
    from jetfm.config import stage_params, validate_config
    from jetfm.pretrain import build_model
    from jetfm.pretrain.train import batch_losses
    from jetfm.training import step_generator

    device = torch.device("cuda")
    cfg = validate_config({"backbones": {"b": {"tasks": ["id", "reg", "kmeans", "cfm", "ssfm"],
                                               "encoder": {"dim": 32, "layers": 2, "heads": 2},
                                               "decoder": {"dim": 16, "layers": 1, "heads": 1}}}})
    recipe = stage_params(cfg, "pretrain", backbone="b")["backbone"]
    model = build_model(recipe, 6, {"kmeans": 16}).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(3):
        jets = _jets(step)
        tokens = {"kmeans": jets.tokens["kmeans"].clamp(min=0)}
        torch.cuda.set_sync_debug_mode("error")
        try:
            losses = batch_losses(model, recipe, jets, tokens, step_generator(0, step),
                                  step_generator(0, step, device), device)
            optimiser.zero_grad(set_to_none=True)
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(losses["loss"]).item()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_next_token_steps_never_wait_for_the_device() -> None:
    """The gpt backbone's step: labels checked and scored positions found on the host."""
    from jetfm.models.next_token import NextTokenModel
    from jetfm.models.token_encoder import TokenJetEncoder
    from jetfm.pretrain.train import batch_losses
    from jetfm.training import step_generator

    device = torch.device("cuda")
    tokenizer = {"codebook_size": 16, "latent_dim": 4, "dim": 16, "layers": 1, "heads": 2,
                 "features": ["pt", "deta", "dphi"]}
    model = NextTokenModel(TokenJetEncoder(dim=32, layers=2, heads=4, tokenizer=tokenizer, n_classes=3),
                           class_dropout=0.1).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(3):
        jets = _jets(step)
        tokens = {"gpt": jets.tokens["kmeans"]}
        torch.cuda.set_sync_debug_mode("error")
        try:
            losses = batch_losses(model, {"method": "gpt"}, jets, tokens, step_generator(0, step),
                                  step_generator(0, step, device), device)
            optimiser.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimiser.step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(losses["loss"]).item()
    bad = dataclasses.replace(_jets(), label=torch.tensor([0, 1, 5, 1]))  # 3 classes: 5 is out of range
    with pytest.raises(ValueError, match="out of range"):  # checked on the host, not by a device assert
        batch_losses(model, {"method": "gpt"}, bad, {"gpt": bad.tokens["kmeans"]}, step_generator(0, 0),
                     step_generator(0, 0, device), device)
