"""OmniJet-α pieces at tiny scale: causal attention and its KV cache, the token backbone,
next-token training, sampling (valid sequences, bounded lengths), decoding and the
distances of the jet_generation benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from jetfm.config import stage_params, validate_config
from jetfm.jet_generation.distances import binned_kl, histogram, histogram_edges, wasserstein_1
from jetfm.jet_generation.jet_sets import NOT_MODELLED, decode_codes, reconstruct_jets
from jetfm.jet_generation.observables import JET_OBSERVABLES, jet_observables
from jetfm.jet_generation.sample import draw_next, sample_codes
from jetfm.jets import read_jet_table
from jetfm.models.next_token import NextTokenModel
from jetfm.models.token_encoder import TokenJetEncoder
from jetfm.models.transformer import Transformer
from jetfm.models.vqvae import VQVAE

TOKENIZER = {"codebook_size": 12, "latent_dim": 4, "dim": 16, "layers": 1, "heads": 2,
             "features": ["pt", "deta", "dphi"]}


def _model(n_classes: int = 0, seed: int = 0) -> NextTokenModel:
    torch.manual_seed(seed)
    encoder = TokenJetEncoder(dim=32, layers=2, heads=4, tokenizer=TOKENIZER, n_classes=n_classes,
                              layerscale_init=0.5)
    return NextTokenModel(encoder)


# --- causal attention -------------------------------------------------------------------


def test_causal_transformer_never_looks_ahead() -> None:
    torch.manual_seed(0)
    net = Transformer(dim=16, layers=2, heads=2, layerscale_init=0.5).eval()
    x = torch.randn(3, 7, 16)
    changed = x.clone()
    changed[:, 4:] = 50 * torch.randn(3, 3, 16)
    a, b = net(x, causal=True), net(changed, causal=True)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])
    # without the causal mask the first positions do see the change
    assert not torch.allclose(net(x)[:, :4], net(changed)[:, :4])
    with pytest.raises(ValueError, match="no key mask"):
        net(x, torch.ones(3, 7, dtype=torch.bool), causal=True)


def test_kv_cache_decoding_equals_the_full_causal_pass() -> None:
    torch.manual_seed(1)
    net = Transformer(dim=16, layers=3, heads=4, layerscale_init=0.5).eval()
    x = torch.randn(2, 9, 16)
    full = net(x, causal=True)
    caches = net.new_caches(9)
    # a prefill of three, single steps, then a chunk of two after cached positions
    parts = [net(x[:, :3], causal=True, caches=caches)]
    parts += [net(x[:, t:t + 1], causal=True, caches=caches) for t in range(3, 7)]
    parts.append(net(x[:, 7:9], causal=True, caches=caches))
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="KV cache holds 9"):
        net(x[:, :1], causal=True, caches=caches)


# --- the token backbone -------------------------------------------------------------------


def test_sequence_layout_and_vocabulary() -> None:
    enc = _model(n_classes=3).encoder
    codes = torch.tensor([[4, 7, 1], [2, 0, 0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    ids = enc.sequence(codes, mask, torch.tensor([2, -1]))
    k = enc.n_codes
    assert (enc.stop_id, enc.start_id, enc.no_class_id) == (k, k + 1, k + 5)
    assert ids.tolist() == [[k + 1, k + 2 + 2, 4, 7, 1, k], [k + 1, k + 5, 2, k, k, k]]
    assert enc.embed.num_embeddings == k + 6
    with pytest.raises(ValueError, match="out of range"):
        enc.class_ids(torch.tensor([3]), 1, torch.device("cpu"))


def test_token_backbone_states_are_causal_and_the_register_sees_the_whole_jet() -> None:
    enc = _model().encoder.eval()
    features, pid = torch.randn(2, 5, 7), torch.zeros(2, 5, dtype=torch.long)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    states, register = enc(features, pid, mask)
    assert states.shape == (2, 5, 32) and register.shape == (2, 1, 32)
    codes = enc.tokenize(features, mask)
    assert ((codes >= 0) == mask).all() and int(codes.max()) < enc.n_codes
    # the register is the state at <stop>: position 1 + n of the sequence
    h = enc.hidden(enc.sequence(codes, mask))
    torch.testing.assert_close(register[:, 0], h[torch.arange(2), 1 + mask.sum(1)])
    # a different last constituent leaves earlier states alone
    other = features.clone()
    other[0, 4] += 5.0
    states2, register2 = enc(other, pid, mask)
    if enc.tokenize(other, mask)[0, 4] != codes[0, 4]:
        torch.testing.assert_close(states2[0, :4], states[0, :4])
        assert not torch.allclose(register2[0], register[0])


def test_tokenizer_stays_frozen_in_training_mode() -> None:
    model = _model()
    model.train()
    assert not model.encoder.tokenizer.training
    assert not any(p.requires_grad for p in model.encoder.tokenizer.parameters())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    features, pid = torch.randn(4, 6, 7), torch.zeros(4, 6, dtype=torch.long)
    mask = torch.ones(4, 6, dtype=torch.bool)
    model.encoder(features, pid, mask)  # a fresh codebook marks itself initialised at first use
    before = {k: v.clone() for k, v in model.encoder.tokenizer.state_dict().items()}
    states, register = model.encoder(features, pid, mask)
    (states.sum() + register.sum()).backward()
    opt.step()
    for k, v in model.encoder.tokenizer.state_dict().items():
        assert torch.equal(v, before[k]), k


# --- next-token training and sampling ---------------------------------------------------


def _overfit(model: NextTokenModel, codes: torch.Tensor, mask: torch.Tensor, steps: int = 150,
             label: torch.Tensor | None = None) -> list[float]:
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    model.train()
    for _ in range(steps):
        out = model(mask, codes, label)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    return losses


def test_next_token_model_learns_sequences_and_generates_them() -> None:
    model = _model()
    # every jet is 3, 5, 9 <stop>: after training, sampling must reproduce it
    codes = torch.tensor([[3, 5, 9, 0, 0]] * 16)
    mask = torch.tensor([[True, True, True, False, False]] * 16)
    losses = _overfit(model, codes, mask)
    assert losses[0] > 2.0 and losses[-1] < 0.05, (losses[0], losses[-1])
    out = model.eval()(mask, codes)
    assert float(out["acc_gpt"]) == 1.0
    generated = sample_codes(model, 20, 5, seed=0, temperature=0.5)
    assert generated.tolist() == [[3, 5, 9, -1, -1]] * 20


def test_class_conditional_model_generates_each_class_its_own_jets() -> None:
    model = _model(n_classes=2)
    codes = torch.tensor([[1, 2, 0], [7, 7, 7]] * 8)
    mask = torch.tensor([[True, True, False], [True, True, True]] * 8)
    label = torch.tensor([0, 1] * 8)
    _overfit(model, codes, mask, steps=200, label=label)
    generated = sample_codes(model, 6, 3, seed=1, labels=torch.tensor([0, 1, 0, 1, 1, 0]), top_k=1)
    assert generated.tolist() == [[1, 2, -1], [7, 7, 7], [1, 2, -1], [7, 7, 7], [7, 7, 7], [1, 2, -1]]


@pytest.mark.parametrize("stop_bias", [-30.0, 0.0, 30.0])
def test_sampled_sequences_are_valid_and_bounded(stop_bias: float) -> None:
    model = _model()
    with torch.no_grad():
        model.head.bias[model.encoder.stop_id] = stop_bias
    codes = sample_codes(model, 50, 8, seed=3, batch_size=16, temperature=1.3)
    assert codes.shape == (50, 8)
    valid = codes >= 0
    lengths = valid.sum(dim=1)
    # codes only, left-aligned: nothing after the first -1 (the <stop>), never start/class/stop ids
    assert (codes[valid] < model.encoder.n_codes).all() and (codes[~valid] == -1).all()
    assert torch.equal(valid, torch.arange(8)[None, :] < lengths[:, None])
    assert int(lengths.min()) >= 1 and int(lengths.max()) <= 8  # <stop> is not allowed first
    if stop_bias > 0:
        assert (lengths == 1).all()
    elif stop_bias < 0:
        assert (lengths == 8).all()
    else:
        assert len(set(lengths.tolist())) > 1
    # a function of the seed (and batch size) only
    assert torch.equal(codes, sample_codes(model, 50, 8, seed=3, batch_size=16, temperature=1.3))
    assert not torch.equal(codes, sample_codes(model, 50, 8, seed=4, batch_size=16, temperature=1.3))


def test_draw_next_follows_temperature_and_top_k() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.1]])).expand(20000, 3)
    share = torch.bincount(draw_next(logits, 1.0, 0, gen), minlength=3) / 20000
    torch.testing.assert_close(share, torch.tensor([0.6, 0.3, 0.1]), atol=0.015, rtol=0)
    hot = torch.bincount(draw_next(logits, 100.0, 0, gen), minlength=3) / 20000  # → uniform
    torch.testing.assert_close(hot, torch.full((3,), 1 / 3), atol=0.015, rtol=0)
    top2 = torch.bincount(draw_next(logits, 1.0, 2, gen), minlength=3) / 20000
    assert top2[2] == 0 and abs(float(top2[0]) - 2 / 3) < 0.015
    assert (draw_next(logits, 1.0, 1, gen) == 0).all()
    with pytest.raises(ValueError, match="temperature"):
        draw_next(logits, 0.0, 0, gen)


# --- decoding to jet tables --------------------------------------------------------------


def test_decoded_codes_form_a_pt_ordered_jet_table() -> None:
    torch.manual_seed(2)
    tokenizer = VQVAE(**TOKENIZER).eval()
    codes = torch.tensor([[3, 1, 4, 1], [5, -1, -1, -1], [9, 2, 6, -1]])
    table = decode_codes(tokenizer, codes, np.array([-1, -1, -1]))
    assert table.n_jets == 3 and np.diff(table.offsets).tolist() == [4, 1, 3]
    tracks = table.tracks
    for j in range(3):
        pt = tracks["pt"][table.offsets[j]:table.offsets[j + 1]]
        assert (pt > 0).all() and (np.diff(pt) <= 0).all()
    for name, value in NOT_MODELLED.items():
        assert (tracks[name] == value).all(), name
    # equal codes decode to equal constituents; jet columns are the constituent sums
    first = tracks["deta"][:4]
    assert np.sum(np.isclose(first, first[:, None])) >= 6
    obs = jet_observables(table, radius=0.8)
    np.testing.assert_allclose(table.jets["jet_pt"], obs["jet_pt"], rtol=1e-5)
    assert np.isnan(obs["tau21"][1]) and np.isnan(obs["d2"][1])  # one constituent: undefined


def test_reconstruction_keeps_every_true_jet_and_multiplicity(jet_files: dict) -> None:
    torch.manual_seed(3)
    table = read_jet_table(jet_files["test"])
    rec = reconstruct_jets(VQVAE(**TOKENIZER).eval(), table)
    assert rec.n_jets == table.n_jets
    np.testing.assert_array_equal(np.diff(rec.offsets), np.diff(table.offsets))
    np.testing.assert_array_equal(rec.jets["label"], table.jets["label"])


# --- distances -----------------------------------------------------------------------------


def test_distances_of_identical_and_shifted_samples() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=5000)
    assert wasserstein_1(a, a) == 0.0
    assert wasserstein_1(a, a + 0.3) == pytest.approx(0.3)
    edges = histogram_edges(a, 20)
    counts = histogram(a, edges)
    assert counts.sum() == 5000  # outliers land in the end bins
    assert binned_kl(counts, counts) == 0.0
    shifted = histogram(a + 0.5, edges)
    # two unit Gaussians half a σ apart: KL = 0.5² / 2 = 0.125 nats (binning smears it a little)
    assert 0.08 < binned_kl(counts, shifted) < 0.16
    assert binned_kl([10, 0], [0, 10]) > 2.0 and np.isfinite(binned_kl([10, 0], [0, 10]))
    integer_edges = histogram_edges(np.array([1, 2, 2, 3, 7]), 40, integer=True)
    assert np.allclose(np.diff(integer_edges), 1.0) and integer_edges[0] == 0.5
    assert np.isnan(wasserstein_1(np.array([np.nan]), a))


# --- the whole chain: pre-train, generate, evaluate ----------------------------------------


def _gpt_config(conditional: bool = False) -> dict:
    return validate_config({
        "tokenizers": {"vqvae-omnijet": {"kind": "vqvae", "features": ["pt", "deta", "dphi"],
                                         "codebook_size": 16, "latent_dim": 4, "dim": 16, "layers": 1,
                                         "heads": 2, "steps": 60, "batch_size": 64, "warmup_steps": 5}},
        "backbones": {"gpt": {"method": "gpt", "tasks": ["gpt"], "conditional": conditional,
                              "encoder": {"dim": 32, "layers": 2, "heads": 2}}},
        "pretrain": {"steps": 60, "batch_size": 32, "warmup_steps": 5, "lr": 2e-3, "threads": 1,
                     "checkpoint_every": 20, "eval_every": 20, "probe_every": 40, "probe_jets": 200},
        "downstream": {"jet_generation": {"seeds": [0], "bins": 10, "batch_size": 64},
                       **{b: {"backbones": ["gpt"], "steps": 8, "batch_size": 16, "frozen_steps": 3}
                          for b in ("btag_track_id", "btag_ood_accuracy")}},
    })


@pytest.fixture(scope="module")
def gpt_tokenizer(tmp_path_factory: pytest.TempPathFactory, jet_files: dict) -> Path:
    from jetfm.tokenize import fit_tokenizer

    out = tmp_path_factory.mktemp("gpt-tokenizer")
    tok = out / "vqvae-omnijet.pt"
    fit_tokenizer(jet_files["train"], jet_files["val"],
                  stage_params(_gpt_config(), "tokenize", tokenizer="vqvae-omnijet"), tok,
                  out / "vqvae-omnijet.json", progress=False)
    return tok


def _pretrain(tmp_path: Path, jet_files: dict, tokenizer: Path, cfg: dict, **kwargs: object) -> Path:
    from jetfm.pretrain import pretrain_backbone

    tmp_path.mkdir(parents=True, exist_ok=True)
    checkpoint = tmp_path / "gpt.pt"
    pretrain_backbone(jet_files["train"], jet_files["val"], {"gpt": tokenizer},
                      stage_params(cfg, "pretrain", backbone="gpt"), checkpoint, tmp_path / "gpt.csv",
                      progress=False, **kwargs)
    return checkpoint


@pytest.fixture(scope="module")
def gpt_backbone(tmp_path_factory: pytest.TempPathFactory, jet_files: dict, gpt_tokenizer: Path
                 ) -> tuple[Path, dict]:
    cfg = _gpt_config()
    return _pretrain(tmp_path_factory.mktemp("gpt"), jet_files, gpt_tokenizer, cfg), cfg


def test_gpt_pretraining_learns_and_reloads_identically(gpt_backbone: tuple[Path, dict], jet_files: dict
                                                        ) -> None:
    from jetfm.data.features import pad_jets
    from jetfm.models.checkpoint import load_backbone, load_next_token_model
    from jetfm.pretrain.train import read_metrics

    checkpoint, _ = gpt_backbone
    metrics = read_metrics(checkpoint.with_suffix(".csv"))
    val = metrics["val_loss"][~np.isnan(metrics["val_loss"])]
    # from about log(17) (uniform over 16 codes and <stop>) down clearly
    assert len(val) >= 3 and val[0] > 2.5 and val[-1] < val[0] - 0.2, val
    assert np.all(np.isfinite(metrics["probe_acc"][~np.isnan(metrics["probe_acc"])]))
    blob = torch.load(checkpoint, weights_only=False)
    assert blob["method"] == "gpt" and blob["encoder_config"]["kind"] == "token"
    data = pad_jets(read_jet_table(jet_files["test"]))
    a, ra = load_backbone(checkpoint).eval()(data.features, data.pid, data.mask)
    b, rb = load_backbone(checkpoint).eval()(data.features, data.pid, data.mask)
    assert torch.equal(a, b) and torch.equal(ra, rb) and ra.shape == (len(data), 1, 32)
    model, _ = load_next_token_model(checkpoint)
    for key, value in model.state_dict().items():
        assert torch.equal(value, blob["model_state"][key]), key


class _Killed(RuntimeError):
    pass


def test_killed_gpt_run_resumes_to_the_uninterrupted_result(tmp_path: Path, jet_files: dict,
                                                            gpt_tokenizer: Path) -> None:
    cfg = _gpt_config()
    cfg["pretrain"]["steps"] = 30
    whole = _pretrain(tmp_path / "whole", jet_files, gpt_tokenizer, cfg)

    def kill(step: int) -> None:
        if step == 25:
            raise _Killed

    with pytest.raises(_Killed):
        _pretrain(tmp_path / "resumed", jet_files, gpt_tokenizer, cfg, on_step=kill)
    resumed = _pretrain(tmp_path / "resumed", jet_files, gpt_tokenizer, cfg)
    a, b = torch.load(whole, weights_only=False), torch.load(resumed, weights_only=False)
    for key, value in a["model_state"].items():
        assert torch.equal(value, b["model_state"][key]), key


@pytest.mark.parametrize("benchmark", ["btag_ood_accuracy", "btag_track_id"])
def test_gpt_backbone_transfers_in_every_mode(benchmark: str, gpt_backbone: tuple[Path, dict],
                                             gpt_tokenizer: Path, jet_files: dict, tmp_path: Path) -> None:
    from jetfm.downstream.run import make_encoder, run_benchmark
    from jetfm.models.checkpoint import load_backbone

    checkpoint, cfg = gpt_backbone
    pretrained = load_backbone(checkpoint).state_dict()
    for mode in ("scratch", "fixed", "finetune"):
        params = stage_params(cfg, "downstream", benchmark=benchmark, backbone="gpt", mode=mode, point="all",
                              seed="0")
        kwargs = {"tokenizer": gpt_tokenizer} if mode == "scratch" else {}
        result = run_benchmark(params, jet_files["train"], jet_files["val"], jet_files["test"],
                               None if mode == "scratch" else checkpoint, tmp_path / f"{mode}.json",
                               progress=False, **kwargs)
        row = result["rows"][0]
        assert row["mode"] == mode and 0.0 <= row["value"] <= 1.0
        assert np.array(row["confusion"]).sum() == row["n_eval"]
        if mode == "scratch":
            # a fresh transformer around the trained tokenizer
            encoder = make_encoder(params, None, gpt_tokenizer)
            tok = {k: v for k, v in encoder.state_dict().items() if k.startswith("tokenizer.")}
            assert all(torch.equal(v, pretrained[k]) for k, v in tok.items())
            assert not torch.equal(encoder.state_dict()["embed.weight"], pretrained["embed.weight"])
            with pytest.raises(ValueError, match="needs its tokenizer"):
                make_encoder(params, None)


def test_finetuning_trains_the_transformer_but_not_its_tokenizer(gpt_backbone: tuple[Path, dict],
                                                                  jet_files: dict) -> None:
    from jetfm.data.features import pad_jets
    from jetfm.downstream.run import make_task, train_head
    from jetfm.models.checkpoint import load_backbone

    checkpoint, cfg = gpt_backbone
    params = stage_params(cfg, "downstream", benchmark="btag_ood_accuracy", backbone="gpt", mode="finetune",
                          point="all", seed="0")
    encoder = load_backbone(checkpoint)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    train, val = (pad_jets(read_jet_table(jet_files[s])) for s in ("train", "val"))
    train_head(make_task("btag_ood_accuracy", params["settings"]), encoder, train, val, params,
               torch.device("cpu"), progress=False)
    after = encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("tokenizer."))
    assert not torch.equal(before["embed.weight"], after["embed.weight"])


def test_generate_jets_cli_writes_a_readable_jet_set(gpt_backbone: tuple[Path, dict], jet_files: dict,
                                                     tmp_path: Path) -> None:
    checkpoint, cfg = gpt_backbone
    params = stage_params(cfg, "generate_jets", backbone="gpt", seed=0)
    out = tmp_path / "generated.parquet"
    cmd = [sys.executable, "-m", "jetfm.cli", "-q", "generate-jets", "--params", json.dumps(params),
           "--backbone", "gpt", "--seed", "0", "--checkpoint", str(checkpoint), "--n-jets", "37",
           "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    table = read_jet_table(out)
    counts = np.diff(table.offsets)
    max_constituents = torch.load(checkpoint, weights_only=False)["max_constituents"]
    assert table.n_jets == 37 and counts.min() >= 1 and counts.max() <= max_constituents
    assert (table.tracks["pt"] > 0).all() and (table.jets["label"] == -1).all()
    from jetfm.jets.jet_sets import read_metadata
    assert read_metadata(out)["generated"]["backbone"] == "gpt"
    # asking for classes of an unconditional backbone, or for no jets, fails with a message
    bad = subprocess.run([*cmd[:-4], "--n-jets", "5", "--class", "bb", "--out", str(out)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "not class-conditional" in bad.stderr


def test_evaluate_generation_rows_sit_between_floor_and_nonsense(gpt_backbone: tuple[Path, dict],
                                                                jet_files: dict, tmp_path: Path) -> None:
    from jetfm.jet_generation.evaluate import evaluate_generation, truth_floor_row
    from jetfm.jet_generation.generate import generate_jet_file

    checkpoint, cfg = gpt_backbone
    generated = tmp_path / "generated.parquet"
    generate_jet_file(stage_params(cfg, "generate_jets", backbone="gpt", seed=0), checkpoint, generated,
                      reference=jet_files["test"], progress=False)
    rows = {}
    for mode in ("generated", "reconstructed"):
        params = stage_params(cfg, "evaluate_generation", backbone="gpt", mode=mode, seed=0)
        result = evaluate_generation(params, jet_files["test"], tmp_path / f"{mode}.json",
                                     generated_file=generated if mode == "generated" else None,
                                     checkpoint=checkpoint)
        rows[mode] = result["rows"][0]
    settings = stage_params(cfg, "downstream_baselines", benchmark="jet_generation")["settings"]
    floor = truth_floor_row(jet_files["test"], settings)
    for row in (*rows.values(), floor):
        assert set(row["bins"]) >= set(JET_OBSERVABLES) and np.isfinite(row["value"])
        assert len(row["edges"]["jet_mass"]) == 11
        assert sum(row["reference_hist"]["jet_mass"]) == row["n_reference"]
    # the reconstruction keeps each jet's multiplicity: no multiplicity distance beyond the floor's
    assert rows["reconstructed"]["wasserstein"]["n_constituents"] == floor["wasserstein"]["n_constituents"]
    assert floor["value"] < 0.5
    # OmniJet-α's distances: mean ± std over ten bootstrap batches, each row against its reference
    assert rows["generated"]["bootstrap_reference"] == "reconstructed A"
    assert rows["reconstructed"]["bootstrap_reference"] == floor["bootstrap_reference"] == "true A"
    for row in (*rows.values(), floor):
        for name in JET_OBSERVABLES:
            (kl, kl_std), (w1, w1_std) = row["bootstrap"][name]["kl"], row["bootstrap"][name]["w1"]
            assert kl >= 0 and w1 >= 0 and kl_std > 0 and w1_std > 0, (name, row["bootstrap"][name])
    # the multiplicity survives the tokenizer, and the batches are drawn alike: ceiling = floor
    assert rows["reconstructed"]["bootstrap"]["n_constituents"] == floor["bootstrap"]["n_constituents"]
    other = stage_params(cfg, "evaluate_generation", backbone="gpt", mode="generated", seed=0)
    with pytest.raises(ValueError, match="generated by backbone 'gpt', not 'other'"):
        evaluate_generation(other | {"backbone_name": "other"}, jet_files["test"], tmp_path / "x.json",
                            generated_file=generated)


def test_quantile_kl_and_bootstrap_distances() -> None:
    from jetfm.jet_generation.distances import bootstrap_distances, quantile_kl

    x = np.random.default_rng(1).normal(size=20000)
    assert quantile_kl(x, x) == pytest.approx(0.0, abs=1e-12)
    near, far = quantile_kl(x, x + 0.25), quantile_kl(x, x + 1.0)
    assert 0 < near < far
    assert np.isnan(quantile_kl(x, np.array([])))
    boot = bootstrap_distances(x, x + 1.0, batches=10, seed=0)
    assert boot["w1"][0] == pytest.approx(1.0, abs=0.02) and 0 < boot["w1"][1] < 0.05
    assert boot["kl"][0] == pytest.approx(far, rel=0.2) and boot["kl"][1] > 0
