"""Tokenizers: the VQ-VAE learns and reloads exactly, both kinds share one interface, the report's numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from jetfm.contract import CONTINUOUS_FEATURES
from jetfm.data.features import PaddedJets, pad_jets
from jetfm.jets.jet_sets import read_jet_table
from jetfm.tokenize import KMeansTokenizer, VQVAETokenizer, fit_tokenizer, load_tokenizer
from jetfm.tokenize.report import tokenizer_quality

VQVAE_SMALL = {"kind": "vqvae", "sample": "btag", "seed": 3, "codebook_size": 32, "latent_dim": 4, "dim": 16,
               "layers": 1, "heads": 2, "ff_mult": 2.0, "commitment_weight": 0.25, "dead_code_threshold": 0.5,
               "kmeans_init": True, "steps": 150, "batch_size": 32, "lr": 3e-3, "warmup_steps": 10}


def _params(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    return {"name": name, "sample": "btag", "tokenizer": cfg}


@pytest.fixture(scope="module")
def vqvae_fit(tmp_path_factory: pytest.TempPathFactory, jet_files: dict) -> tuple[VQVAETokenizer, Path]:
    out = tmp_path_factory.mktemp("vqvae")
    tok = fit_tokenizer(jet_files["train"], jet_files["val"], _params(VQVAE_SMALL, "vq"), out / "vq.pt",
                        out / "vq.json", threads=1, progress=False)
    return tok, out


@pytest.fixture(scope="module")
def test_jets(jet_files: dict) -> PaddedJets:
    return pad_jets(read_jet_table(jet_files["test"]))


def _check_tokens(tokens: torch.Tensor, recon: torch.Tensor, data: PaddedJets, n_tokens: int) -> None:
    assert tokens.dtype == torch.int64 and tokens.shape == data.mask.shape
    assert recon.dtype == torch.float32 and recon.shape == data.features.shape
    assert torch.equal(tokens == -1, ~data.mask)  # -1 exactly on padding
    assert int(tokens[data.mask].min()) >= 0 and int(tokens[data.mask].max()) < n_tokens
    assert torch.all(recon[~data.mask] == 0)


def test_vqvae_learns_reports_and_reloads_identically(vqvae_fit: tuple, test_jets: PaddedJets,
                                                      jet_files: dict) -> None:
    tok, out = vqvae_fit
    fit = tok.info["fit"]
    assert fit["loss_end"] < 0.5 * fit["loss_start"], fit
    assert tok.n_tokens == 32 and tok.info["feature_version"] >= 1

    report = json.loads((out / "vq.json").read_text())
    assert report["kind"] == "vqvae" and report["name"] == "vq" and report["sample"] == "btag"
    assert report["n_tokens"] == 32 and report["quality"] == tok.info["quality"]
    assert report["provenance"]["config"]["tokenizer"]["codebook_size"] == 32
    assert report["quality"]["utilisation"] > 0.5
    # the figure is the report layer's, drawn from the tokenizer file (as `jetfm tokenize` does)
    from jetfm.report.tokenizer import draw_tokenizer_figure

    draw_tokenizer_figure(out / "vq.pt", jet_files["val"], out / "vq.png")
    assert (out / "vq.png").stat().st_size > 1000

    tokens, recon = tok.tokens(test_jets), tok.reconstruct(test_jets)
    _check_tokens(tokens, recon, test_jets, tok.n_tokens)
    # tokens are contextual but fixed by the jet: batching does not change them
    assert torch.equal(tok.tokens(test_jets, batch_size=7), tokens)
    again = load_tokenizer(out / "vq.pt")
    assert isinstance(again, VQVAETokenizer)
    assert torch.equal(again.tokens(test_jets), tokens)
    assert torch.equal(again.reconstruct(test_jets), recon)
    # reconstruction beats predicting zero for every feature
    err = ((recon - test_jets.features)[test_jets.mask] ** 2).mean()
    assert float(err) < 0.5 * float((test_jets.features[test_jets.mask] ** 2).mean())


def test_vqvae_tokens_are_permutation_equivariant(vqvae_fit: tuple, test_jets: PaddedJets) -> None:
    tok, _ = vqvae_fit
    # a random permutation of each jet's constituents, padding kept at the end
    keys = torch.rand(test_jets.mask.shape, generator=torch.Generator().manual_seed(0))
    order = torch.argsort(keys.masked_fill(~test_jets.mask, 2.0), dim=1)

    def take(t: torch.Tensor) -> torch.Tensor:
        index = order if t.ndim == 2 else order[..., None].expand_as(t)
        return t.gather(1, index)

    permuted = PaddedJets(take(test_jets.features), take(test_jets.pid), take(test_jets.mask),
                          take(test_jets.vertex), take(test_jets.origin), test_jets.label)
    assert not torch.equal(permuted.features, test_jets.features)
    tokens = tok.tokens(test_jets)
    same = (tok.tokens(permuted) == take(tokens))[test_jets.mask]
    # float summation order may flip a code at an exact tie, nothing more
    assert float(same.float().mean()) > 0.99
    assert torch.allclose(tok.reconstruct(permuted), take(tok.reconstruct(test_jets)), atol=1e-4)


def test_vqvae_fit_is_deterministic(jet_files: dict) -> None:
    from jetfm.tokenize.vqvae import fit_vqvae

    data = pad_jets(read_jet_table(jet_files["train"]))
    cfg = VQVAE_SMALL | {"steps": 15}
    a = fit_vqvae(data, "a", cfg, threads=1, progress=False)
    b = fit_vqvae(data, "b", cfg, threads=1, progress=False)
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key


def test_kmeans_shares_the_interface(tmp_path: Path, jet_files: dict, test_jets: PaddedJets) -> None:
    cfg = {"kind": "kmeans", "sample": "btag", "seed": 1, "k": 8, "n_fit": 5000, "iterations": 10}
    tok = fit_tokenizer(jet_files["train"], jet_files["val"], _params(cfg, "km"), tmp_path / "km.pt",
                        tmp_path / "km.json", progress=False)
    assert isinstance(tok, KMeansTokenizer) and tok.n_tokens == tok.k == 8
    assert tok.info["quality"]["utilisation"] == 1.0
    tokens, recon = tok.tokens(test_jets), tok.reconstruct(test_jets)
    _check_tokens(tokens, recon, test_jets, 8)
    flat = test_jets.features[test_jets.mask].numpy()
    assert np.array_equal(tokens[test_jets.mask].numpy(), tok.encode(flat))
    assert np.array_equal(recon[test_jets.mask].numpy(), tok.decode(tok.encode(flat)))
    again = load_tokenizer(tmp_path / "km.pt")
    assert isinstance(again, KMeansTokenizer) and np.array_equal(again.centroids, tok.centroids)
    report = json.loads((tmp_path / "km.json").read_text())
    assert report["kind"] == "kmeans" and report["n_tokens"] == 8
    assert not (tmp_path / "km.png").exists()  # fitting draws nothing


def test_too_few_constituents_is_a_clear_error(jet_files: dict) -> None:
    from jetfm.tokenize.kmeans import fit_kmeans
    from jetfm.tokenize.vqvae import fit_vqvae

    few = pad_jets(read_jet_table(jet_files["train"])).subset(slice(0, 2))
    n = int(few.mask.sum())
    with pytest.raises(ValueError,
                       match=rf"'tiny' \(vqvae\): {n} training constituents for codebook_size=4096"):
        fit_vqvae(few, "tiny", VQVAE_SMALL | {"codebook_size": 4096}, progress=False)
    with pytest.raises(ValueError, match=rf"'tiny' \(kmeans\): {n} training constituents for k=4096"):
        fit_kmeans(few, "tiny", {"seed": 0, "k": 4096, "n_fit": 10**6, "iterations": 2}, progress=False)


def test_quality_numbers_on_a_hand_made_case() -> None:
    n = 1000
    rng = np.random.default_rng(0)
    original = rng.normal(size=(n, len(CONTINUOUS_FEATURES))).astype(np.float32)
    tokens = np.repeat([0, 2], n // 2)  # two of four codes, equally often
    q = tokenizer_quality(tokens, 4, original, original)
    assert q["utilisation"] == 0.5
    assert q["perplexity"] == pytest.approx(2.0)
    assert q["rms_residual"] == 0.0 and q["pt_relative_half_width_68"] == 0.0
    assert all(r["rms"] == 0.0 and r["half_width_68"] == 0.0 for r in q["resolution"].values())
    assert set(q["resolution"]) == set(CONTINUOUS_FEATURES)

    shifted = original.copy()
    shifted[:, 1] += np.where(np.arange(n) % 2 == 0, 0.5, -0.5)  # Δη residual ±0.5
    shifted[:, 0] += np.log(1.2)  # every pT 20% high
    q = tokenizer_quality(np.arange(n) % 4, 4, original, shifted)
    assert q["utilisation"] == 1.0 and q["perplexity"] == pytest.approx(4.0)
    assert q["resolution"]["deta"]["rms"] == pytest.approx(0.5, rel=1e-5)
    assert q["resolution"]["deta"]["half_width_68"] == pytest.approx(0.5, rel=1e-5)
    assert q["resolution"]["pt"]["rms"] == pytest.approx(np.log(1.2), rel=1e-5)
    assert q["pt_relative_half_width_68"] == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="shapes"):
        tokenizer_quality(tokens[:-1], 4, original, original)
    with pytest.raises(ValueError, match="outside"):
        tokenizer_quality(tokens + 3, 4, original, original)


def test_load_tokenizer_dispatches_and_rejects(tmp_path: Path, vqvae_fit: tuple) -> None:
    _, out = vqvae_fit
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_tokenizer(missing)
    wrong = tmp_path / "backbone.pt"
    torch.save({"kind": "backbone", "info": {}}, wrong)
    with pytest.raises(ValueError, match=rf"{wrong}.*'backbone'"):
        load_tokenizer(wrong)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=str(garbage)):
        load_tokenizer(garbage)
    with pytest.raises(ValueError, match="a vqvae tokenizer, expected kmeans"):
        KMeansTokenizer.load(out / "vq.pt")
    old = tmp_path / "old.pt"
    blob = torch.load(out / "vq.pt", weights_only=False)
    blob["info"]["feature_version"] = -1
    torch.save(blob, old)
    with pytest.raises(ValueError, match="feature version -1"):
        load_tokenizer(old)
