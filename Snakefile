# jetfm: Pythia8 → ROOT → jets (Parquet) → tokenizer → pre-training → benchmarks.
# Usage: snakemake --cores 8 results/btag_vertex_ari.json   (see README.md)


configfile: "config.yaml"


include: "workflow/rules/common.smk"
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
