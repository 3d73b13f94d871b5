def benchmark_runs(wildcards):
    if wildcards.benchmark != "btag_vertex_ari":
        raise ValueError(f"unknown benchmark '{wildcards.benchmark}'")
    return [
        "results/runs/btag_vertex_ari/baselines.json",
        *expand("results/runs/btag_vertex_ari/{backbone}/{mode}/seed{seed}.json",
                backbone=VTX["backbones"], mode=VTX["modes"], seed=VTX["seeds"]),
    ]


rule aggregate:
    """All runs of one benchmark → results/{benchmark}.json (rows, summary, provenance)."""
    input:
        benchmark_runs,
    output:
        "results/{benchmark}.json",
    wildcard_constraints:
        benchmark=r"[a-z_]+",
    log:
        "logs/aggregate/{benchmark}.log",
    benchmark:
        "logs/benchmarks/aggregate/{benchmark}.tsv",
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "jetfm aggregate --benchmark {wildcards.benchmark} --out {output} {input} 2>&1 | tee {log}"
