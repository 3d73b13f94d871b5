"""Pre-training on several ranks (DDP, gloo on the CPU): two ranks with half the batch each train
the model one process trains, a killed two-rank run resumes to the uninterrupted result, and one
rank's error ends the job with its message instead of a hang."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from jetfm.config import stage_params, validate_config
from jetfm.distributed import World, per_rank_batch, report_to_launcher, world_from_environment
from jetfm.pretrain import pretrain_backbone
from jetfm.pretrain.train import read_metrics

ENCODER = {"dim": 32, "layers": 2, "heads": 2, "registers": 2}
STEPS = 20


def _config() -> dict:
    decoder = {"dim": 16, "layers": 1, "heads": 1}
    return validate_config({
        "tokenizers": {"kmeans": {"k": 16, "n_fit": 5000, "iterations": 10},
                       "vqvae": {"kind": "vqvae", "codebook_size": 16, "latent_dim": 4, "dim": 16,
                                 "layers": 1, "heads": 2, "steps": 30, "batch_size": 64, "warmup_steps": 5}},
        "backbones": {
            "mpm-kmeans": {"tasks": ["kmeans", "id"], "encoder": ENCODER, "decoder": decoder},
            # every MPM task with its noise, and the generative backbone: all of them under DDP
            "mpm-all": {"tasks": ["id", "reg", "kmeans", "cnf", "cfm", "ssfm"], "encoder": ENCODER,
                        "decoder": decoder, "heads": {"cnf": {"blocks": 2, "hidden": 16},
                                                      "cfm": {"hidden": 32, "layers": 2},
                                                      "ssfm": {"dim": 16, "layers": 1, "heads": 2}}},
            "gpt": {"method": "gpt", "tasks": ["gpt"], "gpt_tokenizer": "vqvae", "conditional": True,
                    "class_dropout": 0.1, "encoder": ENCODER}},
        "pretrain": {"steps": STEPS, "batch_size": 64, "warmup_steps": 5, "lr": 2e-3, "threads": 1,
                     "checkpoint_every": 10, "log_every": 1, "eval_every": 10, "probe_every": 20,
                     "probe_jets": 200},
    })


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, jet_files: dict) -> dict:
    from jetfm.tokenize import fit_tokenizer

    out = tmp_path_factory.mktemp("ddp")
    cfg = _config()
    tokenizers = {}
    for name in ("kmeans", "vqvae"):
        tokenizers[name] = out / f"{name}.pt"
        fit_tokenizer(jet_files["train"], jet_files["val"], stage_params(cfg, "tokenize", tokenizer=name),
                      tokenizers[name], out / f"{name}.json", progress=False)
    params = stage_params(cfg, "pretrain", backbone="mpm-kmeans")
    one = out / "one"
    one.mkdir()
    pretrain_backbone(jet_files["train"], jet_files["val"], {"kmeans": tokenizers["kmeans"]}, params,
                      one / "b.pt", one / "b.csv", progress=False)
    return {"dir": out, "config": cfg, "params": params, "tokenizer": tokenizers["kmeans"],
            "tokenizers": {"kmeans": tokenizers["kmeans"], "gpt": tokenizers["vqvae"]}, "one": one}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _torchrun(setup: dict, jet_files: dict, out: Path, params: dict | None = None
              ) -> subprocess.CompletedProcess:
    """`jetfm pretrain` on two ranks, started as the workflow starts it."""
    out.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "--no-python", shutil.which("jetfm") or "jetfm", "--quiet", "pretrain",
           "--params", json.dumps(params or setup["params"]),
           "--backbone", "mpm-kmeans", "--train", str(jet_files["train"]), "--val", str(jet_files["val"]),
           "--tokenizer", f"kmeans={setup['tokenizer']}", "--threads", "1",
           "--out", str(out / "b.pt"), "--metrics", str(out / "b.csv")]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def two_ranks(setup: dict, jet_files: dict) -> Path:
    out = setup["dir"] / "two"
    done = _torchrun(setup, jet_files, out)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_two_ranks_with_half_the_batch_train_what_one_process_trains(setup: dict, two_ranks: Path) -> None:
    one, two = read_metrics(setup["one"] / "b.csv"), read_metrics(two_ranks / "b.csv")
    steps = one["step"] > 0
    assert steps.sum() == STEPS and np.array_equal(one["step"], two["step"])
    # the logged loss of every step is the global batch's, as one process computes it
    np.testing.assert_allclose(two["loss"][steps], one["loss"][steps], rtol=1e-5)
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], rtol=1e-5, equal_nan=True)
    a = torch.load(setup["one"] / "b.pt", weights_only=False)
    b = torch.load(two_ranks / "b.pt", weights_only=False)
    assert b["ranks"] == 2 and a["ranks"] == 1
    for key, value in a["model_state"].items():
        torch.testing.assert_close(b["model_state"][key], value, rtol=0, atol=1e-6, msg=key)
    assert not Path(f"{two_ranks / 'b.pt'}.resume").exists()


def test_two_ranks_with_compiled_stacks_train_what_one_eager_process_trains(setup: dict, jet_files: dict
                                                                            ) -> None:
    """config `compile: true` under DDP: each rank compiles its stacks before DDP wraps them."""
    out = setup["dir"] / "two-compiled"
    done = _torchrun(setup, jet_files, out, setup["params"] | {"compile": True})
    assert done.returncode == 0, done.stdout + done.stderr
    one, two = read_metrics(setup["one"] / "b.csv"), read_metrics(out / "b.csv")
    steps = one["step"] > 0
    np.testing.assert_allclose(two["loss"][steps], one["loss"][steps], rtol=1e-4)
    a = torch.load(setup["one"] / "b.pt", weights_only=False)["model_state"]
    b = torch.load(out / "b.pt", weights_only=False)["model_state"]
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=0, atol=1e-5, msg=key)


class _Stop(RuntimeError):
    pass


def _rank_main(rank: int, port: int, setup: dict, jet_files: dict, out: Path, stop_at: int | None,
               failing_ranks: tuple[int, ...], params: dict | None) -> None:
    os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}

    def on_step(step: int) -> None:
        if step == stop_at and rank in failing_ranks:
            raise _Stop(f"rank {rank} stopped at step {step}")

    params = params or setup["params"]
    tokenizers = {task: setup["tokenizers"][task] for task in params["tokenizers"]}
    # as under torchrun: each rank's exception goes to its error file, the launcher names the first
    os.environ["TORCHELASTIC_ERROR_FILE"] = str(out / f"error-rank{rank}.json")
    try:
        pretrain_backbone(jet_files["train"], jet_files["val"], tokenizers, params, out / "b.pt",
                          out / "b.csv", progress=False, on_step=on_step, world=World(rank, 2, rank))
    except Exception as exc:
        report_to_launcher(exc)
        raise


def _spawn(setup: dict, jet_files: dict, out: Path, stop_at: int | None = None,
           failing_ranks: tuple[int, ...] = (0, 1), params: dict | None = None) -> None:
    out.mkdir(exist_ok=True)
    mp.spawn(_rank_main, args=(_free_port(), setup, jet_files, out, stop_at, failing_ranks, params), nprocs=2)


@pytest.mark.parametrize("name", ["mpm-all", "gpt"])
def test_every_task_trains_on_two_ranks(name: str, setup: dict, jet_files: dict) -> None:
    params = stage_params(setup["config"], "pretrain", backbone=name)
    params["pretrain"] |= {"steps": 6, "eval_every": 3, "probe_every": 6}
    out = setup["dir"] / name
    _spawn(setup, jet_files, out, params=params)
    blob = torch.load(out / "b.pt", weights_only=False)
    assert blob["ranks"] == 2 and blob["method"] == params["backbone"]["method"]
    metrics = read_metrics(out / "b.csv")
    assert np.isfinite(metrics["loss"][1:]).all() and np.isfinite(metrics["val_loss"][-1])


def test_killed_two_rank_run_resumes_to_the_uninterrupted_result(setup: dict, jet_files: dict,
                                                                  two_ranks: Path) -> None:
    out = setup["dir"] / "killed"
    with pytest.raises(mp.ProcessRaisedException, match="stopped at step 15"):
        _spawn(setup, jet_files, out, stop_at=15)
    state = torch.load(out / "b.pt.resume", weights_only=False)
    assert state["step"] == 10 and len(state["streams"]) == 2
    _spawn(setup, jet_files, out)
    a = torch.load(two_ranks / "b.pt", weights_only=False)
    b = torch.load(out / "b.pt", weights_only=False)
    for key, value in a["model_state"].items():
        assert torch.equal(b["model_state"][key], value), key
    np.testing.assert_array_equal(read_metrics(out / "b.csv")["loss"],
                                  read_metrics(two_ranks / "b.csv")["loss"])


def test_an_error_in_one_rank_fails_the_job_with_its_message(setup: dict, jet_files: dict) -> None:
    out = setup["dir"] / "failing"
    start = time.perf_counter()
    with pytest.raises(mp.ProcessRaisedException):
        _spawn(setup, jet_files, out, stop_at=3, failing_ranks=(1,))
    assert time.perf_counter() - start < 120  # rank 0 waits in a collective: stopped, not hanging
    assert not (out / "b.pt").exists()
    # what the launcher reports: rank 1's own message, and at most rank 0's lost connection to it
    errors = {f.stem: json.loads(f.read_text())["message"] for f in out.glob("error-rank*.json")}
    assert "rank 1 stopped at step 3" in errors["error-rank1"]["message"]
    assert "error-rank0" not in errors or "closed by peer" in errors["error-rank0"]["message"]
    if "error-rank0" in errors:  # in this order (the launcher names the earliest as the root cause)
        assert int(errors["error-rank1"]["extraInfo"]["timestamp"]) <= \
            int(errors["error-rank0"]["extraInfo"]["timestamp"])


def test_world_comes_from_the_launchers_environment() -> None:
    assert world_from_environment({}) == World()
    world = world_from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (world.rank, world.size, world.local_rank, world.main) == (3, 4, 1, False)
    with pytest.raises(RuntimeError, match="RANK"):
        world_from_environment({"WORLD_SIZE": "2"})
    with pytest.raises(RuntimeError, match="outside"):
        world_from_environment({"RANK": "2", "WORLD_SIZE": "2"})
    assert per_rank_batch(256, World(0, 4), "pretrain.batch_size") == 64
    with pytest.raises(ValueError, match=r"pretrain\.batch_size = 100 .* 3 ranks"):
        per_rank_batch(100, World(0, 3), "pretrain.batch_size")


def _downstream_params(setup: dict, benchmark: str, mode: str) -> dict:
    heads = {"btag_ood_accuracy": {"head_layers": 1, "head_heads": 2, "head_ff_mult": 1.0},
             "btag_vertex_ari": {"head_hidden": 16, "head_embed": 8},
             "btag_track_id": {"head_hidden": 16}}[benchmark]
    cfg = validate_config(setup["config"] | {"downstream": {benchmark: {
        "steps": 24, "batch_size": 32, "eval_every": 8, "patience": 10, "frozen_steps": 4, **heads}}})
    return stage_params(cfg, "downstream", benchmark=benchmark, backbone="mpm-kmeans", mode=mode,
                        point="all", seed="0")


def _downstream_rank(rank: int, port: int, params: dict, jet_files: dict, checkpoint: Path,
                     out: Path) -> None:
    from jetfm.downstream.run import run_benchmark

    os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    run_benchmark(params, jet_files["train"], jet_files["val"], jet_files["test"], checkpoint, out,
                  progress=False, world=World(rank, 2, rank))


@pytest.mark.parametrize(("benchmark", "mode"), [("btag_ood_accuracy", "finetune"),
                                                 ("btag_vertex_ari", "scratch"), ("btag_track_id", "fixed")])
def test_two_downstream_ranks_train_what_one_process_trains(benchmark: str, mode: str, setup: dict,
                                                             jet_files: dict) -> None:
    """Jets, track pairs or tracks as the loss's terms; a fine-tuned encoder frozen at first; a
    frozen encoder whose outputs are cached."""
    from jetfm.downstream.run import run_benchmark
    from jetfm.results import read_result

    params = _downstream_params(setup, benchmark, mode)
    checkpoint = setup["one"] / "b.pt"
    out = setup["dir"] / f"{benchmark}-{mode}"
    out.mkdir()
    run_benchmark(params, jet_files["train"], jet_files["val"], jet_files["test"], checkpoint,
                  out / "one.json", progress=False)
    mp.spawn(_downstream_rank, args=(_free_port(), params, jet_files, checkpoint, out / "two.json"), nprocs=2)
    one, two = (read_result(out / f"{n}.json")["rows"][0] for n in ("one", "two"))
    assert one["ranks"] == 1 and two["ranks"] == 2
    assert [p["step"] for p in one["learning_curve"]] == [p["step"] for p in two["learning_curve"]]
    for key in ("train_loss", "val_loss"):
        np.testing.assert_allclose([p[key] for p in two["learning_curve"]],
                                   [p[key] for p in one["learning_curve"]], rtol=1e-5)
    assert two["best_step"] == one["best_step"]
    assert two["value"] == pytest.approx(one["value"], abs=1e-3)


def _vqvae_rank(rank: int, port: int, params: dict, jet_files: dict, out: Path) -> None:
    from jetfm.tokenize import fit_tokenizer

    os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    tokenizer = fit_tokenizer(jet_files["train"], jet_files["val"], params, out / "vqvae.pt",
                              out / "vqvae.json", progress=False, world=World(rank, 2, rank))
    torch.save(tokenizer.model.quantizer.codebook, out / f"codebook-rank{rank}.pt")


def test_vqvae_trains_on_two_ranks_with_one_codebook(setup: dict, jet_files: dict) -> None:
    """Gradients averaged by DDP, the codebook's EMA and dead-code samples summed by the quantiser's
    library: both ranks end with the same codebook, rank 0 writes the tokenizer."""
    from jetfm.tokenize import load_tokenizer

    params = stage_params(setup["config"], "tokenize", tokenizer="vqvae")
    out = setup["dir"] / "vqvae-two"
    out.mkdir()
    mp.spawn(_vqvae_rank, args=(_free_port(), params, jet_files, out), nprocs=2)
    codebooks = [torch.load(out / f"codebook-rank{r}.pt") for r in (0, 1)]
    assert torch.equal(codebooks[0], codebooks[1])
    tokenizer = load_tokenizer(out / "vqvae.pt")
    assert torch.equal(tokenizer.model.quantizer.codebook, codebooks[0])
    fit = tokenizer.info["fit"]
    assert fit["loss_end"] < fit["loss_start"]
    assert json.loads((out / "vqvae.json").read_text())["quality"]["utilisation"] > 0.2


def test_errors_and_reports_name_the_rank_of_any_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchrun's variables or, under `jetfm launch` in SLURM, srun's: rank 1 names itself and
    does not report (rank 0 does); a process started alone names no rank."""
    from jetfm.cli import _rank, _who

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "JETFM_LAUNCHER"):
        monkeypatch.delenv(name, raising=False)
    assert (_who("pretrain"), _rank()) == ("jetfm pretrain", 0)
    monkeypatch.setenv("JETFM_LAUNCHER", "srun")
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    assert (_who("pretrain"), _rank()) == ("jetfm pretrain (rank 1 of 2)", 1)
    monkeypatch.delenv("JETFM_LAUNCHER")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert (_who("downstream"), _rank()) == ("jetfm downstream (rank 3 of 4)", 3)
