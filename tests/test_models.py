from __future__ import annotations

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
