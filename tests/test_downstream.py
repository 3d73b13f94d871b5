"""Downstream benchmarks: heads, modes, sweep points, CWoLa sets, scoring and baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jetfm.config import ConfigError, benchmark_jobs, parse_point, stage_params, validate_config
from jetfm.data.features import pad_jets
from jetfm.downstream.baselines import write_baselines
from jetfm.downstream.cwola import cwola_training_set, supervised_training_set
from jetfm.downstream.heads import ClassAttentionHead
from jetfm.downstream.run import learning_rates, make_task, run_benchmark, train_head
from jetfm.downstream.tasks import predict_vertices, score_partitions
from jetfm.jets import read_jet_table
from jetfm.models.checkpoint import load_backbone
from jetfm.pretrain import pretrain_backbone
from jetfm.results import aggregate_results, read_result

ENCODER = {"dim": 16, "layers": 1, "heads": 2, "registers": 1}
SMALL = {"steps": 8, "batch_size": 16, "frozen_steps": 3, "head_hidden": 8, "head_embed": 4, "head_heads": 2,
         "head_ff_mult": 1.0}
BTAG = ("btag_vertex_ari", "btag_track_id", "btag_ood_accuracy")


def _config(**downstream: dict) -> dict:
    sections = {b: {k: v for k, v in SMALL.items() if b != "btag_vertex_ari" or k != "head_heads"}
                for b in BTAG}
    sections["btag_track_id"] = {k: v for k, v in SMALL.items() if k not in ("head_embed", "head_heads",
                                                                               "head_ff_mult")}
    sections["btag_vertex_ari"] = {k: v for k, v in SMALL.items() if k not in ("head_heads", "head_ff_mult")}
    sections["btag_ood_accuracy"] = {k: v for k, v in SMALL.items() if k not in ("head_hidden", "head_embed")}
    for name, extra in downstream.items():
        sections[name] = sections.get(name, {}) | extra
    return validate_config({
        "backbones": {"mpm-reg": {"tasks": ["reg", "id"], "encoder": ENCODER,
                                  "decoder": {"dim": 8, "layers": 1, "heads": 1}}},
        "pretrain": {"steps": 4, "batch_size": 16, "warmup_steps": 1, "eval_every": 4, "probe_every": 4,
                     "probe_jets": 50, "checkpoint_every": 4},
        "downstream": {name: {"backbones": ["mpm-reg"]} | s for name, s in sections.items()},
    })


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory, jet_files: dict[str, Path]) -> Path:
    out = tmp_path_factory.mktemp("backbone") / "mpm-reg.pt"
    pretrain_backbone(jet_files["train"], jet_files["val"], {}, stage_params(_config(), "pretrain",
                      backbone="mpm-reg"), out, out.with_suffix(".csv"), progress=False)
    return out


def _params(benchmark: str, mode: str, point: str = "all", seed: int = 0, cfg: dict | None = None) -> dict:
    return stage_params(cfg or _config(), "downstream", benchmark=benchmark, backbone="mpm-reg", mode=mode,
                        point=point, seed=str(seed))


def test_prediction_joins_pairs_above_threshold() -> None:
    logits = np.full((1, 4, 4), -5.0)
    logits[0, 0, 2] = logits[0, 2, 0] = 5.0
    logits[0, 1, 3] = 5.0  # one direction only: not joined
    mask = np.array([[True, True, True, True]])
    assert predict_vertices(logits, mask, 0.5).tolist() == [[0, 1, 0, 3]]


def test_scores_skip_single_track_jets_and_bin_by_secondary_vertices() -> None:
    true = np.array([[0, 1, 1, -1], [0, -1, -1, -1], [0, 0, 1, 2]])
    mask = true >= 0
    pred = np.where(mask, true, 0)
    scores = score_partitions(true, pred, mask)
    assert scores["n_eval"] == 2 and scores["value"] == 1.0
    assert scores["bins"] == {"1": 1.0, "2": 1.0}


def test_sweep_points_and_jobs() -> None:
    assert parse_point("all") == {"n_train": None}
    assert parse_point("n300") == {"n_train": 300}
    assert parse_point("s40") == {"n_train": None, "n_signal": 40}
    with pytest.raises(ConfigError, match="bad sweep point"):
        parse_point("x1")
    cfg = validate_config({
        "backbones": {"mpm-kmeans": {}, "b": {}, "c": {"encoder": {"dim": 64}}},
        "downstream": {"jetclass_accuracy": {"backbones": ["mpm-kmeans", "b", "c"], "seeds": [0, 1],
                                             "train_sizes": [100, None]},
                       "cwola_sic": {"backbones": ["b"], "modes": ["fixed"], "signal_jets": [0, 50]}},
    })
    jobs = benchmark_jobs(cfg, "jetclass_accuracy")
    # scratch once per distinct encoder (a and b share one) and for the ParT reference: 3 × 2 points × 2 seeds
    assert sum(j["mode"] == "scratch" for j in jobs) == 12
    assert {j["backbone"] for j in jobs if j["mode"] == "scratch"} == {"mpm-kmeans", "c", "part"}
    assert len(jobs) == 12 + 2 * 3 * 2 * 2
    cwola = benchmark_jobs(cfg, "cwola_sic")
    assert [(j["backbone"], j["mode"], j["point"]) for j in cwola if j["seed"] == "0"] == \
        [("b", "fixed", "s0"), ("b", "fixed", "s50"), ("part", "scratch", "s0"), ("part", "scratch", "s50"),
         ("b", "supervised", "all"), ("part", "supervised", "all")]
    assert not any(j["backbone"] == "part" for j in benchmark_jobs(cfg, "btag_vertex_ari"))
    params = stage_params(cfg, "downstream", benchmark="cwola_sic", backbone="part", mode="scratch",
                          point="s50", seed="0")
    assert params["reference"]["num_layers"] == 8 and "encoder" not in params


def test_run_blocks_choose_the_runs() -> None:
    """``runs`` picks a union of blocks out of the product; scratch goes under its architecture's
    backbone, a supervised run has one point, and every name or value is checked."""
    section = {"backbones": ["mpm-kmeans", "b", "g"], "seeds": [0, 1], "train_sizes": [100, None],
               "runs": [{"backbone": "mpm-kmeans", "modes": ["scratch", "finetune"], "points": [None]},
                        {"backbone": "b", "modes": ["scratch", "fixed"], "points": [100], "seeds": [0]},
                        {"backbone": "part", "points": [None], "seeds": [1]}]}
    cfg = validate_config({"backbones": {"mpm-kmeans": {}, "b": {}, "g": {"encoder": {"dim": 32}}},
                           "downstream": {"jetclass_accuracy": section,
                                          "cwola_sic": {"backbones": ["b"], "signal_jets": [0, 50],
                                                        "runs": [{"backbone": "b", "modes": ["supervised"]},
                                                                 {"backbone": "part", "points": [50]}]}}})
    jobs = [(j["backbone"], j["mode"], j["point"], j["seed"])
            for j in benchmark_jobs(cfg, "jetclass_accuracy")]
    assert jobs == [("mpm-kmeans", "scratch", "all", "0"), ("mpm-kmeans", "scratch", "all", "1"),
                    ("mpm-kmeans", "finetune", "all", "0"), ("mpm-kmeans", "finetune", "all", "1"),
                    # b has mpm-kmeans's encoder: its scratch run is mpm-kmeans's
                    ("mpm-kmeans", "scratch", "n100", "0"), ("b", "fixed", "n100", "0"),
                    ("part", "scratch", "all", "1")]
    cwola = [(j["backbone"], j["mode"], j["point"]) for j in benchmark_jobs(cfg, "cwola_sic")]
    assert cwola == [("b", "supervised", "all"), ("part", "scratch", "s50")]
    # without runs: the whole product, as before
    product = dict(section)
    del product["runs"]
    full = validate_config({"backbones": {"mpm-kmeans": {}, "b": {}, "g": {"encoder": {"dim": 32}}},
                            "downstream": {"jetclass_accuracy": product}})
    # scratch: 2 architectures and part
    assert len(benchmark_jobs(full, "jetclass_accuracy")) == (3 + 3 * 2) * 2 * 2
    # the blocks choose jobs, they do not change one: same params with or without them
    assert stage_params(cfg, "downstream", benchmark="jetclass_accuracy", backbone="b", mode="fixed",
                        point="n100", seed="0") == \
        stage_params(full, "downstream", benchmark="jetclass_accuracy", backbone="b", mode="fixed",
                     point="n100", seed="0")
    bad = [({"backbone": "c"}, r"runs\[0\]\.backbone': 'c' is not in the section"),
           ({"backbone": "b", "points": [300]},
            r"runs\[0\]\.points': 300 is not in the section's train_sizes"),
           ({"backbone": "b", "seeds": [2]}, r"runs\[0\]\.seeds': 2 is not in the section's seeds"),
           ({"backbone": "part", "modes": ["fixed"]}, r"runs\[0\]\.modes': 'fixed' is not a mode of 'part'"),
           ({"backbone": "b", "modes": ["supervised"]}, r"runs\[0\]\.modes': 'supervised'")]
    for block, message in bad:
        with pytest.raises(ConfigError, match=message):
            validate_config({"backbones": {"b": {}}, "downstream": {"jetclass_accuracy": {
                "backbones": ["b"], "seeds": [0, 1], "train_sizes": [100, None], "runs": [block]}}})
    with pytest.raises(ConfigError, match=r"jetclass_accuracy\.runs': an empty list"):
        validate_config({"backbones": {"b": {}}, "downstream": {"jetclass_accuracy": {"runs": []}}})


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"downstream\.btag_ood_accuracy\.references': no reference model"):
        validate_config({"downstream": {"btag_ood_accuracy": {"references": ["pn"]}}})
    with pytest.raises(ConfigError, match=r"references\.part\.num_heads"):
        validate_config({"references": {"part": {"embed_dims": [32, 30], "num_heads": 4}}})
    with pytest.raises(ConfigError, match=r"downstream\.cwola_sic\.signal': 'Top'"):
        validate_config({"downstream": {"cwola_sic": {"signal": "Top"}}})
    with pytest.raises(ConfigError, match=r"downstream\.jetclass_accuracy\.head_heads"):
        validate_config({"downstream": {"jetclass_accuracy": {"head_heads": 5}}})


def test_cwola_sets() -> None:
    labels = np.array([0] * 11 + [8] * 5 + [3] * 4)
    index, target = cwola_training_set(labels, background=0, signal=8, n_signal=3, seed=1)
    assert len(index) == 5 + 5 + 3 and len(set(index.tolist())) == len(index)
    assert (target == 0).sum() == 5 and (labels[index[target == 0]] == 0).all()
    assert (labels[index[target == 1]] == 8).sum() == 3 and (labels[index] != 3).all()
    again, _ = cwola_training_set(labels, background=0, signal=8, n_signal=3, seed=1)
    assert np.array_equal(index, again)
    with pytest.raises(ValueError, match="6 signal jets requested"):
        cwola_training_set(labels, background=0, signal=8, n_signal=6, seed=1)
    index, target = supervised_training_set(labels, 0, 8)
    assert len(index) == 16 and target.sum() == 5


def test_learning_rate_schedules() -> None:
    s = {"lr": 1.0, "frozen_steps": 10, "backbone_lr_factor": 0.1}
    assert learning_rates(0, 100, "scratch", s) == (1.0, 1.0)
    assert learning_rates(50, 100, "fixed", s) == pytest.approx((0.5, 0.0))
    assert learning_rates(9, 100, "finetune", s)[1] == 0.0
    # linear warm-up over as many steps as were frozen, then the cosine of the head × factor
    head_14, head_30 = learning_rates(14, 100, "fixed", s)[0], learning_rates(30, 100, "fixed", s)[0]
    assert learning_rates(14, 100, "finetune", s)[1] == pytest.approx(0.5 * 0.1 * head_14)
    assert learning_rates(30, 100, "finetune", s)[1] == pytest.approx(0.1 * head_30)


def test_class_attention_head_ignores_padding() -> None:
    torch.manual_seed(0)
    head = ClassAttentionHead(16, 3, layers=2, heads=2)
    tokens, registers = torch.randn(2, 5, 16), torch.randn(2, 1, 16)
    mask = torch.tensor([[True, True, True, False, False]] * 2)
    changed = tokens.clone()
    changed[:, 3:] = 100.0
    assert torch.allclose(head(tokens, registers, mask), head(changed, registers, mask))
    noisy = tokens + torch.randn(2, 5, 16)
    assert not torch.allclose(head(tokens, registers, mask), head(noisy, registers, mask))
    # permutation invariant over the real constituents
    perm = tokens[:, [2, 0, 1, 3, 4]]
    assert torch.allclose(head(tokens, registers, mask), head(perm, registers, mask), atol=1e-6)


@pytest.mark.parametrize("mode", ["fixed", "finetune"])
def test_frozen_encoder_stays_frozen(mode: str, backbone: Path, jet_files: dict[str, Path]) -> None:
    cfg = _config(btag_ood_accuracy={"frozen_steps": 100})  # finetune never leaves its frozen phase
    params = _params("btag_ood_accuracy", mode, cfg=cfg)
    encoder = load_backbone(backbone)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    train = pad_jets(read_jet_table(jet_files["train"]))
    task = make_task("btag_ood_accuracy", params["settings"])
    val = pad_jets(read_jet_table(jet_files["val"]))
    train_head(task, encoder, train, val, params, torch.device("cpu"), progress=False)
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    params = _params("btag_ood_accuracy", "finetune")  # frozen for 3 of 8 steps, then trained
    task = make_task("btag_ood_accuracy", params["settings"])
    train_head(task, encoder, train, val, params, torch.device("cpu"), progress=False)
    assert not all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())


@pytest.mark.parametrize("benchmark", BTAG)
def test_every_mode_runs_and_aggregates(benchmark: str, tmp_path: Path, backbone: Path,
                                        jet_files: dict[str, Path]) -> None:
    runs = []
    for mode, point, seed in (("scratch", "n40", 0), ("scratch", "n40", 1), ("fixed", "all", 0),
                              ("finetune", "all", 0)):
        out = tmp_path / f"{mode}-{point}-{seed}.json"
        run_benchmark(_params(benchmark, mode, point, seed), jet_files["train"], jet_files["val"],
                      jet_files["test"],
                      None if mode == "scratch" else backbone, out, progress=False)
        runs.append(out)
        row = read_result(out)["rows"][0]
        assert row["mode"] == mode and row["seed"] == seed
        n_all = read_jet_table(jet_files["train"]).n_jets
        assert row["n_train"] == (40 if point == "n40" else n_all)
        assert 0.0 <= row["value"] <= 1.0 or benchmark == "btag_vertex_ari"
        if benchmark != "btag_ood_accuracy":
            assert row["bins"]
        if benchmark != "btag_vertex_ari":
            assert np.array(row["confusion"]).sum() == row["n_eval"]
    base = tmp_path / "baselines.json"
    write_baselines(stage_params(_config(), "downstream_baselines", benchmark=benchmark), jet_files["train"],
                    jet_files["test"], base)
    result = aggregate_results([base, *runs], benchmark, tmp_path / "agg.json")
    scratch = [s for s in result["summary"] if s["mode"] == "scratch"]
    assert len(scratch) == 1 and scratch[0]["n_seeds"] == 2 and scratch[0]["n_train"] == 40
    values = [r["value"] for r in result["rows"] if r["mode"] == "scratch"]
    assert scratch[0]["mean"] == pytest.approx(np.mean(values))
    assert scratch[0]["std"] == pytest.approx(np.std(values, ddof=1))


def test_baselines_hand_checked(tmp_path: Path, jet_files: dict[str, Path]) -> None:
    test = pad_jets(read_jet_table(jet_files["test"]))
    train_labels = read_jet_table(jet_files["train"]).jets["label"]
    out = write_baselines({"benchmark": "btag_ood_accuracy", "settings": {}}, jet_files["train"],
                          jet_files["test"], tmp_path / "b.json")
    majority = np.bincount(train_labels).argmax()
    assert out["rows"][0]["value"] == pytest.approx((test.label.numpy() == majority).mean())
    out = write_baselines({"benchmark": "btag_track_id", "settings": {}}, jet_files["train"],
                          jet_files["test"], tmp_path / "t.json")
    present = np.unique(test.origin.numpy()[test.mask.numpy()])
    assert out["rows"][0]["value"] == pytest.approx(1.0 / len(present))
    out = write_baselines({"benchmark": "cwola_sic", "settings": {"background_rejection": 0.99,
                                                                   "signal": "Tbqq", "background": "QCD"}},
                          jet_files["train"], jet_files["test"], tmp_path / "c.json")
    assert out["rows"][0]["value"] == pytest.approx(0.1)


def test_sweep_point_larger_than_the_training_set(tmp_path: Path, jet_files: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="train_sizes asks for 100000 jets"):
        run_benchmark(_params("btag_ood_accuracy", "scratch", "n100000"), jet_files["train"],
                      jet_files["val"], jet_files["test"], None, tmp_path / "x.json", progress=False)


def _fit(backbone: Path, jet_files: dict[str, Path], mode: str, **settings: float):
    from jetfm.downstream.run import validation_loss

    cfg = _config(btag_ood_accuracy={"steps": 60, "eval_every": 5} | settings)
    params = _params("btag_ood_accuracy", mode, cfg=cfg)
    encoder = load_backbone(backbone)
    train = pad_jets(read_jet_table(jet_files["train"]))
    val = pad_jets(read_jet_table(jet_files["val"]))
    task = make_task("btag_ood_accuracy", params["settings"])
    fit = train_head(task, encoder, train, val, params, torch.device("cpu"), progress=False)
    return fit, validation_loss(task, encoder, fit.head, val, torch.device("cpu"))


def test_training_stops_on_a_flat_validation_loss(backbone: Path, jet_files: dict[str, Path]) -> None:
    # a learning rate too small to move the loss: nothing beats the first evaluation, so training
    # stops after `patience` further evaluations, far before the 60-step maximum
    fit, _ = _fit(backbone, jet_files, "fixed", lr=1e-12, patience=3)
    assert fit.stop_reason == "patience"
    assert fit.best_step == 5 and fit.stopped_step == 5 + 3 * 5
    assert [c["step"] for c in fit.curve] == [5, 10, 15, 20]


def test_the_best_validation_weights_are_the_ones_kept(backbone: Path, jet_files: dict[str, Path]) -> None:
    # a learning rate so large that the validation loss leaves its minimum
    fit, recomputed = _fit(backbone, jet_files, "finetune", lr=0.05, patience=4, frozen_steps=5)
    losses = [c["val_loss"] for c in fit.curve]
    assert fit.best_val_loss == min(losses)
    assert fit.best_step == fit.curve[int(np.argmin(losses))]["step"]
    assert recomputed == pytest.approx(fit.best_val_loss, rel=1e-5)
    if fit.stop_reason == "patience":
        assert fit.stopped_step - fit.best_step == 4 * 5
    assert fit.stopped_step >= 2 * 5  # never before the encoder's warm-up has ended


def test_a_shorter_patience_is_replayed_from_the_curve(backbone: Path, jet_files: dict[str, Path]) -> None:
    """The curve up to a stop does not depend on the patience: replaying a patience-6 run's
    curve with patience 2 gives the selected and last step of a real patience-2 run, and the
    run records where its time went."""
    from jetfm.downstream.run import replay_stopping

    long, _ = _fit(backbone, jet_files, "finetune", lr=0.05, patience=6, frozen_steps=5)
    short, _ = _fit(backbone, jet_files, "finetune", lr=0.05, patience=2, frozen_steps=5)
    assert short.stop_reason == "patience" and short.stopped_step < long.stopped_step
    assert short.curve == long.curve[:len(short.curve)]
    assert replay_stopping(long.curve, 2, min_steps=2 * 5) == (short.best_step, short.stopped_step)
    assert replay_stopping(long.curve, 6, min_steps=2 * 5) == (long.best_step, long.stopped_step)
    assert 0.0 < short.validation_seconds and short.cache_seconds == 0.0
    fixed, _ = _fit(backbone, jet_files, "fixed", patience=2)
    assert fixed.cache_seconds > 0.0  # the frozen encoder's outputs, computed once


def test_small_training_sets_are_validated_at_least_every_ten_epochs() -> None:
    from jetfm.downstream.run import evaluation_interval

    assert evaluation_interval(100, 10_456, 128) == 100  # 81 steps an epoch: as configured
    assert evaluation_interval(100, 1000, 128) == 70  # 7 steps an epoch
    assert evaluation_interval(100, 100, 128) == 10  # the whole set in every batch
    assert evaluation_interval(5, 100, 16) == 5

