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
    log:
        "logs/pretrain/{backbone}.log",
    benchmark:
        "logs/benchmarks/pretrain/{backbone}.tsv",
    threads: config["pretrain"]["threads"]
    # on the critical path (pretrain → fixed/finetune): start it before the scratch baseline
    priority: 10
    resources:
        mem_mb=8000,
        runtime=720,
    conda:
        JETFM_ENV
    shell:
        "jetfm pretrain --params {params.p:q} --backbone {wildcards.backbone} "
        "--train {input.train:q} --val {input.val:q} {params.tokenizers} --threads {threads} "
        "--out {output.checkpoint:q} --metrics {output.metrics:q} 2>&1 | tee {log:q}"


rule backbones:
    """Every backbone of the config (models/backbones/*.pt)."""
    input:
        expand("models/backbones/{backbone}.pt", backbone=config["backbones"]),
