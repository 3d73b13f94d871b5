from jetfm.config import TRAINED_BENCHMARKS, benchmark_jobs, benchmark_sample

DOWNSTREAM = config["downstream"]
BENCHMARK_NAMES = list(DOWNSTREAM)
TRAINED_NAMES = [b for b in BENCHMARK_NAMES if b in TRAINED_BENCHMARKS]


def sample_splits(wildcards, splits=("train", "test")):
    sample = benchmark_sample(config, wildcards.benchmark)
    return {split: f"data/jets/{sample}/{split}.parquet" for split in splits}


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
    return lambda w, input: f"--{name} {input[name]}" if name in input.keys() else ""


rule downstream:
    """One benchmark run: backbone × mode × sweep point × seed → per-run JSON."""
    input:
        unpack(downstream_inputs),
    output:
        "results/runs/{benchmark}/{backbone}/{mode}/{point}/seed{seed}.json",
    wildcard_constraints:
        benchmark="|".join(TRAINED_NAMES),
        mode="scratch|fixed|finetune|supervised",
        point=r"all|n\d+|s\d+",
        seed=r"\d+",
    params:
        p=lambda w: params_json("downstream", benchmark=w.benchmark, backbone=w.backbone, mode=w.mode,
                                point=w.point, seed=w.seed),
        checkpoint=optional_input("checkpoint"),
        tokenizer=optional_input("tokenizer"),
    log:
        "logs/downstream/{benchmark}/{backbone}-{mode}-{point}-seed{seed}.log",
    benchmark:
        "logs/benchmarks/downstream/{benchmark}/{backbone}-{mode}-{point}-seed{seed}.tsv",
    threads: lambda w: DOWNSTREAM[w.benchmark]["threads"]
    resources:
        mem_mb=6000,
        runtime=240,
    shell:
        "jetfm downstream --params {params.p:q} --benchmark {wildcards.benchmark} "
        "--backbone {wildcards.backbone} --mode {wildcards.mode} --point {wildcards.point} "
        "--seed {wildcards.seed} --train {input.train} --val {input.val} --test {input.test} {params.checkpoint} "
        "{params.tokenizer} "
        "--threads {threads} --out {output} 2>&1 | tee {log}"


rule baselines:
    """The trivial answers of one benchmark (majority class, one vertex per jet, random classifier,
    a second true sample for jet generation)."""
    input:
        unpack(sample_splits),
    output:
        "results/runs/{benchmark}/baselines.json",
    wildcard_constraints:
        benchmark="|".join(BENCHMARK_NAMES),
    params:
        p=lambda w: params_json("downstream_baselines", benchmark=w.benchmark),
    log:
        "logs/baselines/{benchmark}.log",
    benchmark:
        "logs/benchmarks/baselines/{benchmark}.tsv",
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "jetfm baselines --params {params.p:q} --benchmark {wildcards.benchmark} --train {input.train} "
        "--test {input.test} --out {output} 2>&1 | tee {log}"


def benchmark_runs(wildcards):
    if wildcards.benchmark not in DOWNSTREAM:
        raise ValueError(f"unknown benchmark '{wildcards.benchmark}' (have: {', '.join(DOWNSTREAM)})")
    return [f"results/runs/{wildcards.benchmark}/baselines.json"] + [
        "results/runs/{benchmark}/{backbone}/{mode}/{point}/seed{seed}.json".format(
            benchmark=wildcards.benchmark, **job)
        for job in benchmark_jobs(config, wildcards.benchmark)
    ]


rule aggregate:
    """All runs of one benchmark → results/{benchmark}.json (rows, summary over seeds, provenance)."""
    input:
        benchmark_runs,
    output:
        "results/{benchmark}.json",
    wildcard_constraints:
        benchmark="|".join(BENCHMARK_NAMES),
    log:
        "logs/aggregate/{benchmark}.log",
    benchmark:
        "logs/benchmarks/aggregate/{benchmark}.tsv",
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "jetfm aggregate --benchmark {wildcards.benchmark} --out {output} {input} 2>&1 | tee {log}"


rule benchmarks:
    """Every configured benchmark's result file."""
    input:
        expand("results/{benchmark}.json", benchmark=BENCHMARK_NAMES),
