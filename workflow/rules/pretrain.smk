rule pretrain:
    """Pre-train one backbone (GPU when present). Resumes from <checkpoint>.resume."""
    input:
        unpack(pretrain_inputs),
    output:
        checkpoint="models/backbones/{backbone}.pt",
        metrics="models/backbones/{backbone}.metrics.csv",
        plot="models/backbones/{backbone}.metrics.png",
    params:
        p=lambda w: params_json("pretrain", backbone=w.backbone),
        tokenizers=tokenizer_options,
        launcher=lambda w: launcher(pretrain_ranks(w)),
    log:
        "logs/pretrain/{backbone}.log",
    benchmark:
        "logs/benchmarks/pretrain/{backbone}.tsv",
    # every rank of a node has pretrain.threads threads (pretrain.resources, docs/distributed.md)
    threads: lambda w: config["pretrain"]["threads"] * pretrain_ranks(w)["gpus_per_node"]
    # on the critical path (pretrain → fixed/finetune): start it before the scratch baseline
    priority: 10
    # under SLURM: the nodes, tasks and GPUs of its ranks (an `mpi` job: srun starts the tasks)
    resources:
        mem_mb=8000,
        runtime=720,
        cpus_per_task=config["pretrain"]["threads"],
        nodes=slurm_resource(pretrain_ranks, "nodes"),
        mpi=slurm_resource(pretrain_ranks, "mpi"),
        tasks=slurm_resource(pretrain_ranks, "tasks"),
        tasks_per_node=slurm_resource(pretrain_ranks, "tasks_per_node"),
        gres=slurm_resource(pretrain_ranks, "gres"),
    conda:
        JETFM_ENV
    shell:
        "{params.launcher} pretrain --params {params.p:q} --backbone {wildcards.backbone} "
        "--train {input.train:q} --val {input.val:q} {params.tokenizers} --threads {resources.cpus_per_task} "
        "--out {output.checkpoint:q} --metrics {output.metrics:q} 2>&1 | tee {log:q}"


rule backbones:
    """Every backbone of the config (models/backbones/*.pt)."""
    input:
        expand("models/backbones/{backbone}.pt", backbone=config["backbones"]),
