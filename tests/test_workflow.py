"""The tiny configuration end to end through Snakemake, and its caching behaviour."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from jetfm.config import load_config, stage_params
from jetfm.contract import BENCHMARKS
from jetfm.jets import read_jet_table
from jetfm.jets.jet_sets import read_metadata
from jetfm.results import read_result
from tests.conftest import REPO

pytestmark = pytest.mark.workflow
TARGET = "results/btag_vertex_ari.json"
VALIDATION = "results/validation/btag.json"
BOOSTED_VALIDATION = "results/validation/boosted.json"
MPM_V1 = "models/backbones/mpm-v1.pt"
REPORT = "results/report.html"


def _snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900,
                          env=os.environ | {"PYTHONUNBUFFERED": "1"})
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def _planned_jobs(output: str) -> dict[str, int]:
    """Rule → job count from a dry run's 'Job stats' table."""
    stats = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stats, re.M)}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("workflow")
    for item in ("Snakefile", "config.yaml", "config", "workflow", "envs"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    _snakemake(work, "all", MPM_V1, "--configfile", "config/tiny.yaml")
    return work


def test_result_file(workdir: Path) -> None:
    result = read_result(workdir / TARGET)
    assert result["benchmark"] == "btag_vertex_ari" and result["metric"] == "adjusted_rand_index"
    rows = {(r["backbone"], r["mode"]): r for r in result["rows"]}
    assert set(rows) == {("baseline-one-vertex", "baseline"), ("baseline-own-vertex", "baseline"),
                         ("mpm-kmeans", "scratch"), ("mpm-kmeans", "fixed"), ("mpm-kmeans", "finetune")}
    for row in rows.values():
        assert -0.5 <= row["value"] <= 1.0
        assert set(row["bins"]) <= {"0", "1", "2", "3+"}
    # Jets without secondary vertices are perfectly described by "one vertex".
    assert rows[("baseline-one-vertex", "baseline")]["bins"]["0"] == 1.0
    assert rows[("baseline-own-vertex", "baseline")]["bins"]["0"] == 0.0
    assert (workdir / "models/backbones/mpm-kmeans.metrics.csv").exists()


def test_every_benchmark_plot_and_the_report(workdir: Path) -> None:
    modes = {"btag_vertex_ari": {"scratch", "fixed", "finetune"}, "btag_track_id": {"fixed", "finetune"},
             "btag_ood_accuracy": {"fixed"}, "jetclass_accuracy": {"scratch", "fixed"},
             "cwola_sic": {"fixed", "supervised"}, "jet_generation": {"generated", "reconstructed"}}
    # the ParT reference beside the backbones in every jet classification, trained like them
    reference_modes = {"btag_ood_accuracy": {"scratch"}, "jetclass_accuracy": {"scratch"},
                       "cwola_sic": {"scratch", "supervised"}}
    for benchmark in BENCHMARKS:
        result = read_result(workdir / f"results/{benchmark}.json")
        trained = [r for r in result["rows"] if r["mode"] != "baseline" and r["backbone"] != "part"]
        assert {r["mode"] for r in trained} == modes[benchmark], benchmark
        part = [r for r in result["rows"] if r["backbone"] == "part"]
        assert {r["mode"] for r in part} == reference_modes.get(benchmark, set()), benchmark
        for row in trained + part:
            if benchmark != "jet_generation":
                assert row["best_step"] <= row["stopped_step"] and row["learning_curve"], benchmark
        if benchmark != "jet_generation":
            assert all(c["check"] in ("more_jets_no_worse", "supervised_at_least_weak")
                       for c in result["checks"]), benchmark
        assert any(r["mode"] == "baseline" for r in result["rows"]), benchmark
        assert (workdir / f"results/plots/{benchmark}.png").read_bytes()[:4] == b"\x89PNG"
    sweep = read_result(workdir / "results/jetclass_accuracy.json")
    points = {(s["backbone"], s["mode"], s["n_train"]): s["n_seeds"] for s in sweep["summary"]
              if s["mode"] != "baseline"}
    assert len(points) == 10 and set(points.values()) == {2} and ("part", "scratch", 40) in points
    cwola = read_result(workdir / "results/cwola_sic.json")
    assert {r["n_signal"] for r in cwola["rows"] if r["mode"] == "fixed"} == {0, 5}
    html = (workdir / REPORT).read_text()
    assert all(b in html for b in BENCHMARKS) and html.count("data:image/png;base64,") >= len(BENCHMARKS)


def test_summary_command_prints_every_benchmark(workdir: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "jetfm.cli", "summary",
                           *[f"results/{b}.json" for b in BENCHMARKS]], cwd=workdir, capture_output=True,
                          text=True, check=True)
    assert all(b in proc.stdout for b in BENCHMARKS)


def test_adding_a_sweep_point_runs_only_the_new_jobs(workdir: Path) -> None:
    tiny = yaml.safe_load((workdir / "config/tiny.yaml").read_text())
    tiny["downstream"]["jetclass_accuracy"]["train_sizes"] = [40, 20, None]
    (workdir / "config/sweep.yaml").write_text(yaml.safe_dump(tiny))
    dry = _snakemake(workdir, "all", "--configfile", "config/sweep.yaml", "--dry-run")
    # two backbones (mpm-boosted, omnijet) × two modes × two seeds and ParT × two seeds at the
    # new point, then the benchmark's file, its plot, the report
    assert _planned_jobs(dry.stdout) == {"downstream": 10, "aggregate": 1, "plot": 1, "report": 1, "all": 1}


def test_jet_generation_result_and_the_generated_jets(workdir: Path) -> None:
    result = read_result(workdir / "results/jet_generation.json")
    assert result["metric"] == "mean_w1_over_std"
    rows = {(r["backbone"], r["mode"]): r for r in result["rows"]}
    assert set(rows) == {("omnijet", "generated"), ("omnijet", "reconstructed"),
                         ("baseline-truth", "baseline")}
    test = read_jet_table(workdir / "data/jets/boosted/test.json")
    generated = read_jet_table(workdir / "data/generated/omnijet/seed0.parquet")
    assert generated.n_jets == test.n_jets // 2  # as many as the second half of the test jets
    generated_meta = read_metadata(workdir / "data/generated/omnijet/seed0.parquet")
    assert generated_meta["generated"]["backbone"] == "omnijet"
    for row in rows.values():
        assert row["value"] >= 0 and {"jet_mass", "jet_pt", "n_constituents", "tau21", "tau32", "d2"} <= set(
            row["kl"])
        assert row["n_reference"] == (test.n_jets + 1) // 2
    # omnijet is also a transfer backbone of jetclass_accuracy, in both of its modes
    sweep = read_result(workdir / "results/jetclass_accuracy.json")
    assert {r["mode"] for r in sweep["rows"] if r["backbone"] == "omnijet"} == {"scratch", "fixed"}


def test_changing_the_sampling_temperature_reruns_only_generation(workdir: Path) -> None:
    tiny = yaml.safe_load((workdir / "config/tiny.yaml").read_text())
    tiny["downstream"]["jet_generation"]["temperature"] = 0.9
    (workdir / "config/hot.yaml").write_text(yaml.safe_dump(tiny))
    dry = _snakemake(workdir, "results/jet_generation.json", "--configfile", "config/hot.yaml", "--dry-run")
    # neither the tokenizer, the backbone, the reconstruction nor the floor is redone
    assert _planned_jobs(dry.stdout) == {"generate_jets": 1, "evaluate_generation": 1, "aggregate": 1}


def test_validation_target(workdir: Path) -> None:
    validation = json.loads((workdir / VALIDATION).read_text())
    assert set(validation["flavours"]) <= {"light", "c", "b"} and validation["n_jets"] > 0
    assert all((workdir / "results/validation" / name).exists() for name in validation["figures"])


def test_boosted_sample_and_its_validation(workdir: Path) -> None:
    validation = json.loads((workdir / BOOSTED_VALIDATION).read_text())
    assert len(list(workdir.glob("data/events/boosted/*.root"))) == 12
    assert validation["n_jets"] > 20
    populated = [name for name, c in validation["classes"].items() if c["n_jets"]]
    assert len(populated) >= 8  # 25 events per class: the rarest classes may have no jet
    assert all((workdir / "results/validation" / name).exists() for name in validation["figures"])


def test_tokenizer_reports_and_the_mpm_v1_backbone(workdir: Path) -> None:
    import torch

    for name, kind in (("kmeans", "kmeans"), ("vqvae", "vqvae")):
        report = json.loads((workdir / f"models/tokenizers/{name}.json").read_text())
        assert report["kind"] == kind and 0 < report["quality"]["utilisation"] <= 1
        assert (workdir / f"models/tokenizers/{name}.png").stat().st_size > 0
    blob = torch.load(workdir / MPM_V1, weights_only=False)
    assert blob["method"] == "mpm-v1" and blob["tasks"] == ["vqvae"]
    assert blob["n_tokens"] == {"vqvae": 32}
    assert (workdir / "models/backbones/mpm-v1.metrics.png").stat().st_size > 0


def test_changing_the_vqvae_reruns_only_its_tokenizer_and_backbone(workdir: Path) -> None:
    tiny = yaml.safe_load((workdir / "config/tiny.yaml").read_text())
    tiny["tokenizers"]["vqvae"]["steps"] = 41
    (workdir / "config/vq.yaml").write_text(yaml.safe_dump(tiny))
    dry = _snakemake(workdir, TARGET, MPM_V1, "--configfile", "config/vq.yaml", "--dry-run")
    assert _planned_jobs(dry.stdout) == {"tokenize": 1, "pretrain": 1}


def test_public_dataset_source_replaces_generation(workdir: Path) -> None:
    """source: jetclass-root converts the files its path matches; no Pythia job is planned."""
    from tests.test_readers import write_jetclass

    data = workdir / "public data"  # a space in the path: every path in every rule is quoted
    data.mkdir(exist_ok=True)
    write_jetclass(data)
    config = {"samples": {"boosted": {"source": "jetclass-root", "path": "public data/*.root"}}}
    (workdir / "config/public.yaml").write_text(yaml.safe_dump(config))
    splits = [f"data/jets/boosted/{s}.json" for s in ("train", "val", "test")]
    dry = _snakemake(workdir, *splits, "--configfile", "config/tiny.yaml", "config/public.yaml", "--dry-run")
    assert _planned_jobs(dry.stdout) == {"jets": 1, "jet_manifest": 3}  # one job per public file
    _snakemake(workdir, *splits, "--configfile", "config/tiny.yaml", "config/public.yaml")
    tables = [read_jet_table(workdir / split) for split in splits]
    assert sum(t.n_jets for t in tables) == 3  # the three jets of the test file
    assert read_metadata(workdir / splits[0])["config"]["source"] == "jetclass-root"


@pytest.mark.parametrize(("rule", "wildcards"), [("pretrain", {"backbone": "mpm-kmeans"}),
                                                 ("downstream", {"benchmark": "jetclass_accuracy",
                                                                 "backbone": "mpm-boosted", "mode": "fixed",
                                                                 "point": "n40", "seed": "1"})])
def test_the_dag_and_the_command_line_read_one_config(workdir: Path, rule: str, wildcards: dict) -> None:
    """`snakemake --configfile X` and `jetfm <stage> --config X` merge X over the same base."""
    proc = _snakemake(workdir, "all", "--configfile", "config/tiny.yaml", "--dry-run", "--forceall",
                      "--printshellcmds")
    lines = [line.removeprefix("Shell command: ") for line in (proc.stdout + proc.stderr).splitlines()]
    commands = [shlex.split(line) for line in lines if line.startswith(f"jetfm {rule} ")]
    dag = [json.loads(c[c.index("--params") + 1]) for c in commands
           if all(c[c.index(f"--{key}") + 1] == value for key, value in wildcards.items())]
    assert len(dag) == 1, f"no single {rule} job for {wildcards}"
    cli = stage_params(load_config(workdir / "config/tiny.yaml"), rule, **wildcards)
    assert dag[0] == json.loads(json.dumps(cli))


def test_training_ranks_from_config_choose_the_launcher(tmp_path: Path) -> None:
    """pretrain.resources: one rank runs jetfm, several on a node torchrun, several nodes srun +
    torchrun; a backbone's own resources win; each rank gets pretrain.threads."""
    for item in ("Snakefile", "config.yaml", "config", "workflow", "envs"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    (tmp_path / "ranks.yaml").write_text(yaml.safe_dump({
        "pretrain": {"threads": 3, "resources": {"gpus_per_node": 2}},
        "backbones": {"one": {"resources": {"gpus_per_node": 1}}, "two": {},
                      "many": {"resources": {"nodes": 2, "gpus_per_node": 4}}},
        "downstream": {"btag_ood_accuracy": {"threads": 3, "resources": {"gpus_per_node": 2}}}}))
    run = "results/runs/btag_ood_accuracy/mpm-boosted/scratch/all/seed0.json"
    targets = [f"models/backbones/{name}.pt" for name in ("one", "two", "many")] + [run]
    proc = _snakemake(tmp_path, *targets, "--configfile", "config/tiny.yaml", "ranks.yaml", "--dry-run",
                      "--printshellcmds")
    lines = [line.removeprefix("Shell command: ") for line in proc.stdout.splitlines()]
    commands = {c[c.index("--backbone") + 1]: c for c in map(shlex.split, lines)
                if "--backbone" in c and "pretrain" in c}
    downstream = [c for c in map(shlex.split, lines) if "--benchmark" in c]
    assert len(downstream) == 1, downstream
    assert downstream[0][:8] == ["jetfm", "launch", "--nodes", "1", "--ranks-per-node", "2", "--",
                                 "downstream"]
    assert downstream[0][downstream[0].index("--threads") + 1] == "3"
    assert commands["one"][:2] == ["jetfm", "pretrain"]
    assert commands["two"][:7] == ["jetfm", "launch", "--nodes", "1", "--ranks-per-node", "2", "--"]
    assert commands["many"][:7] == ["jetfm", "launch", "--nodes", "2", "--ranks-per-node", "4", "--"]
    assert all(c[c.index("--threads") + 1] == "3" for c in commands.values())
    # what SLURM is asked for: srun starts the tasks of several ranks, one GPU per rank
    blocks = [b for b in proc.stdout.split("rule ") if b.startswith("pretrain:")]
    resources = {re.search(r"backbone=(\w+)", b).group(1): re.search(r"resources: (.*)", b).group(1)
                 for b in blocks}
    assert "mpi=" not in resources["one"] and "nodes=" not in resources["one"]
    assert "mpi=srun" in resources["two"] and "tasks_per_node=2" in resources["two"]
    assert "cpus_per_task=3" in resources["two"] and "nodes=2" in resources["many"]
    # tiny.yaml trains on the CPU: no job asks for a GPU, one rank or several gloo ranks
    assert not any("gpu" in r for r in resources.values()), resources
    # on a GPU (device auto): a GPU per rank; one rank asks for it as a gres string, which a job
    # group does not add up
    (tmp_path / "gpu.yaml").write_text("device: auto\n")
    proc = _snakemake(tmp_path, *targets, "--configfile", "config/tiny.yaml", "ranks.yaml", "gpu.yaml",
                      "--dry-run")
    blocks = [b for b in proc.stdout.split("rule ") if b.startswith("pretrain:")]
    resources = {re.search(r"backbone=(\w+)", b).group(1): re.search(r"resources: (.*)", b).group(1)
                 for b in blocks}
    assert "gres=gpu:1" in resources["one"] and "gpu=" not in resources["one"], resources["one"]
    assert "gres=gpu:2" in resources["two"] and "gres=gpu:4" in resources["many"], resources
    # the params, hence the model, do not depend on the ranks
    params = {name: json.loads(c[c.index("--params") + 1])["pretrain"] for name, c in commands.items()}
    assert "resources" not in params["two"] and params["one"] == params["two"]


def test_adding_a_shard_runs_only_its_jobs_and_descendants(workdir: Path, tmp_path: Path) -> None:
    """One more bb shard: one generate and one jets job, the btag manifests and what reads
    them; no other shard is re-made and no jet moves between splits."""
    workdir = Path(shutil.copytree(workdir, tmp_path / "copy", symlinks=True))  # the others' stays as it is
    tiny = yaml.safe_load((workdir / "config/tiny.yaml").read_text())
    tiny["samples"]["btag"]["generate"]["shards"]["bb"] += 1
    (workdir / "config/more.yaml").write_text(yaml.safe_dump(tiny))
    splits = [f"data/jets/btag/{s}.json" for s in ("train", "val", "test")]
    # (the btag targets: an earlier test left the boosted manifests on a public-dataset source)
    dry = _snakemake(workdir, TARGET, VALIDATION, *splits, "--configfile", "config/more.yaml", "--dry-run")
    planned = _planned_jobs(dry.stdout)
    assert planned["generate"] == 1 and planned["jets"] == 1 and planned["jet_manifest"] == 3
    assert "output: data/events/btag/bb-001.root" in dry.stdout
    assert {"tokenize", "pretrain", "downstream", "aggregate"} <= set(planned)  # the btag descendants

    old = {split: read_jet_table(workdir / split) for split in splits}
    shards = list(workdir.glob("data/jets/btag/*/*.parquet")) + list(workdir.glob("data/events/btag/*.root"))
    before = {p: p.stat().st_mtime_ns for p in shards}
    _snakemake(workdir, *splits, "--configfile", "config/more.yaml")
    assert {p: p.stat().st_mtime_ns for p in shards} == before
    for split in splits:
        new = read_jet_table(workdir / split)
        kept = new.source != "bb-001"
        assert (~kept).sum() > 0 or split.endswith("val.json")  # the new shard's jets
        np.testing.assert_array_equal(new.jets["jet_pt"][kept], old[split].jets["jet_pt"])


def test_nothing_to_do_on_a_second_run(workdir: Path) -> None:
    proc = _snakemake(workdir, TARGET, "--configfile", "config/tiny.yaml", "--dry-run")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changing_pretraining_reruns_only_its_descendants(workdir: Path) -> None:
    tiny = yaml.safe_load((workdir / "config/tiny.yaml").read_text())
    tiny["pretrain"]["lr"] = 2.0e-3
    (workdir / "config/changed.yaml").write_text(yaml.safe_dump(tiny))
    args = (TARGET, "--configfile", "config/changed.yaml")
    dry = _snakemake(workdir, *args, "--dry-run")
    assert _planned_jobs(dry.stdout) == {"pretrain": 1, "downstream": 2, "aggregate": 1}

    cached = [*workdir.glob("data/events/btag/*.root"), *workdir.glob("data/jets/btag/*/*.parquet"),
              *workdir.glob("data/jets/btag/*.json"),
              workdir / "models/tokenizers/kmeans.pt",
              workdir / "results/runs/btag_vertex_ari/mpm-kmeans/scratch/all/seed0.json"]
    before = {p: p.stat().st_mtime_ns for p in cached}
    backbone = workdir / "models/backbones/mpm-kmeans.pt"
    old_backbone = backbone.stat().st_mtime_ns
    _snakemake(workdir, *args)
    assert {p: p.stat().st_mtime_ns for p in cached} == before
    assert backbone.stat().st_mtime_ns > old_backbone


def test_bad_config_fails_at_start_naming_the_key(workdir: Path) -> None:
    (workdir / "config/bad.yaml").write_text("pretrain:\n  stpes: 10\n")
    proc = _snakemake(workdir, TARGET, "--configfile", "config/bad.yaml", "--dry-run", check=False)
    assert proc.returncode != 0
    assert "unknown config key 'pretrain.stpes'" in proc.stdout + proc.stderr


def test_workflow_is_lint_clean() -> None:
    """Rules only in the rule files, helpers in common.smk, a conda environment for every rule."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Lints for" not in proc.stdout + proc.stderr
