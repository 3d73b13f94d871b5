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
    log:
        "logs/tokenize/{tokenizer}.log",
    benchmark:
        "logs/benchmarks/tokenize/{tokenizer}.tsv",
    # on the critical path (tokenizer → pretrain → fixed/finetune runs): before any scratch run
    priority: 10
    threads: lambda w: config["tokenizers"][w.tokenizer]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        JETFM_ENV
    shell:
        "jetfm tokenize --params {params.p:q} --name {wildcards.tokenizer} --threads {threads} "
        "--train {input.train:q} --val {input.val:q} --out {output.tokenizer:q} --report {output.report:q} "
        "2>&1 | tee {log:q}"
