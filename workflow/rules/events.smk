wildcard_constraints:
    sample=r"btag|boosted",
    shard=r"[a-z0-9]+-\d{3}",
    split=r"train|val|test",


rule generate:
    """Pythia8 events for one shard (one process, one seed) into a ROOT TTree."""
    output:
        "data/events/{sample}/{shard}.root",
    params:
        p=lambda w: params_json("generate", sample=w.sample, shard=w.shard),
    log:
        "logs/generate/{sample}/{shard}.log",
    benchmark:
        "logs/benchmarks/generate/{sample}/{shard}.tsv",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    conda:
        JETFM_ENV
    shell:
        "jetfm generate --params {params.p:q} --sample {wildcards.sample} --shard {wildcards.shard} "
        "--out {output:q} 2>&1 | tee {log:q}"
