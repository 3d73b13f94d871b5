from __future__ import annotations

import pytest

from jetfm.config import ConfigError, config_hash, load_config, shard_names, stage_params, validate_config
from tests.conftest import REPO


def test_defaults_are_filled() -> None:
    cfg = validate_config({})
    assert cfg["samples"]["btag"]["jets"]["radius"] == 0.4
    assert cfg["samples"]["btag"]["jets"]["max_tracks"] == 15
    assert cfg["samples"]["boosted"]["jets"]["radius"] == 0.8
    assert cfg["detector"]["tracking"]["track_pt_min_gev"] == 1.0
    assert cfg["backbones"]["mpm-kmeans"]["mask_fraction"] == 0.4
    assert cfg["backbones"]["mpm-kmeans"]["encoder"]["registers"] == 4
    assert cfg["downstream"]["btag_vertex_ari"]["modes"] == ["scratch", "fixed", "finetune"]
    assert cfg["downstream"]["btag_vertex_ari"]["backbones"] == ["mpm-kmeans"]  # null → every backbone
    assert cfg["downstream"]["cwola_sic"]["signal"] == "Tbqq"


@pytest.mark.parametrize("name", ["config.yaml", "config/tiny.yaml", "config/study.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    cfg = load_config(REPO / name)
    for sample in ("btag", "boosted"):
        assert shard_names(cfg, sample)


def test_unknown_key_is_named_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'pretrain\.stepz' \(did you mean 'steps'\?\)"):
        validate_config({"pretrain": {"stepz": 10}})


def test_unknown_top_level_key() -> None:
    with pytest.raises(ConfigError, match="unknown config key 'pretrian'"):
        validate_config({"pretrian": {}})


def test_negative_event_count_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"samples\.boosted\.generate\.events_per_shard"):
        validate_config({"samples": {"boosted": {"generate": {"events_per_shard": -5}}}})


def test_wrong_type_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"backbones\.mpm-kmeans\.encoder\.dim"):
        validate_config({"backbones": {"mpm-kmeans": {"encoder": {"dim": "big"}}}})


def test_split_fractions_must_sum_to_one() -> None:
    with pytest.raises(ConfigError, match=r"samples\.btag\.jets\.split"):
        validate_config({"samples": {"btag": {"jets": {"split": {"train": 0.5, "val": 0.1, "test": 0.1}}}}})


def test_sample_sources_and_windows_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"samples\.boosted\.path"):
        validate_config({"samples": {"boosted": {"source": "jetclass-root"}}})
    with pytest.raises(ConfigError, match=r"samples\.btag\.source"):
        validate_config({"samples": {"btag": {"source": "jetclass-root", "path": "x/*.root"}}})
    with pytest.raises(ConfigError, match=r"samples\.boosted\.generate\.pthat_max_gev"):
        validate_config({"samples": {"boosted": {"generate": {"pthat_min_gev": 500, "pthat_max_gev": 400}}}})
    with pytest.raises(ConfigError, match=r"samples\.boosted\.jets\.fractions"):
        validate_config({"samples": {"boosted": {"jets": {"fractions": {"hbbb": 1.0}}}}})
    cfg = validate_config({"samples": {"boosted": {"source": "jetclass-root", "path": "jc/*.root"}}})
    assert shard_names(cfg, "boosted") == []
    # a public file's jets do not depend on the glob that found it (one job per file)
    assert "path" not in stage_params(cfg, "jets", sample="boosted")
    assert stage_params(cfg, "jets", sample="boosted")["source"] == "jetclass-root"
    assert "detector" not in stage_params(cfg, "jets", sample="boosted")


def test_heads_must_divide_dim() -> None:
    with pytest.raises(ConfigError, match=r"encoder\.heads"):
        validate_config({"backbones": {"b": {"encoder": {"dim": 30, "heads": 4}}}})


def test_downstream_backbone_must_exist() -> None:
    with pytest.raises(ConfigError, match="no backbone named 'nope'"):
        validate_config({"downstream": {"btag_track_id": {"backbones": ["nope"]}}})


def test_shard_names_follow_the_config() -> None:
    cfg = validate_config({"samples": {"btag": {"generate": {"shards": {"bb": 2, "cc": 0, "light": 1}}},
                                       "boosted": {"generate": {"shards": {"qcd": 2, "tbqq": 1}}}}})
    assert shard_names(cfg, "btag") == ["bb-000", "bb-001", "light-000"]
    assert shard_names(cfg, "boosted") == ["qcd-000", "qcd-001", "hbb-000", "hcc-000", "hgg-000",
                                           "h4q-000", "hqql-000", "zqq-000", "wqq-000", "tbqq-000",
                                           "tbl-000"]


def test_stage_params_isolate_what_each_stage_depends_on() -> None:
    base = validate_config({})
    changed = validate_config({"pretrain": {"lr": 1e-3}})
    for stage, kw in [("generate", {"sample": "btag", "shard": "bb-000"}), ("jets", {"sample": "btag"}),
                      ("jets", {"sample": "boosted"}), ("tokenize", {"tokenizer": "kmeans"}),
                      ("downstream", {"benchmark": "jetclass_accuracy", "backbone": "mpm-kmeans",
                                      "mode": "scratch", "point": "n100", "seed": "0"})]:
        assert stage_params(base, stage, **kw) == stage_params(changed, stage, **kw), stage
    assert stage_params(base, "pretrain", backbone="mpm-kmeans") != \
        stage_params(changed, "pretrain", backbone="mpm-kmeans")
    # Adding shards does not change existing shards' parameters.
    more = validate_config({"samples": {"btag": {"generate": {"shards": {"bb": 5, "cc": 2, "light": 2}}}}})
    kw = {"sample": "btag", "shard": "bb-001"}
    assert stage_params(base, "generate", **kw) == stage_params(more, "generate", **kw)
    # Calorimeter settings re-run the boosted jets only; boosted generation leaves btag alone.
    calo = validate_config({"detector": {"calorimeter": {"hcal_stochastic": 0.8}}})
    assert stage_params(base, "jets", sample="btag") == stage_params(calo, "jets", sample="btag")
    assert stage_params(base, "jets", sample="boosted") != stage_params(calo, "jets", sample="boosted")
    window = validate_config({"samples": {"boosted": {"generate": {"pthat_min_gev": 600.0}}}})
    assert stage_params(base, "generate", **kw) == stage_params(window, "generate", **kw)
    assert stage_params(base, "generate", sample="boosted", shard="hbb-000") != \
        stage_params(window, "generate", sample="boosted", shard="hbb-000")


def test_config_hash_ignores_key_order() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


# JSON-schema keywords the schema uses; any other key is a typo or YAML's reading of an unquoted
# comma inside a flow mapping ({description: a, b} has a key "b"), which cut the description short
SCHEMA_KEYWORDS = {"type", "default", "description", "properties", "additionalProperties", "items", "enum",
                   "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "uniqueItems",
                   "required", "maxItems", "propertyNames", "$schema", "title"}


def _schema_nodes(schema: dict, path: str):
    yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from _schema_nodes(sub, f"{path}.{key}")
    for key, suffix in (("additionalProperties", ".<name>"), ("items", "[]")):
        if isinstance(schema.get(key), dict):
            yield from _schema_nodes(schema[key], path + suffix)


def test_schema_has_no_stray_keys_and_every_key_is_described() -> None:
    from jetfm.config import load_schema

    nodes = list(_schema_nodes(load_schema(), ""))
    assert len(nodes) > 200
    stray = {path: sorted(set(node) - SCHEMA_KEYWORDS) for path, node in nodes if set(node) - SCHEMA_KEYWORDS}
    assert not stray, f"keys that are no JSON-schema keywords (unquoted commas?): {stray}"
    undescribed = [path for path, node in nodes
                   if path.count(".") and not path.endswith(("<name>", "[]")) and not node.get("description")]
    assert not undescribed, f"keys without a description: {undescribed}"


def test_config_reference_matches_the_schema() -> None:
    from jetfm.config_docs import render_config_docs

    page = (REPO / "docs/config.md").read_text()
    assert page == render_config_docs(), "docs/config.md is stale: run `jetfm config-docs > docs/config.md`"
    # whole descriptions, and a word in every default cell
    assert "Seed of initialisation, masking and batching." in page
    assert "finetune mode, steps with the encoder frozen before its learning rate warms up" in page
    rows = [line.split(" | ") for line in page.splitlines() if line.startswith("| `")]
    assert len(rows) > 200 and all(row[2].strip() for row in rows)
    assert "| `downstream.jetclass_accuracy.runs[].backbone` | string | required |" in page


def test_thread_counts_do_not_trigger_reruns() -> None:
    base = validate_config({})
    more = validate_config({"pretrain": {"threads": 8}, "downstream": {"btag_vertex_ari": {"threads": 4}}})
    assert stage_params(base, "pretrain", backbone="mpm-kmeans") == \
        stage_params(more, "pretrain", backbone="mpm-kmeans")
    kw = {"benchmark": "btag_vertex_ari", "backbone": "mpm-kmeans", "mode": "fixed", "point": "all",
          "seed": "0"}
    assert stage_params(base, "downstream", **kw) == stage_params(more, "downstream", **kw)


def test_sweep_lists_do_not_re_run_existing_points() -> None:
    base = validate_config({})
    sweep = {"seeds": [0, 1, 2], "train_sizes": [10, None], "modes": ["fixed"]}
    more = validate_config({"downstream": {"jetclass_accuracy": sweep}})
    kw = {"benchmark": "jetclass_accuracy", "backbone": "mpm-kmeans", "mode": "fixed", "point": "all",
          "seed": "0"}
    assert stage_params(base, "downstream", **kw) == stage_params(more, "downstream", **kw)


def test_backbone_pretrain_overrides() -> None:
    cfg = validate_config({"backbones": {"a": {"pretrain": {"steps": 7}}, "b": {}}})
    assert stage_params(cfg, "pretrain", backbone="a")["pretrain"]["steps"] == 7
    assert stage_params(cfg, "pretrain", backbone="b")["pretrain"]["steps"] == cfg["pretrain"]["steps"]
    assert "pretrain" not in stage_params(cfg, "pretrain", backbone="a")["backbone"]


def test_yaml_anchors_get_each_section_its_own_defaults(tmp_path) -> None:
    """An aliased section (*anchor) must not receive another benchmark's defaults."""
    path = tmp_path / "aliased.yaml"
    path.write_text("downstream:\n  btag_vertex_ari: &shared {steps: 7}\n  btag_track_id: *shared\n")
    cfg = load_config(path)
    assert cfg["downstream"]["btag_track_id"]["steps"] == 7
    assert "head_embed" in cfg["downstream"]["btag_vertex_ari"]
    assert "head_embed" not in cfg["downstream"]["btag_track_id"]


def test_study_extends_the_demo() -> None:
    """config/study.yaml is the demo with the full downstream protocol: every other section is
    the demo's, and every demo run is a study run with the same params, so the study run in the
    demo's directory re-uses all of the demo's work."""
    from jetfm.config import benchmark_jobs, stage_params

    demo, study = load_config(REPO / "config.yaml"), load_config(REPO / "config/study.yaml")
    assert (demo["scale"], study["scale"]) == ("demo", "study")  # the tier, for the reader
    assert {k: v for k, v in demo.items() if k not in ("downstream", "scale")} == \
        {k: v for k, v in study.items() if k not in ("downstream", "scale")}
    assert set(demo["downstream"]) == set(study["downstream"])
    counts = {}
    for benchmark in demo["downstream"]:
        study_jobs = benchmark_jobs(study, benchmark)
        counts[benchmark] = (len(benchmark_jobs(demo, benchmark)), len(study_jobs))
        assert len(study["downstream"][benchmark]["seeds"]) == 3
        for job in benchmark_jobs(demo, benchmark):
            assert job in study_jobs, (benchmark, job)
            if benchmark != "jet_generation":
                assert stage_params(demo, "downstream", benchmark=benchmark, **job) == \
                    stage_params(study, "downstream", benchmark=benchmark, **job)
    # the study has ParT at every point and seed of the classification benchmarks
    assert sum(j["backbone"] == "part" for j in benchmark_jobs(study, "jetclass_accuracy")) == 3 * 3
    assert sum(c[0] for c in counts.values()) < sum(c[1] for c in counts.values()) / 3


def test_paper_config_is_valid_and_has_the_omnijet_sizes() -> None:
    cfg = load_config(REPO / "config/paper.yaml")
    assert cfg["tokenizers"]["vqvae-omnijet"]["codebook_size"] == 8192
    assert cfg["tokenizers"]["vqvae-omnijet"]["features"] == ["pt", "deta", "dphi"]
    encoder = cfg["backbones"]["omnijet"]["encoder"]
    assert (encoder["dim"], encoder["layers"], encoder["heads"]) == (256, 3, 8)


def test_gpt_backbone_config_errors_name_the_key() -> None:
    gpt = {"method": "gpt", "tasks": ["gpt"], "gpt_tokenizer": "vq"}
    vq = {"tokenizers": {"vq": {"kind": "vqvae"}}}
    with pytest.raises(ConfigError, match=r"backbones\.g\.tasks.*method: gpt"):
        validate_config({"backbones": {"g": gpt | {"tasks": ["gpt", "id"]}}} | vq)
    with pytest.raises(ConfigError, match=r"backbones\.g\.tasks"):
        validate_config({"backbones": {"g": {"tasks": ["gpt"], "gpt_tokenizer": "vq"}}} | vq)
    with pytest.raises(ConfigError, match=r"backbones\.g\.conditional"):
        validate_config({"backbones": {"g": {"tasks": ["kmeans"], "conditional": True}}})
    with pytest.raises(ConfigError, match=r"backbones\.g\.gpt_tokenizer"):
        validate_config({"tokenizers": {"km": {"kind": "kmeans"}},
                         "backbones": {"g": gpt | {"gpt_tokenizer": "km"}}})
    with pytest.raises(ConfigError, match=r"downstream\.jet_generation\.backbones.*gpt backbones only"):
        validate_config({"backbones": {"g": gpt, "m": {"tasks": ["reg"]}},
                         "downstream": {"jet_generation": {"backbones": ["m"]}}} | vq)


def test_jet_generation_defaults_to_every_gpt_backbone_and_vanishes_without_one() -> None:
    gpt = {"method": "gpt", "tasks": ["gpt"], "gpt_tokenizer": "vq"}
    vq = {"tokenizers": {"vq": {"kind": "vqvae"}}}
    cfg = validate_config({"backbones": {"g": gpt, "m": {"tasks": ["reg"]}}} | vq)
    assert cfg["downstream"]["jet_generation"]["backbones"] == ["g"]
    assert "jet_generation" not in validate_config({"backbones": {"m": {"tasks": ["reg"]}}})["downstream"]
    # sampling settings change the generated jets only; the floor and the reconstruction stay
    hot = validate_config({"backbones": {"g": gpt, "m": {"tasks": ["reg"]}},
                           "downstream": {"jet_generation": {"temperature": 0.8}}} | vq)
    kw = {"backbone": "g", "seed": "0"}
    assert stage_params(cfg, "generate_jets", **kw) != stage_params(hot, "generate_jets", **kw)
    for stage, extra in (("evaluate_generation", {"mode": "reconstructed"}),
                         ("downstream_baselines", {})):
        args = kw | extra if stage != "downstream_baselines" else {"benchmark": "jet_generation"}
        assert stage_params(cfg, stage, **args) == stage_params(hot, stage, **args)
