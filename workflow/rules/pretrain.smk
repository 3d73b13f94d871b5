def pretrain_inputs(wildcards):
    backbone = config["backbones"][wildcards.backbone]
    inputs = {"train": "data/jets/btag/train.parquet", "val": "data/jets/btag/val.parquet"}
    if "kmeans" in backbone["tasks"]:
        inputs["tokenizer"] = f"models/tokenizers/{backbone['tokenizer']}.pt"
    return inputs


rule pretrain:
    """Pre-train one backbone (GPU when present). Resumes from <checkpoint>.resume."""
    input:
        unpack(pretrain_inputs),
    output:
        checkpoint="models/backbones/{backbone}.pt",
        metrics="models/backbones/{backbone}.metrics.csv",
    params:
        p=lambda w: params_json("pretrain", backbone=w.backbone),
        tokenizer=lambda w, input: f"--tokenizer {input.tokenizer}" if "tokenizer" in input.keys() else "",
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
    shell:
        "jetfm pretrain --params {params.p:q} --backbone {wildcards.backbone} "
        "--train {input.train} --val {input.val} {params.tokenizer} --threads {threads} "
        "--out {output.checkpoint} --metrics {output.metrics} 2>&1 | tee {log}"
