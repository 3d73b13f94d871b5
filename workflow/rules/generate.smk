wildcard_constraints:
    shard=r"[a-z]+-\d{3}",
    split=r"train|val|test",


rule generate:
    """Pythia8 events for one shard (one seed) into a ROOT TTree."""
    output:
        "data/events/btag/{shard}.root",
    params:
        p=lambda w: params_json("generate", shard=w.shard),
    log:
        "logs/generate/{shard}.log",
    benchmark:
        "logs/benchmarks/generate/{shard}.tsv",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    shell:
        "jetfm generate --params {params.p:q} --shard {wildcards.shard} --out {output} 2>&1 | tee {log}"
