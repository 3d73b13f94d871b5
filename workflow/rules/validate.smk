rule validate:
    """Physics validation of the btag sample: results/validation/btag.json and figures."""
    input:
        jets=jet_split("btag", "test"),
        events=validation_event_file,
    output:
        "results/validation/btag.json",
    log:
        "logs/validate/btag.log",
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        JETFM_ENV
    shell:
        "jetfm validate --sample btag --jets {input.jets:q} --events {input.events:q} --out {output:q} "
        "2>&1 | tee {log:q}"


rule validate_boosted:
    """Physics validation of the boosted sample (all splits): results/validation/boosted.json."""
    input:
        [jet_split("boosted", split) for split in ("train", "val", "test")],
    output:
        "results/validation/boosted.json",
    log:
        "logs/validate/boosted.log",
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        JETFM_ENV
    shell:
        "jetfm validate --sample boosted --jets {input:q} --out {output:q} 2>&1 | tee {log:q}"
