from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jetfm.config import stage_params, validate_config
from jetfm.data.features import pad_jets
from jetfm.jets import read_jet_table
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


def test_pretraining_learns_and_checkpoint_reloads_identically(tmp_path: Path, jet_files: dict) -> None:
    from jetfm.pretrain import load_backbone, pretrain_backbone
    from jetfm.tokenize import fit_tokenizer

    cfg = validate_config({
        "tokenizers": {"kmeans": {"k": 16, "n_fit": 5000, "iterations": 10}},
        "backbones": {"mpm-kmeans": {"encoder": {"dim": 32, "layers": 2, "heads": 2, "registers": 2},
                                     "decoder": {"dim": 16, "layers": 1, "heads": 1}}},
        "pretrain": {"steps": 120, "batch_size": 64, "warmup_steps": 10, "lr": 2e-3, "threads": 1,
                     "checkpoint_every": 50},
    })
    tok = fit_tokenizer(jet_files["train"], stage_params(cfg, "tokenize", tokenizer="kmeans"),
                        tmp_path / "tok.pt", progress=False)
    assert tok.info["quality"]["utilisation"] == 1.0
    params = stage_params(cfg, "pretrain", backbone="mpm-kmeans")
    out = tmp_path / "bb.pt"
    pretrain_backbone(jet_files["train"], jet_files["val"], tmp_path / "tok.pt", params, out,
                      tmp_path / "bb.csv", progress=False)
    import csv

    rows = list(csv.DictReader(open(tmp_path / "bb.csv")))
    first, last = float(rows[0]["loss"]), float(rows[-1]["loss"])
    assert last < first - 0.3, (first, last)
    assert not Path(f"{out}.resume").exists()

    enc = load_backbone(out).eval()
    data = pad_jets(read_jet_table(jet_files["test"]))
    blob = torch.load(out, weights_only=False)
    for k, v in enc.state_dict().items():
        assert torch.equal(v, blob["encoder_state"][k])
    a, _ = enc(data.features, data.pid, data.mask)
    b, _ = load_backbone(out).eval()(data.features, data.pid, data.mask)
    assert torch.equal(a, b)


def test_mixed_precision_path_runs_under_bf16_autocast() -> None:
    """The CUDA path uses bf16 autocast; CPU autocast exercises the same dtype mixing."""
    from jetfm.downstream.vertexing import TwinEdgeHead
    from jetfm.pretrain import MaskedParticleModel

    torch.manual_seed(0)
    enc = JetEncoder(dim=32, layers=2, heads=4, registers=2)
    model = MaskedParticleModel(enc, {"dim": 16, "layers": 1, "heads": 2, "ff_mult": 2.0},
                                ["kmeans", "id", "reg"], max_constituents=8, n_tokens=10)
    x, pid = torch.randn(4, 8, 7), torch.randint(0, 8, (4, 8))
    mask = torch.arange(8)[None, :] < torch.tensor([[2], [5], [8], [3]])
    masked = sample_mask(mask, 0.4, torch.Generator().manual_seed(1))
    tokens = torch.randint(0, 10, (4, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, pid, mask, masked, tokens)
        logits = TwinEdgeHead(32, 16, 8)(enc(x, pid, mask)[0])
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and out["loss"].dtype == torch.float32
    assert logits.shape == (4, 8, 8)
    assert all(p.grad is not None for p in model.encoder.parameters() if p.requires_grad)
