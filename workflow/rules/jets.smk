rule jets:
    """Anti-kt jets through the detector, with truth labels → train/val/test Parquet."""
    input:
        jet_inputs,
    output:
        train="data/jets/{sample}/train.parquet",
        val="data/jets/{sample}/val.parquet",
        test="data/jets/{sample}/test.parquet",
    params:
        p=lambda w: params_json("jets", sample=w.sample),
    log:
        "logs/jets/{sample}.log",
    benchmark:
        "logs/benchmarks/jets/{sample}.tsv",
    threads: 1
    resources:
        mem_mb=6000,
        runtime=120,
    conda:
        JETFM_ENV
    shell:
        "jetfm jets --params {params.p:q} --sample {wildcards.sample} --events {input:q} "
        "--train {output.train:q} --val {output.val:q} --test {output.test:q} 2>&1 | tee {log:q}"
