rule plot:
    """Curves with seed bands, ROC curves and confusion matrices of one benchmark."""
    input:
        "results/{benchmark}.json",
    output:
        "results/plots/{benchmark}.png",
    wildcard_constraints:
        benchmark="|".join(BENCHMARK_NAMES),
    log:
        "logs/plot/{benchmark}.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        JETFM_ENV
    shell:
        "jetfm plot --result {input:q} --out {output:q} 2>&1 | tee {log:q}"


rule report:
    """results/report.html: every result, plot and figure, with the config that made them."""
    input:
        results=expand("results/{benchmark}.json", benchmark=BENCHMARK_NAMES),
        plots=expand("results/plots/{benchmark}.png", benchmark=BENCHMARK_NAMES),
        validation=["results/validation/btag.json", "results/validation/boosted.json"],
        pretraining=expand("models/backbones/{backbone}.metrics.png", backbone=report_backbones()),
        tokenizers=sorted({f"models/tokenizers/{t}.png" for b in report_backbones()
                           for t in backbone_tokenizers(config, b).values()}),
    output:
        "results/report.html",
    params:
        p=lambda w: json.dumps(config, sort_keys=True),
    log:
        "logs/report.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        JETFM_ENV
    shell:
        "jetfm report --params {params.p:q} --results {input.results:q} --plots {input.plots:q} "
        "--figures {input.validation:q} {input.pretraining:q} {input.tokenizers:q} --out {output:q} 2>&1 | tee {log:q}"
