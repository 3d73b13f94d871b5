rule tokenize:
    """Fit a constituent tokenizer (K-Means, faiss) on the training jets."""
    input:
        train="data/jets/btag/train.parquet",
    output:
        "models/tokenizers/{tokenizer}.pt",
    params:
        p=lambda w: params_json("tokenize", tokenizer=w.tokenizer),
    log:
        "logs/tokenize/{tokenizer}.log",
    benchmark:
        "logs/benchmarks/tokenize/{tokenizer}.tsv",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "jetfm tokenize --params {params.p:q} --name {wildcards.tokenizer} --threads {threads} "
        "--train {input.train} --out {output} 2>&1 | tee {log}"
