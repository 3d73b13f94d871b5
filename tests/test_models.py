from __future__ import annotations

import numpy as np
import pytest
import torch

from jetfm.models import JetEncoder
from jetfm.pretrain import compact, sample_mask
from jetfm.pretrain.masking import gather_rows
from jetfm.training import batches, warmup_exponential


def _encoder() -> JetEncoder:
    torch.manual_seed(0)
    enc = JetEncoder(dim=32, layers=2, heads=4, registers=2, layerscale_init=0.5)
    return enc.eval()


def test_encoder_is_permutation_equivariant_and_ignores_padding() -> None:
    enc = _encoder()
    x, pid = torch.randn(3, 6, 7), torch.randint(0, 8, (3, 6))
    mask = torch.ones(3, 6, dtype=torch.bool)
    out, regs = enc(x, pid, mask)
    perm = torch.randperm(6)
    out_p, regs_p = enc(x[:, perm], pid[:, perm], mask)
    torch.testing.assert_close(out_p, out[:, perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(regs_p, regs, atol=1e-5, rtol=1e-5)
    # Appending padded garbage changes nothing for the real constituents.
    x_pad = torch.cat([x, 100 * torch.randn(3, 4, 7)], dim=1)
    pid_pad = torch.cat([pid, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    mask_pad = torch.cat([mask, torch.zeros(3, 4, dtype=torch.bool)], dim=1)
    out_pad, _ = enc(x_pad, pid_pad, mask_pad)
    torch.testing.assert_close(out_pad[:, :6], out, atol=1e-5, rtol=1e-5)


def test_mask_sampling_counts() -> None:
    lengths = torch.tensor([1, 2, 5, 10, 15])
    mask = torch.arange(15)[None, :] < lengths[:, None]
    masked = sample_mask(mask, 0.4, torch.Generator().manual_seed(0))
    assert masked.sum(1).tolist() == [0, 1, 2, 4, 6]
    assert not (masked & ~mask).any()


def test_compact_moves_kept_entries_to_the_front_in_order() -> None:
    keep = torch.tensor([[False, True, False, True], [True, False, False, False]])
    index, valid = compact(keep)
    assert index.tolist() == [[1, 3], [0, 1]] and valid.tolist() == [[True, True], [True, False]]
    x = torch.arange(8.0).view(2, 4)
    assert gather_rows(x, index).tolist() == [[1.0, 3.0], [4.0, 5.0]]


def test_schedule_and_bucketed_batches() -> None:
    assert warmup_exponential(0, 10, 100) == pytest.approx(0.1)
    assert warmup_exponential(9, 10, 100) == pytest.approx(1.0)
    assert warmup_exponential(110, 10, 100) == pytest.approx(0.5)
    lengths = torch.tensor([1, 9, 2, 8, 3, 7, 4, 6])
    stream = batches(8, 2, torch.Generator().manual_seed(0), lengths=lengths)
    seen = [next(stream) for _ in range(4)]
    assert sorted(torch.cat(seen).tolist()) == list(range(8))  # one epoch covers every jet once
    assert all(abs(int(lengths[b[0]]) - int(lengths[b[1]])) <= 1 for b in seen)


def test_pair_features_by_hand() -> None:
    import math

    from jetfm.data.features import preprocess_continuous
    from jetfm.models.interactions import pair_features, relative_inputs

    tracks = {"pt": np.array([40.0, 10.0]), "deta": np.array([0.1, -0.2]), "dphi": np.array([0.05, 0.3]),
              "d0": np.zeros(2), "z0": np.zeros(2), "d0_err": np.full(2, 0.01), "z0_err": np.full(2, 0.01)}
    f = torch.from_numpy(preprocess_continuous(tracks))[None]
    p = pair_features(f)[0, 0, 1] * 4.0
    delta = math.hypot(0.3, 0.25)
    assert p[0] == pytest.approx(math.log(delta), rel=1e-4)
    assert p[1] == pytest.approx(math.log(10.0 * delta), rel=1e-4)
    assert p[2] == pytest.approx(math.log(10.0 / 50.0), rel=1e-4)
    assert p[3] == pytest.approx(math.log(2 * 40 * 10 * (math.cosh(0.3) - math.cos(0.25))), rel=1e-3)
    assert torch.allclose(pair_features(f)[0], pair_features(f)[0].transpose(0, 1))  # symmetric
    # log pT / ΣpT over the visible constituents only
    rel = relative_inputs(f, torch.tensor([[True, False]]))[0]
    assert rel[0, 0] == pytest.approx((0.0 + 4.7) * 0.7, abs=1e-4) and (rel[1] == 0).all()


@pytest.mark.parametrize("options", [{"pair_bias": True}, {"relative_inputs": True},
                                     {"pair_bias": True, "relative_inputs": True}])
def test_encoder_options_keep_symmetry_and_hide_masked_constituents(options: dict) -> None:
    torch.manual_seed(0)
    encoder = JetEncoder(16, 2, 2, registers=2, **options).eval()
    features = torch.randn(2, 5, 7) * 0.3
    pid = torch.randint(0, 8, (2, 5))
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    tokens, registers = encoder(features, pid, mask)
    perm = torch.tensor([3, 1, 4, 0, 2])
    t_perm, r_perm = encoder(features[:, perm], pid[:, perm], mask[:, perm])
    assert torch.allclose(registers[0], r_perm[0], atol=1e-5)
    assert torch.allclose(tokens[0, perm], t_perm[0], atol=1e-5)
    garbage = features.clone()
    garbage[1, 3:] = 9.0  # padding
    assert torch.allclose(encoder(garbage, pid, mask)[1][1], registers[1], atol=1e-5)
    # MPMv1: a replaced constituent's kinematics reach neither its own token, nor the pair bias,
    # nor the other constituents' jet-relative inputs
    replace = torch.zeros(2, 5, dtype=torch.bool)
    replace[0, 2] = True
    replacement = torch.randn(2, 5, 16)
    moved = features.clone()
    moved[0, 2] = torch.randn(7)
    a = encoder(features, pid, mask, replace=replace, replacement=replacement)
    b = encoder(moved, pid, mask, replace=replace, replacement=replacement)
    assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)


@pytest.mark.parametrize("case", ["key padding", "pair bias", "causal"])
def test_attention_runs_a_fused_kernel_with_jetfm_masks(case: str) -> None:
    """The masks jetfm passes (a [B, 1, 1, N] boolean key mask, a float pair bias with padded keys
    at -inf, is_causal) keep scaled_dot_product_attention on the CPU's flash kernel: a layout
    that forced the unfused math path would materialise every [B, H, N, N] score silently.
    benchmarks/attention_kernels.py checks the same on a GPU."""
    from torch.profiler import profile

    from jetfm.models.transformer import SelfAttention

    torch.manual_seed(0)
    layer = SelfAttention(32, 4)
    x = torch.randn(3, 10, 32, requires_grad=True)
    key_mask = torch.arange(10)[None, :] < torch.tensor([[10], [6], [2]])
    kwargs = {"key padding": {"key_mask": key_mask},
              "pair bias": {"key_mask": key_mask, "bias": torch.randn(3, 4, 10, 10)},
              "causal": {"key_mask": None, "causal": True}}[case]
    with profile() as prof:
        layer(x, **kwargs).square().sum().backward()
    ops = {event.key.split("::")[-1] for event in prof.key_averages()}
    assert "_scaled_dot_product_flash_attention_for_cpu" in ops
    assert "_scaled_dot_product_flash_attention_for_cpu_backward" in ops
    assert "_scaled_dot_product_attention_math" not in ops
