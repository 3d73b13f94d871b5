# jetfm: Pythia8 → ROOT → jets (Parquet) → tokenizer → pre-training → benchmarks.
# Usage: snakemake --cores 8 results/btag_vertex_ari.json   (see README.md)
import glob
import json
import sys

from jetfm.config import ConfigError, shard_names, stage_params, validate_config

configfile: "config.yaml"

try:
    _validated = validate_config(config)
except ConfigError as exc:
    sys.exit(f"jetfm: invalid configuration: {exc}")
config.clear()
config.update(_validated)


def params_json(stage, **wildcards):
    """A rule's params: exactly the config it depends on, as the JSON its command takes."""
    return json.dumps(stage_params(config, stage, **wildcards), sort_keys=True)


include: "workflow/rules/generate.smk"
include: "workflow/rules/jets.smk"
include: "workflow/rules/tokenize.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/downstream.smk"
include: "workflow/rules/generation.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/validate.smk"


rule all:
    input:
        expand("results/{benchmark}.json", benchmark=BENCHMARK_NAMES),
        "results/report.html",
        "results/validation/btag.json",
        "results/validation/boosted.json",
