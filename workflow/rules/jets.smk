rule jets:
    """One shard's anti-kt jets through the detector, with truth labels → its train/val/test
    Parquet files (a jet's split is fixed by its shard and event: adding shards moves no jet)."""
    input:
        jet_shard_input,
    output:
        train="data/jets/{sample}/train/{shard}.parquet",
        val="data/jets/{sample}/val/{shard}.parquet",
        test="data/jets/{sample}/test/{shard}.parquet",
    wildcard_constraints:
        shard=r"[^/]+",
    params:
        p=lambda w: params_json("jets", sample=w.sample),
    log:
        "logs/jets/{sample}/{shard}.log",
    benchmark:
        "logs/benchmarks/jets/{sample}/{shard}.tsv",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    conda:
        JETFM_ENV
    shell:
        "jetfm jets --params {params.p:q} --sample {wildcards.sample} --events {input:q} "
        "--train {output.train:q} --val {output.val:q} --test {output.test:q} 2>&1 | tee {log:q}"


rule jet_manifest:
    """A split's manifest: its shards, jets per class and row groups, and the class allotment
    of `jets.fractions`; every consumer of a split reads it."""
    input:
        jet_split_shards,
    output:
        "data/jets/{sample}/{split}.json",
    params:
        p=lambda w: params_json("manifest", sample=w.sample, split=w.split),
    log:
        "logs/jets/{sample}/{split}-manifest.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        JETFM_ENV
    shell:
        "jetfm manifest --params {params.p:q} --sample {wildcards.sample} --split {wildcards.split} "
        "--shards {input:q} --out {output:q} 2>&1 | tee {log:q}"
