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
        launcher=lambda w: launcher(downstream_ranks(w)),
    log:
        "logs/downstream/{benchmark}/{backbone}-{mode}-{point}-seed{seed}.log",
    benchmark:
        "logs/benchmarks/downstream/{benchmark}/{backbone}-{mode}-{point}-seed{seed}.tsv",
    # every rank has downstream.<benchmark>.threads threads (resources: docs/distributed.md)
    threads: lambda w: DOWNSTREAM[w.benchmark]["threads"] * downstream_ranks(w)["gpus_per_node"]
    # under SLURM: the nodes, tasks and GPUs of its ranks, as for the pre-training
    resources:
        mem_mb=6000,
        runtime=240,
        cpus_per_task=lambda w: DOWNSTREAM[w.benchmark]["threads"],
        nodes=slurm_resource(downstream_ranks, "nodes"),
        mpi=slurm_resource(downstream_ranks, "mpi"),
        tasks=slurm_resource(downstream_ranks, "tasks"),
        tasks_per_node=slurm_resource(downstream_ranks, "tasks_per_node"),
        gres=slurm_resource(downstream_ranks, "gres"),
    conda:
        JETFM_ENV
    shell:
        "{params.launcher} downstream --params {params.p:q} --benchmark {wildcards.benchmark} "
        "--backbone {wildcards.backbone} --mode {wildcards.mode} --point {wildcards.point} "
        "--seed {wildcards.seed} --train {input.train:q} --val {input.val:q} --test {input.test:q} {params.checkpoint} "
        "{params.tokenizer} "
        "--threads {resources.cpus_per_task} --out {output:q} 2>&1 | tee {log:q}"


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
    conda:
        JETFM_ENV
    shell:
        "jetfm baselines --params {params.p:q} --benchmark {wildcards.benchmark} --train {input.train:q} "
        "--test {input.test:q} --out {output:q} 2>&1 | tee {log:q}"


rule aggregate:
    """All runs of one benchmark → results/{benchmark}.json (rows, summary over seeds, provenance)."""
    input:
        benchmark_runs,
    output:
        "results/{benchmark}.json",
    wildcard_constraints:
        benchmark="|".join(BENCHMARK_NAMES),
    params:
        # the tier the table comes from (config.yaml demo, config/study.yaml study, ...)
        scale=config["scale"],
    log:
        "logs/aggregate/{benchmark}.log",
    benchmark:
        "logs/benchmarks/aggregate/{benchmark}.tsv",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        JETFM_ENV
    shell:
        "jetfm aggregate --benchmark {wildcards.benchmark} --scale {params.scale:q} --out {output:q} {input:q} "
        "2>&1 | tee {log:q}"


rule benchmarks:
    """Every configured benchmark's result file."""
    input:
        expand("results/{benchmark}.json", benchmark=BENCHMARK_NAMES),
