rule tokenize:
    """Fit one constituent tokenizer (K-Means with faiss, or VQ-VAE) on its sample's training
    jets; its quality report (utilisation, perplexity, resolutions) uses the validation jets."""
    input:
        train=lambda w: jet_split(config["tokenizers"][w.tokenizer]["sample"], "train"),
        val=lambda w: jet_split(config["tokenizers"][w.tokenizer]["sample"], "val"),
    output:
        tokenizer="models/tokenizers/{tokenizer}.pt",
        report="models/tokenizers/{tokenizer}.json",
        figure="models/tokenizers/{tokenizer}.png",
    params:
        p=lambda w: params_json("tokenize", tokenizer=w.tokenizer),
        launcher=lambda w: launcher(tokenizer_ranks(w)),
    log:
        "logs/tokenize/{tokenizer}.log",
    benchmark:
        "logs/benchmarks/tokenize/{tokenizer}.tsv",
    # on the critical path (tokenizer → pretrain → fixed/finetune runs): before any scratch run
    priority: 10
    threads: lambda w: config["tokenizers"][w.tokenizer]["threads"] * tokenizer_ranks(w)["gpus_per_node"]
    # a VQ-VAE on several ranks: srun tasks under SLURM (tokenizers.<name>.resources)
    resources:
        mem_mb=4000,
        runtime=120,
        cpus_per_task=lambda w: config["tokenizers"][w.tokenizer]["threads"],
        nodes=slurm_resource(tokenizer_ranks, "nodes", cpu_only=True),
        mpi=slurm_resource(tokenizer_ranks, "mpi", cpu_only=True),
        tasks=slurm_resource(tokenizer_ranks, "tasks", cpu_only=True),
        tasks_per_node=slurm_resource(tokenizer_ranks, "tasks_per_node", cpu_only=True),
    conda:
        JETFM_ENV
    shell:
        "{params.launcher} tokenize --params {params.p:q} --name {wildcards.tokenizer} --threads {resources.cpus_per_task} "
        "--train {input.train:q} --val {input.val:q} --out {output.tokenizer:q} --report {output.report:q} "
        "2>&1 | tee {log:q}"
