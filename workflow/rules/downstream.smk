VTX = config["downstream"]["vertexing"]


def vertexing_inputs(wildcards):
    inputs = {"train": "data/jets/btag/train.parquet", "test": "data/jets/btag/test.parquet"}
    if wildcards.mode != "scratch":  # scratch needs the architecture only, not the weights
        inputs["checkpoint"] = f"models/backbones/{wildcards.backbone}.pt"
    return inputs


rule vertexing:
    """Secondary-vertex finding with one backbone in one mode and seed → per-run JSON."""
    input:
        unpack(vertexing_inputs),
    output:
        "results/runs/btag_vertex_ari/{backbone}/{mode}/seed{seed}.json",
    wildcard_constraints:
        mode="scratch|fixed|finetune",
        seed=r"\d+",
    params:
        p=lambda w: params_json("vertexing", backbone=w.backbone, mode=w.mode, seed=w.seed),
        checkpoint=lambda w, input: f"--checkpoint {input.checkpoint}" if "checkpoint" in input.keys() else "",
    log:
        "logs/vertexing/{backbone}-{mode}-seed{seed}.log",
    benchmark:
        "logs/benchmarks/vertexing/{backbone}-{mode}-seed{seed}.tsv",
    threads: VTX["threads"]
    resources:
        mem_mb=4000,
        runtime=240,
    shell:
        "jetfm vertexing --params {params.p:q} --backbone {wildcards.backbone} --mode {wildcards.mode} "
        "--seed {wildcards.seed} --train {input.train} --test {input.test} {params.checkpoint} --threads {threads} "
        "--out {output} 2>&1 | tee {log}"


rule vertex_baselines:
    """ARI of the trivial answers (one vertex per jet; one vertex per track)."""
    input:
        test="data/jets/btag/test.parquet",
    output:
        "results/runs/btag_vertex_ari/baselines.json",
    log:
        "logs/vertexing/baselines.log",
    benchmark:
        "logs/benchmarks/vertex_baselines/baselines.tsv",
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "jetfm vertex-baselines --test {input.test} --out {output} 2>&1 | tee {log}"
