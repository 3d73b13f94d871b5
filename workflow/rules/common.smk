# What the rules compute: the validated config, each job's params and input files, and the
# names the DAG is built from. Rule files hold rules only (snakemake --lint).
import glob
import json
import shlex
import sys
from pathlib import Path

from jetfm.config import (
    ConfigError,
    backbone_tokenizers,
    benchmark_jobs,
    benchmark_sample,
    shard_names,
    stage_params,
    training_ranks,
    validate_config,
)
from jetfm.contract import TRAINED_BENCHMARKS

try:
    _validated = validate_config(config)
except ConfigError as exc:
    sys.exit(f"jetfm: invalid configuration: {exc}")
config.clear()
config.update(_validated)

# one conda environment for every rule (relative to the rule files)
JETFM_ENV = "../../envs/jetfm.yaml"


def params_json(stage, **wildcards):
    """A rule's params: exactly the config it depends on, as the JSON its command takes."""
    return json.dumps(stage_params(config, stage, **wildcards), sort_keys=True)


def public_files(sample):
    """A public-dataset sample's files by shard name (the file's stem), from its `path` glob."""
    section = config["samples"][sample]
    files = sorted(glob.glob(section["path"]))
    if not files:
        raise WorkflowError(f"config key 'samples.{sample}.path': no files match {section['path']!r}")
    by_stem = {}
    for path in files:
        stem = Path(path).stem
        if stem in by_stem:
            raise WorkflowError(f"config key 'samples.{sample}.path': {path} and {by_stem[stem]} "
                                "have the same name; each file is one shard")
        by_stem[stem] = path
    return by_stem


def jet_shards(sample):
    """The jets stage's shards of a sample: its event shards, or its public-dataset files."""
    if config["samples"][sample]["source"] == "pythia":
        return shard_names(config, sample)
    return list(public_files(sample))


def jet_shard_input(wildcards):
    """One shard's input: its generated event file, or the public-dataset file of that name."""
    if config["samples"][wildcards.sample]["source"] == "pythia":
        return f"data/events/{wildcards.sample}/{wildcards.shard}.root"
    return public_files(wildcards.sample)[wildcards.shard]


def jet_split_shards(wildcards):
    return expand("data/jets/{sample}/{split}/{shard}.parquet", sample=wildcards.sample,
                  split=wildcards.split, shard=jet_shards(wildcards.sample))


def jet_split(sample, split):
    """What a consumer of a split reads: its manifest."""
    return f"data/jets/{sample}/{split}.json"


def pretrain_inputs(wildcards):
    sample = config["backbones"][wildcards.backbone]["sample"]
    inputs = {"train": jet_split(sample, "train"), "val": jet_split(sample, "val")}
    for task, tokenizer in backbone_tokenizers(config, wildcards.backbone).items():
        inputs[f"tokenizer_{task}"] = f"models/tokenizers/{tokenizer}.pt"
    return inputs


def launcher(ranks):
    """The command that starts a jetfm training command on ``ranks`` ({nodes, gpus_per_node}):
    `jetfm` itself for one rank, else `jetfm launch`, which picks torchrun on this machine and
    srun inside a SLURM job (docs/distributed.md)."""
    nodes, per_node = ranks["nodes"], ranks["gpus_per_node"]
    if nodes == 1 and per_node == 1:
        return "jetfm"
    return f"jetfm launch --nodes {nodes} --ranks-per-node {per_node} --"


def slurm_ranks(ranks, device):
    """What a training job asks SLURM for. One rank: one GPU, as `gres: gpu:1`, a string, which
    Snakemake does not add up over the jobs of a group, so that the runs the profile packs into
    one SLURM job share its one GPU (profiles/slurm/README.md). Several ranks are tasks that srun
    starts inside the job (the executor's `mpi` jobs), with a GPU each. `device: cpu` asks for
    no GPU at all (gloo ranks, or a CPU cluster)."""
    nodes, per_node = ranks["nodes"], ranks["gpus_per_node"]
    gpus = {} if device == "cpu" else {"gres": f"gpu:{per_node}"}
    if nodes * per_node == 1:
        return gpus
    tasks = {"tasks_per_node": per_node} if per_node > 1 else {"tasks": nodes}
    return {"nodes": nodes, "mpi": "srun", **tasks, **gpus}


def slurm_resource(ranks_of, key, cpu_only=False):
    """One SLURM resource (None: not asked for) of a training job whose ranks
    ``ranks_of(wildcards)`` gives; a ``cpu_only`` job (the VQ-VAE) asks for no GPU at all."""

    def value(wildcards):
        return slurm_ranks(ranks_of(wildcards), "cpu" if cpu_only else config["device"]).get(key)

    return value


def pretrain_ranks(wildcards):
    return training_ranks(config, wildcards.backbone)


def tokenizer_ranks(wildcards):
    return training_ranks(config, tokenizer=wildcards.tokenizer)


def downstream_ranks(wildcards):
    return training_ranks(config, benchmark=wildcards.benchmark)


def tokenizer_options(wildcards, input):
    pairs = [f"{key.removeprefix('tokenizer_')}={input[key]}" for key in input.keys()
             if key.startswith("tokenizer_")]
    return " ".join(f"--tokenizer {shlex.quote(pair)}" for pair in pairs)


DOWNSTREAM = config["downstream"]


BENCHMARK_NAMES = list(DOWNSTREAM)


TRAINED_NAMES = [b for b in BENCHMARK_NAMES if b in TRAINED_BENCHMARKS]


def sample_splits(wildcards, splits=("train", "test")):
    sample = benchmark_sample(config, wildcards.benchmark)
    return {split: jet_split(sample, split) for split in splits}


def downstream_inputs(wildcards):
    inputs = sample_splits(wildcards, ("train", "val", "test"))
    if wildcards.backbone in config["references"]:  # trained from scratch on the jets alone
        return inputs
    backbone = config["backbones"][wildcards.backbone]
    if wildcards.mode != "scratch":  # scratch needs the architecture only, not the weights
        inputs["checkpoint"] = f"models/backbones/{wildcards.backbone}.pt"
    elif backbone["method"] == "gpt":  # ... and a gpt backbone's trained tokenizer
        inputs["tokenizer"] = f"models/tokenizers/{backbone['gpt_tokenizer']}.pt"
    return inputs


def optional_input(name):
    """--name PATH when the job has that input, else nothing."""
    return lambda w, input: f"--{name} {shlex.quote(input[name])}" if name in input.keys() else ""


def benchmark_runs(wildcards):
    if wildcards.benchmark not in DOWNSTREAM:
        raise ValueError(f"unknown benchmark '{wildcards.benchmark}' (have: {', '.join(DOWNSTREAM)})")
    return [f"results/runs/{wildcards.benchmark}/baselines.json"] + [
        "results/runs/{benchmark}/{backbone}/{mode}/{point}/seed{seed}.json".format(
            benchmark=wildcards.benchmark, **job)
        for job in benchmark_jobs(config, wildcards.benchmark)
    ]


def generation_test(wildcards):
    return jet_split(config["backbones"][wildcards.backbone]["sample"], "test")


def generation_inputs(wildcards):
    # the tokenizer inside the checkpoint reconstructs the true jets: the ceiling, and the
    # reference the generated jets are compared with
    inputs = {"test": generation_test(wildcards), "checkpoint": f"models/backbones/{wildcards.backbone}.pt"}
    if wildcards.mode == "generated":
        inputs["generated"] = f"data/generated/{wildcards.backbone}/seed{wildcards.seed}.parquet"
    return inputs


def report_backbones():
    return sorted({b for section in DOWNSTREAM.values() for b in section["backbones"]})


def validation_event_file(wildcards):
    shards = shard_names(config, "btag")
    bb = [s for s in shards if s.startswith("bb-")]  # b-hadron lifetimes need b events
    return f"data/events/btag/{(bb or shards)[0]}.root"
