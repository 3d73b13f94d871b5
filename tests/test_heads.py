"""The generative pre-training heads: CNF, CFM and the set-to-set flow-matching decoder."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from jetfm.pretrain.heads import (
    ConditionalFlowHead,
    FlowMatchingHead,
    SetFlowMatchingDecoder,
    cosine_time_embedding,
)

# Toy conditional distribution: x = A c + b + 0.3 ε.
A = torch.tensor([[1.0, -0.5], [0.5, 1.0], [-1.0, 0.3]])
B = torch.tensor([0.5, -0.5, 0.0])
SIGMA = 0.3
CONTEXTS = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5], [0.5, -1.5]])


def _mu(c: torch.Tensor) -> torch.Tensor:
    return c @ A.T + B


def _train(loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor],
           params: list[nn.Parameter], steps: int, batch: int, lr: float) -> list[float]:
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - 0.9 * i / steps)
    losses = []
    for _ in range(steps):
        c = torch.randn(batch, 2, generator=g)
        x = _mu(c) + SIGMA * torch.randn(batch, 3, generator=g)
        loss = loss_fn(x, c, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def _check_conditional(sample: Callable[[torch.Tensor, torch.Generator], torch.Tensor]) -> None:
    """Per fixed context, the sample mean is μ(c) and the width is σ (not the marginal width ~1.2)."""
    n = 2000
    s = sample(CONTEXTS.repeat_interleave(n, 0), torch.Generator().manual_seed(2)).view(len(CONTEXTS), n, 3)
    assert torch.isfinite(s).all()
    assert (s.mean(1) - _mu(CONTEXTS)).abs().max() < 0.15
    std = s.std(1)
    assert ((std - SIGMA).abs() < 0.09).all(), std


def _randomise(model: nn.Module, std: float = 0.1) -> None:
    # Break the zero (identity) initialisation so the tests probe a generic network.
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)


def test_cosine_time_embedding() -> None:
    t = torch.rand(4, 5)
    emb = cosine_time_embedding(t, 16)
    assert emb.shape == (4, 5, 16)
    assert emb.abs().max() <= 1.0
    torch.testing.assert_close(emb[..., 0], torch.cos(math.pi * t))


def test_cnf_starts_as_standard_normal() -> None:
    torch.manual_seed(0)
    head = ConditionalFlowHead(7, 16)
    x, c = 1.5 * torch.randn(200, 7), torch.randn(200, 16)
    expected = (0.5 * x.square() + 0.5 * math.log(2 * math.pi)).sum(-1).mean()
    assert abs(head.loss(x, c).item() - expected.item()) < 1e-4
    # The spline runs in float32 even under autocast.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss_autocast = head.loss(x, c.bfloat16())
    assert loss_autocast.dtype == torch.float32
    assert abs(loss_autocast.item() - expected.item()) < 1e-4


def test_cnf_learns_conditional_distribution() -> None:
    torch.manual_seed(0)
    head = ConditionalFlowHead(3, 2, blocks=2, hidden=64)
    losses = _train(lambda x, c, g: head.loss(x, c), list(head.parameters()), steps=300, batch=256, lr=1e-2)
    # Optimum: the entropy of N(μ, σ²) in 3 dimensions, ≈ 0.64.
    optimum = 3 * (0.5 * math.log(2 * math.pi * math.e) + math.log(SIGMA))
    assert sum(losses[-20:]) / 20 < optimum + 0.4 < sum(losses[:5]) / 5
    _check_conditional(lambda c, g: head.sample(c, generator=g))


def test_cfm_learns_conditional_distribution() -> None:
    torch.manual_seed(0)
    head = FlowMatchingHead(3, 2, hidden=128, layers=3)
    losses = _train(head.loss, list(head.parameters()), steps=500, batch=512, lr=3e-3)
    assert sum(losses[-20:]) / 20 < 0.5 * sum(losses[:5]) / 5
    _check_conditional(lambda c, g: head.sample(c, steps=32, generator=g))


def test_untrained_heads_fail_the_conditional_check() -> None:
    # Guards the tolerances above: they must reject a head that has learned nothing.
    torch.manual_seed(0)
    cnf, cfm = ConditionalFlowHead(3, 2, blocks=2, hidden=64), FlowMatchingHead(3, 2, hidden=128)
    with pytest.raises(AssertionError):
        _check_conditional(lambda c, g: cnf.sample(c, generator=g))
    with pytest.raises(AssertionError):
        _check_conditional(lambda c, g: cfm.sample(c, generator=g))


def _ssfm(seed: int = 0) -> SetFlowMatchingDecoder:
    torch.manual_seed(seed)
    return SetFlowMatchingDecoder(n_features=7, latent_dim=24, dim=32, layers=2, heads=4, time_dim=16)


def test_ssfm_is_equivariant_and_ignores_padding() -> None:
    model = _ssfm()
    _randomise(model)
    b, t_len, l_len = 3, 6, 5
    x, latent = torch.randn(b, t_len, 7), torch.randn(b, l_len, 24)
    t = torch.rand(b)
    t_mask = torch.ones(b, t_len, dtype=torch.bool)
    l_mask = torch.ones(b, l_len, dtype=torch.bool)
    v = model.velocity(x, t, t_mask, latent, l_mask)
    assert v.abs().max() > 1e-3  # not trivially zero

    perm_t, perm_l = torch.randperm(t_len), torch.randperm(l_len)
    torch.testing.assert_close(model.velocity(x[:, perm_t], t, t_mask, latent, l_mask), v[:, perm_t],
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.velocity(x, t, t_mask, latent[:, perm_l], l_mask), v,
                               atol=1e-5, rtol=1e-5)

    # Garbage (even NaN) in padded rows of either set changes nothing; padded outputs are zero.
    x_pad = torch.cat([x, 1e3 * torch.randn(b, 3, 7)], dim=1)
    x_pad[0, -1] = float("nan")
    latent_pad = torch.cat([latent, 1e3 * torch.randn(b, 4, 24)], dim=1)
    latent_pad[1, -1] = float("nan")
    t_mask_pad = torch.cat([t_mask, torch.zeros(b, 3, dtype=torch.bool)], dim=1)
    l_mask_pad = torch.cat([l_mask, torch.zeros(b, 4, dtype=torch.bool)], dim=1)
    v_pad = model.velocity(x_pad, t, t_mask_pad, latent_pad, l_mask_pad)
    torch.testing.assert_close(v_pad[:, :t_len], v, atol=1e-5, rtol=1e-5)
    assert (v_pad[:, t_len:] == 0).all()


def test_ssfm_empty_rows_are_finite_and_contribute_nothing() -> None:
    model = _ssfm()
    _randomise(model)
    target, latent = torch.randn(3, 4, 7), torch.randn(3, 5, 24)
    t_mask = torch.ones(3, 4, dtype=torch.bool)
    l_mask = torch.ones(3, 5, dtype=torch.bool)
    t_mask[0] = False  # a jet with nothing dropped
    l_mask[1] = False  # degenerate, but must stay finite
    loss = model.loss(target, t_mask, latent, l_mask, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # Row 0 has no valid target, so its content is irrelevant to the loss.
    garbage = target.clone()
    garbage[0] = 1e3
    again = model.loss(garbage, t_mask, latent, l_mask, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, loss)


def test_ssfm_overfits_a_fixed_batch() -> None:
    model = _ssfm()
    g = torch.Generator().manual_seed(0)
    target, latent = torch.randn(4, 5, 7, generator=g), torch.randn(4, 6, 24, generator=g)
    t_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]]).bool()
    l_mask = torch.ones(4, 6, dtype=torch.bool)
    l_mask[2, 3:] = False
    # Repeat the batch so each evaluation averages over many (t, z) draws.
    rep = [s.repeat(16, *([1] * (s.dim() - 1))) for s in (target, t_mask, latent, l_mask)]

    def evaluate() -> float:
        with torch.no_grad():
            return model.loss(*rep, generator=torch.Generator().manual_seed(7)).item()

    before = evaluate()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(150):
        loss = model.loss(*rep, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert evaluate() < 0.6 * before

    samples = model.sample(t_mask, latent, l_mask, steps=8, generator=torch.Generator().manual_seed(3))
    assert samples.shape == (4, 5, 7)
    assert torch.isfinite(samples).all()
    assert (samples[~t_mask] == 0).all()
    assert (samples[t_mask].abs().sum(-1) > 0).all()


def test_flow_matching_losses_are_float32_under_autocast() -> None:
    model, cfm = _ssfm(), FlowMatchingHead(7, 16)
    t_mask, l_mask = torch.ones(2, 3, dtype=torch.bool), torch.ones(2, 4, dtype=torch.bool)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = [model.loss(torch.randn(2, 3, 7), t_mask, torch.randn(2, 4, 24).bfloat16(), l_mask),
                  cfm.loss(torch.randn(5, 7), torch.randn(5, 16).bfloat16())]
    for loss in losses:
        assert loss.dtype == torch.float32 and torch.isfinite(loss)


def _assert_zero_backward(loss: torch.Tensor, model: nn.Module) -> None:
    assert loss.shape == () and loss.item() == 0.0
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and (g == 0).all() for g in grads)


def test_empty_inputs_give_zero_loss() -> None:
    cnf, cfm = ConditionalFlowHead(7, 16, blocks=2), FlowMatchingHead(7, 16)
    x, c = torch.zeros(0, 7), torch.zeros(0, 16, requires_grad=True)
    _assert_zero_backward(cnf.loss(x, c), cnf)
    _assert_zero_backward(cfm.loss(x, c), cfm)
    assert cnf.sample(c).shape == (0, 7) and cfm.sample(c).shape == (0, 7)

    ssfm = _ssfm()
    latent, l_mask = torch.randn(2, 5, 24), torch.ones(2, 5, dtype=torch.bool)
    empty = torch.zeros(2, 0, dtype=torch.bool)
    _assert_zero_backward(ssfm.loss(torch.zeros(2, 0, 7), empty, latent, l_mask), ssfm)
    ssfm.zero_grad()
    nothing = torch.zeros(2, 3, dtype=torch.bool)
    _assert_zero_backward(ssfm.loss(torch.randn(2, 3, 7), nothing, latent, l_mask), ssfm)
    assert ssfm.sample(empty, latent, l_mask).shape == (2, 0, 7)
