rule jets:
    """Anti-kt jets, parametrised tracking and truth labels → train/val/test Parquet."""
    input:
        expand("data/events/btag/{shard}.root", shard=shard_names(config)),
    output:
        train="data/jets/btag/train.parquet",
        val="data/jets/btag/val.parquet",
        test="data/jets/btag/test.parquet",
    params:
        p=lambda w: params_json("jets"),
    log:
        "logs/jets/btag.log",
    benchmark:
        "logs/benchmarks/jets/btag.tsv",
    threads: 1
    resources:
        mem_mb=6000,
        runtime=120,
    shell:
        "jetfm jets --params {params.p:q} --events {input} "
        "--train {output.train} --val {output.val} --test {output.test} 2>&1 | tee {log}"
