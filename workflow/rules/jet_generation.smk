# Jet generation with gpt (OmniJet-α) backbones: sample jets, then score them (benchmark jet_generation).
# The floor (a second true sample) is the benchmark's baselines file; the aggregate, plot
# and report rules are the other benchmarks' (downstream.smk, report.smk).


rule generate_jets:
    """Sample as many jets as the second half of the test set holds from one gpt backbone."""
    input:
        checkpoint="models/backbones/{backbone}.pt",
        reference=generation_test,
    output:
        "data/generated/{backbone}/seed{seed}.parquet",
    wildcard_constraints:
        seed=r"\d+",
    params:
        p=lambda w: params_json("generate_jets", backbone=w.backbone, seed=w.seed),
    log:
        "logs/generate_jets/{backbone}-seed{seed}.log",
    benchmark:
        "logs/benchmarks/generate_jets/{backbone}-seed{seed}.tsv",
    threads: lambda w: config["downstream"]["jet_generation"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        JETFM_ENV
    shell:
        "jetfm generate-jets --params {params.p:q} --backbone {wildcards.backbone} --seed {wildcards.seed} "
        "--checkpoint {input.checkpoint:q} --reference {input.reference:q} --threads {threads} --out {output:q} "
        "2>&1 | tee {log:q}"


rule evaluate_generation:
    """Distances of generated jets (or of the tokenizer's reconstruction) to held-out true jets."""
    input:
        unpack(generation_inputs),
    output:
        "results/runs/jet_generation/{backbone}/{mode}/all/seed{seed}.json",
    wildcard_constraints:
        mode="generated|reconstructed",
        seed=r"\d+",
    params:
        p=lambda w: params_json("evaluate_generation", backbone=w.backbone, mode=w.mode, seed=w.seed),
        generated=optional_input("generated"),
        checkpoint=optional_input("checkpoint"),
    log:
        "logs/evaluate_generation/{backbone}-{mode}-seed{seed}.log",
    benchmark:
        "logs/benchmarks/evaluate_generation/{backbone}-{mode}-seed{seed}.tsv",
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        JETFM_ENV
    shell:
        "jetfm evaluate-generation --params {params.p:q} --backbone {wildcards.backbone} --mode {wildcards.mode} "
        "--seed {wildcards.seed} --test {input.test:q} {params.generated} {params.checkpoint} --out {output:q} "
        "2>&1 | tee {log:q}"
