def jet_inputs(wildcards):
    """Generated shards of the sample, or the public-dataset files its `path` glob matches."""
    section = config["samples"][wildcards.sample]
    if section["source"] == "pythia":
        return expand("data/events/{sample}/{shard}.root", sample=wildcards.sample,
                      shard=shard_names(config, wildcards.sample))
    files = sorted(glob.glob(section["path"]))
    if not files:
        raise WorkflowError(f"config key 'samples.{wildcards.sample}.path': no files match {section['path']!r}")
    return files


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
    shell:
        "jetfm jets --params {params.p:q} --sample {wildcards.sample} --events {input} "
        "--train {output.train} --val {output.val} --test {output.test} 2>&1 | tee {log}"
