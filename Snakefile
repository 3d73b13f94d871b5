# jetfm: Pythia8 → ROOT → jets (Parquet) → tokenizer → pre-training → benchmarks.
# Usage: snakemake --cores 8 results/btag_vertex_ari.json   (see README.md)


# config.yaml is the default configuration. A --configfile replaces it rather than being merged
# over it, so that `snakemake --configfile X` and `jetfm <stage> --config X` see the same config:
# X over the schema's defaults.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/events.smk"
include: "workflow/rules/jets.smk"
include: "workflow/rules/tokenize.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/downstream.smk"
include: "workflow/rules/jet_generation.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/validate.smk"


rule all:
    input:
        expand("results/{benchmark}.json", benchmark=BENCHMARK_NAMES),
        "results/report.html",
        "results/validation/btag.json",
        "results/validation/boosted.json",
