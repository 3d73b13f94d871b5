"""Configuration: one JSON schema (src/jetfm/config.schema.yaml, inside the package) with defaults.

The Snakefile and the CLI both go through :func:`load_config` / :func:`validate_config`,
and both take a rule's parameters from :func:`stage_params`, so a job started by hand
sees exactly what Snakemake would pass it.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import importlib.resources
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from jetfm.contract import BENCHMARK_SAMPLES, BOOSTED_LABEL_NAMES, PROCESS_NAMES

# The schema ships inside the package (package data), so that an installed jetfm, editable or
# not, reads it; the workflow reads the same file through validate_config.
SCHEMA_RESOURCE = "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration problem, with the offending key in the message."""


def load_schema() -> dict[str, Any]:
    """The config schema (a fresh copy: validation fills defaults into what it is given)."""
    return copy.deepcopy(_parsed_schema())


@functools.cache
def _parsed_schema() -> dict[str, Any]:
    # parsed once per process: the DAG asks for it once per job
    schema = importlib.resources.files("jetfm") / SCHEMA_RESOURCE
    if not schema.is_file():
        raise ConfigError(f"config schema {SCHEMA_RESOURCE} missing from the jetfm package ({schema}): "
                          "reinstall jetfm")
    return yaml.safe_load(schema.read_text(encoding="utf-8"))


def _with_defaults(validator_class: type) -> type:
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # type: ignore[no-untyped-def]
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if key not in instance and "default" in subschema:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultingValidator = _with_defaults(jsonschema.Draft202012Validator)


def _key_path(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        parts = []
        for key in extra:
            full = f"{where}.{key}" if error.absolute_path else key
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            parts.append(f"unknown config key '{full}'{hint}")
        if allowed:
            parts.append(f"allowed keys here: {', '.join(allowed)}")
        return "; ".join(parts)
    return f"config key '{where}': {error.message}"


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a validated deep copy of ``config`` with every default filled in.

    Raises :class:`ConfigError` naming the first offending key.
    """
    instance = _unshared_copy(dict(config))
    validator = _DefaultingValidator(load_schema())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(_describe(errors[0]))
    _check_consistency(instance)
    return instance


def _unshared_copy(value: Any) -> Any:
    """Deep copy in which no two keys share an object. YAML anchors (``*paper_downstream``)
    load as one shared dict; filling defaults into it in place would leak one section's
    defaults into every section that aliases it. (``copy.deepcopy`` keeps the sharing.)"""
    if isinstance(value, Mapping):
        return {k: _unshared_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshared_copy(v) for v in value]
    return copy.copy(value)


def _check_consistency(cfg: dict[str, Any]) -> None:
    for sample, section in cfg["samples"].items():
        key = f"samples.{sample}"
        split = section["jets"]["split"]
        total = sum(split.values())
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(f"config key '{key}.jets.split': fractions must sum to 1, got {total:g}")
        fractions = section["jets"]["fractions"]
        if fractions is not None and sum(fractions.values()) <= 0:
            raise ConfigError(f"config key '{key}.jets.fractions': at least one fraction must be positive")
        if section["source"] == "pythia":
            if sum(section["generate"]["shards"].values()) == 0:
                raise ConfigError(f"config key '{key}.generate.shards': at least one shard is needed")
            low, high = section["generate"]["pthat_min_gev"], section["generate"]["pthat_max_gev"]
            if 0 <= high <= low:
                raise ConfigError(f"config key '{key}.generate.pthat_max_gev': {high:g} is not above "
                                  f"pthat_min_gev {low:g} (negative means no limit)")
            jet_pt_min = section["jets"]["pt_min_gev"]
            if 0 <= high < 0.5 * jet_pt_min:
                # a 2→2 jet carries about the parton's pT, so pT-hat far below the jet threshold
                # leaves (almost) no jet to select
                raise ConfigError(f"config key '{key}.generate.pthat_max_gev': {high:g} GeV is below half "
                                  f"the jet threshold jets.pt_min_gev {jet_pt_min:g} GeV: no jets would pass")
        elif not section["path"]:
            raise ConfigError(f"config key '{key}.path': source '{section['source']}' needs a glob "
                              "of input ROOT files")
        _check_jet_selection(key, section["jets"])
    for name, tok in cfg["tokenizers"].items():
        key = f"tokenizers.{name}"
        if tok["kind"] == "vqvae" and tok["dim"] % tok["heads"]:
            raise ConfigError(f"config key '{key}.heads': {tok['heads']} heads do not divide dim "
                              f"{tok['dim']}")
        if tok["kind"] == "kmeans" and tok["n_fit"] < tok["k"]:
            raise ConfigError(f"config key '{key}.n_fit': {tok['n_fit']} constituents cannot fit {tok['k']} "
                              "K-Means clusters")
    for name, bb in cfg["backbones"].items():
        _check_backbone(cfg, name, bb)
    for name, ref in cfg["references"].items():
        if name in cfg["backbones"]:
            raise ConfigError(f"config key 'references.{name}': a backbone has the same name")
        if ref["embed_dims"][-1] % ref["num_heads"]:
            raise ConfigError(f"config key 'references.{name}.num_heads': {ref['num_heads']} heads do not "
                              f"divide the model width {ref['embed_dims'][-1]} (last of embed_dims)")
    generation = cfg["downstream"]["jet_generation"]
    if generation["backbones"] is None:
        generation["backbones"] = [n for n, bb in cfg["backbones"].items() if bb["method"] == "gpt"]
        if not generation["backbones"]:
            del cfg["downstream"]["jet_generation"]  # nothing generates jets: no such benchmark
    for benchmark, section in cfg["downstream"].items():
        _check_benchmark(cfg, benchmark, section)


def _check_jet_selection(key: str, jets: Mapping[str, Any]) -> None:
    """Selections that no jet can pass."""
    if "pt_max_gev" in jets and jets["pt_max_gev"] <= jets["pt_min_gev"]:
        raise ConfigError(f"config key '{key}.jets.pt_max_gev': {jets['pt_max_gev']:g} GeV is not above "
                          f"pt_min_gev {jets['pt_min_gev']:g} GeV: the pT window is empty")
    if "min_tracks" in jets and jets["min_tracks"] > jets["max_tracks"]:
        raise ConfigError(f"config key '{key}.jets.min_tracks': {jets['min_tracks']} is above max_tracks "
                          f"{jets['max_tracks']}: no jet can pass")


def _check_benchmark(cfg: dict[str, Any], benchmark: str, section: dict[str, Any]) -> None:
    key = f"downstream.{benchmark}"
    if section["backbones"] is None:
        section["backbones"] = list(cfg["backbones"])
    for name in section["backbones"]:
        if name not in cfg["backbones"]:
            raise ConfigError(f"config key '{key}.backbones': no backbone named '{name}' "
                              f"(have: {', '.join(cfg['backbones'])})")
        dim = cfg["backbones"][name]["encoder"]["dim"]
        if "head_heads" in section and dim % section["head_heads"]:
            raise ConfigError(f"config key '{key}.head_heads': {section['head_heads']} heads do not "
                              f"divide the encoder dim {dim} of backbone '{name}'")
    for name in section.get("references", []):
        if name not in cfg["references"]:
            raise ConfigError(f"config key '{key}.references': no reference model named '{name}' "
                              f"(have: {', '.join(cfg['references']) or 'none'})")
    if section.get("runs") is not None:
        _check_runs(key, section)
    if benchmark == "jet_generation":
        not_gpt = [n for n in section["backbones"] if cfg["backbones"][n]["method"] != "gpt"]
        if not_gpt or not section["backbones"]:
            raise ConfigError(f"config key '{key}.backbones': jets are generated by gpt backbones only; "
                              f"{', '.join(not_gpt) or 'none given'} (method: gpt)")
        samples = {cfg["backbones"][n]["sample"] for n in section["backbones"]}
        if len(samples) > 1:
            raise ConfigError(f"config key '{key}.backbones': all must pre-train on one sample, got "
                              f"{', '.join(sorted(samples))}")
    if benchmark == "cwola_sic":
        for role in ("signal", "background"):
            if section[role] not in BOOSTED_LABEL_NAMES:
                raise ConfigError(f"config key '{key}.{role}': '{section[role]}' is not a boosted class "
                                  f"({', '.join(BOOSTED_LABEL_NAMES)})")
        if section["signal"] == section["background"]:
            raise ConfigError(f"config key '{key}.signal': signal and background are the same class")


def _check_runs(key: str, section: Mapping[str, Any]) -> None:
    """Every block of ``runs`` names the section's backbones, modes, points and seeds."""
    references = list(section.get("references", []))
    allowed = {"points": sweep_points(section), "seeds": list(section["seeds"])}
    sweep_key = "signal_jets" if "signal_jets" in section else "train_sizes"
    if not section["runs"]:
        raise ConfigError(f"config key '{key}.runs': an empty list has no runs (null = every combination)")
    for i, block in enumerate(section["runs"]):
        where = f"{key}.runs[{i}]"
        name = block["backbone"]
        if name not in section["backbones"] and name not in references:
            raise ConfigError(f"config key '{where}.backbone': '{name}' is not in the section's backbones or "
                              f"references ({', '.join([*section['backbones'], *references])})")
        if name in references:
            modes_allowed = ["scratch", "supervised"] if "supervised" in section else ["scratch"]
        else:
            modes_allowed = [*section["modes"], *(["supervised"] if "supervised" in section else [])]
        for mode in block.get("modes") or []:
            if mode not in modes_allowed:
                raise ConfigError(f"config key '{where}.modes': '{mode}' is not a mode of '{name}' here "
                                  f"(allowed: {', '.join(modes_allowed)})")
        for field, values in allowed.items():
            for value in block.get(field) or []:
                if value not in values:
                    section_key = sweep_key if field == "points" else field
                    raise ConfigError(f"config key '{where}.{field}': {value} is not in the section's "
                                      f"{section_key} {values}")


TOKENIZER_KEYS = {
    "kmeans": ("kind", "sample", "seed", "fit_jets", "k", "n_fit", "iterations"),
    "vqvae": ("kind", "sample", "seed", "fit_jets", "codebook_size", "latent_dim", "dim", "layers", "heads",
              "ff_mult", "commitment_weight", "dead_code_threshold", "kmeans_init", "steps", "batch_size",
              "lr", "warmup_steps", "features"),
}
# task → (backbone key naming its tokenizer, the tokenizer kind it needs)
TOKEN_TASKS = {"kmeans": ("tokenizer", "kmeans"), "vqvae": ("vqvae_tokenizer", "vqvae"),
               "gpt": ("gpt_tokenizer", "vqvae")}
GENERATIVE_TASKS = ("cnf", "cfm", "ssfm")


def _check_backbone(cfg: Mapping[str, Any], name: str, bb: Mapping[str, Any]) -> None:
    key = f"backbones.{name}"
    gpt = bb["method"] == "gpt"
    if gpt != ("gpt" in bb["tasks"]) or (gpt and bb["tasks"] != ["gpt"]):
        raise ConfigError(f"config key '{key}.tasks': the gpt task is generative pre-training on its "
                          f"own; use method: gpt with tasks: [gpt] (got method {bb['method']}, "
                          f"tasks {bb['tasks']})")
    if bb["conditional"] and bb["method"] != "gpt":
        raise ConfigError(f"config key '{key}.conditional': class conditioning needs method: gpt")
    for option in ("relative_inputs", "pair_bias"):
        if gpt and bb["encoder"][option]:
            raise ConfigError(f"config key '{key}.encoder.{option}': a gpt backbone reads tokens in "
                              "sequence, not constituent kinematics; this option is for set encoders")
    parts = [("encoder", bb["encoder"]), ("decoder", bb["decoder"]), ("heads.ssfm", bb["heads"]["ssfm"])]
    for part, section in parts:
        if bb["method"] in ("mpm-v1", "gpt") and part == "decoder":
            continue  # an MLP head (mpm-v1) or none (gpt): no attention
        if section["dim"] % section["heads"]:
            raise ConfigError(f"config key '{key}.{part}.heads': {section['heads']} heads "
                              f"do not divide dim {section['dim']}")
    if bb["method"] == "mpm-v1":
        bad = [t for t in bb["tasks"] if t in GENERATIVE_TASKS]
        if bad:
            raise ConfigError(f"config key '{key}.tasks': {', '.join(bad)} need the mpm-v2 decoder "
                              "(method: mpm-v2)")
    low, high = bb["ssfm_mask_range"]
    if low > high:
        raise ConfigError(f"config key '{key}.ssfm_mask_range': [{low:g}, {high:g}] is not a range")
    for task, (ref, kind) in TOKEN_TASKS.items():
        if task not in bb["tasks"]:
            continue
        tok_name = bb[ref]
        if tok_name not in cfg["tokenizers"]:
            raise ConfigError(f"config key '{key}.{ref}': no tokenizer named '{tok_name}' "
                              f"(have: {', '.join(cfg['tokenizers']) or 'none'})")
        tok = cfg["tokenizers"][tok_name]
        if tok["kind"] != kind:
            raise ConfigError(f"config key '{key}.{ref}': the {task} task needs a {kind} tokenizer, "
                              f"'{tok_name}' is {tok['kind']}")
        if tok["sample"] != bb["sample"]:
            raise ConfigError(f"config key '{key}.{ref}': tokenizer '{tok_name}' is fitted on the "
                              f"{tok['sample']} sample, the backbone pre-trains on {bb['sample']}")


# Encoder keys of the set encoder that a gpt backbone's causal transformer does not have.
SET_ENCODER_KEYS = ("registers", "relative_inputs", "pair_bias", "pair_hidden")


def backbone_recipe(bb: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a backbone entry its pre-training uses: unused heads, tokenizer names and
    mask settings are left out so that changing them re-runs nothing."""
    tasks = bb["tasks"]
    out = {k: v for k, v in bb.items() if k not in ("heads", "tokenizer", "vqvae_tokenizer", "gpt_tokenizer",
                                                    "mask_fraction", "ssfm_mask_range", "pretrain",
                                                    "conditional", "class_dropout")}
    if bb["method"] == "gpt":
        out["encoder"] = {k: v for k, v in bb["encoder"].items() if k not in SET_ENCODER_KEYS}
        del out["decoder"]
        out["conditional"] = bb["conditional"]
        if bb["conditional"]:
            out["class_dropout"] = bb["class_dropout"]
        out["gpt_tokenizer"] = bb["gpt_tokenizer"]
        return out
    out["heads"] = {t: bb["heads"][t] for t in GENERATIVE_TASKS if t in tasks}
    if set(tasks) <= {"ssfm"}:
        del out["decoder"]  # the ssfm decoder is sized by heads.ssfm
    if "ssfm" in tasks:
        out["ssfm_mask_range"] = bb["ssfm_mask_range"]
    else:
        out["mask_fraction"] = bb["mask_fraction"]
    for task, (ref, _) in TOKEN_TASKS.items():
        if task in tasks:
            out[ref] = bb[ref]
    return out


def backbone_tokenizers(cfg: Mapping[str, Any], name: str) -> dict[str, str]:
    """Token task → tokenizer name, for the token tasks of one backbone."""
    bb = cfg["backbones"][name]
    return {task: bb[ref] for task, (ref, _) in TOKEN_TASKS.items() if task in bb["tasks"]}


def load_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    with open(path) as handle:
        try:
            raw = yaml.safe_load(handle) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return validate_config(raw)


def config_hash(section: Any) -> str:
    """Stable short hash of a config section (key order does not matter)."""
    text = json.dumps(section, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------
# What each stage depends on. These dicts are the Snakemake rules' params, so a
# change in any of them re-runs that rule and its descendants, and nothing else.
# ---------------------------------------------------------------------------


# Keys of a downstream section that choose which jobs exist rather than what one job does.
SWEEP_KEYS = ("backbones", "references", "modes", "seeds", "train_sizes", "signal_jets", "supervised",
              "runs", "threads", "resources")


def benchmark_sample(cfg: Mapping[str, Any], benchmark: str) -> str:
    """The sample whose jets a benchmark trains and scores on (jet_generation: its backbones')."""
    if benchmark in BENCHMARK_SAMPLES:
        return BENCHMARK_SAMPLES[benchmark]
    if benchmark == "jet_generation" and benchmark in cfg["downstream"]:
        return cfg["backbones"][cfg["downstream"][benchmark]["backbones"][0]]["sample"]
    raise ConfigError(f"unknown benchmark '{benchmark}' (have: {', '.join(cfg['downstream'])})")


def scratch_architecture(cfg: Mapping[str, Any], name: str) -> dict[str, Any]:
    """What a randomly initialised backbone of this name is (scratch mode): its encoder, and for a
    gpt backbone also the tokenizer whose trained weights it reads and its class tokens."""
    bb = cfg["backbones"][name]
    if bb["method"] != "gpt":
        return {"encoder": bb["encoder"]}
    recipe = backbone_recipe(bb)
    return {"method": "gpt", "encoder": recipe["encoder"], "conditional": bb["conditional"],
            "sample": bb["sample"], "tokenizer": stage_params(cfg, "tokenize", tokenizer=bb["gpt_tokenizer"])}


def parse_point(point: str) -> dict[str, int | None]:
    """A sweep point wildcard: ``all`` / ``n1000`` (training jets) or ``s300`` (CWoLa signal jets)."""
    if point == "all":
        return {"n_train": None}
    kind, number = point[:1], point[1:]
    if kind in ("n", "s") and number.isdigit():
        return {"n_train": int(number)} if kind == "n" else {"n_train": None, "n_signal": int(number)}
    raise ConfigError(f"bad sweep point '{point}': expected 'all', 'n<jets>' or 's<signal jets>'")


def benchmark_jobs(cfg: Mapping[str, Any], benchmark: str) -> list[dict[str, str]]:
    """Wildcards of every run of one benchmark (backbone, mode, point, seed): the section's
    ``runs`` blocks when it has them, else the whole product of its lists."""
    section = cfg["downstream"][benchmark]
    if benchmark == "jet_generation":
        return ([{"backbone": b, "mode": "generated", "point": "all", "seed": str(s)}
                 for b in section["backbones"] for s in section["seeds"]]
                + [{"backbone": b, "mode": "reconstructed", "point": "all", "seed": "0"}
                   for b in section["backbones"]])
    # A scratch run depends on the architecture only: one per distinct architecture, under the
    # first backbone that has it.
    first_of: dict[str, str] = {}
    scratch_name: dict[str, str] = {}
    for b in section["backbones"]:
        architecture = json.dumps(scratch_architecture(cfg, b), sort_keys=True)
        scratch_name[b] = first_of.setdefault(architecture, b)
    jobs: list[dict[str, str]] = []
    for block in run_blocks(section):
        name = block["backbone"]
        for mode in block["modes"]:
            name_of_run = scratch_name.get(name, name) if mode == "scratch" else name
            points = ["all"] if mode == "supervised" else [point_name(benchmark, p) for p in block["points"]]
            for point in points:
                for seed in block["seeds"]:
                    job = {"backbone": name_of_run, "mode": mode, "point": point, "seed": str(seed)}
                    if job not in jobs:
                        jobs.append(job)
    return jobs


def point_name(benchmark: str, value: int | None) -> str:
    """The sweep point wildcard of a ``train_sizes`` or ``signal_jets`` value: all, n1000, s300."""
    if benchmark == "cwola_sic":
        return f"s{value}"
    return "all" if value is None else f"n{value}"


def sweep_points(section: Mapping[str, Any]) -> list[int | None]:
    """A section's sweep: CWoLa's ``signal_jets``, every other benchmark's ``train_sizes``."""
    return list(section["signal_jets"] if "signal_jets" in section else section["train_sizes"])


def run_blocks(section: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The section's ``runs`` with every key filled from the section's lists; without ``runs``,
    the blocks of the whole product (every backbone in every mode, every reference from scratch
    and, for CWoLa with ``supervised``, the first backbone and the references supervised)."""
    references = list(section.get("references", []))
    if section.get("runs") is not None:
        return [{"backbone": block["backbone"],
                 "modes": list(block.get("modes") or (["scratch"] if block["backbone"] in references
                                                       else section["modes"])),
                 "points": list(block["points"]) if "points" in block else sweep_points(section),
                 "seeds": list(block.get("seeds") or section["seeds"])}
                for block in section["runs"]]
    points, seeds = sweep_points(section), list(section["seeds"])
    blocks = [{"backbone": b, "modes": list(section["modes"]), "points": points, "seeds": seeds}
              for b in section["backbones"]]
    blocks += [{"backbone": r, "modes": ["scratch"], "points": points, "seeds": seeds} for r in references]
    if section.get("supervised"):
        blocks += [{"backbone": b, "modes": ["supervised"], "points": [None], "seeds": seeds}
                   for b in [*section["backbones"][:1], *references]]
    return blocks


def shard_names(cfg: Mapping[str, Any], sample: str = "btag") -> list[str]:
    """Shard wildcards of one sample, e.g. ``bb-000``; one Snakemake job and one ROOT file each.

    Empty when the sample is read from existing ROOT files instead of generated.
    """
    section = cfg["samples"][sample]
    if section["source"] != "pythia":
        return []
    shards = section["generate"]["shards"]
    order = list(PROCESS_NAMES[sample])  # catalogue order, not the file's
    return [
        f"{process}-{index:03d}"
        for process in sorted(shards, key=order.index)
        for index in range(shards[process])
    ]


def parse_shard(shard: str) -> tuple[str, int]:
    """``bb-003`` → (``bb``, 3)."""
    process, sep, index = shard.rpartition("-")
    if not sep or not process or not index.isdigit():
        raise ConfigError(f"shard '{shard}': expected <process>-<index>, e.g. bb-000")
    return process, int(index)


# how a training job is launched, not what it computes: kept out of its params
LAUNCH_KEYS = ("threads", "resources")


def training_ranks(cfg: Mapping[str, Any], backbone: str | None = None, benchmark: str | None = None,
                   tokenizer: str | None = None) -> dict[str, int]:
    """Nodes and ranks per node of a training job: a backbone's pre-training (its ``resources``
    over the ``pretrain`` section's), a downstream run of ``benchmark`` or a tokenizer's fit."""
    if tokenizer is not None:
        ranks = dict(cfg["tokenizers"][tokenizer]["resources"])
    elif benchmark is not None:
        ranks = dict(cfg["downstream"][benchmark]["resources"])
    else:
        assert backbone is not None
        ranks = dict(cfg["pretrain"]["resources"]) | dict(cfg["backbones"][backbone].get("resources") or {})
    return {"nodes": int(ranks["nodes"]), "gpus_per_node": int(ranks["gpus_per_node"])}


def compile_option(cfg: Mapping[str, Any]) -> dict[str, bool]:
    """``{"compile": True}`` for a training's params when the config asks for torch.compile, else
    nothing: runs made before the option existed (all eager) keep their params and stay valid."""
    return {"compile": True} if cfg.get("compile") else {}


def stage_params(cfg: Mapping[str, Any], stage: str, **wildcards: str) -> dict[str, Any]:
    """The config a stage depends on, resolved for one job."""
    if stage == "generate":
        sample = wildcards["sample"]
        gen = dict(cfg["generate"]) | dict(cfg["samples"][sample]["generate"])
        gen.pop("shards")  # a shard's content does not depend on how many others exist
        process, index = parse_shard(wildcards["shard"])
        return {"sample": sample, "generate": gen, "process": process, "shard_index": index}
    if stage == "jets":
        sample = wildcards["sample"]
        section = cfg["samples"][sample]
        # one shard's jets: class fractions are the manifest's business, and a public file's
        # jets do not depend on the glob that found it
        jets = {k: v for k, v in section["jets"].items() if k != "fractions"}
        out: dict[str, Any] = {"sample": sample, "source": section["source"], "jets": jets}
        if section["source"] == "pythia":
            det = cfg["detector"]
            # btag jets use tracks only, so calorimeter settings do not re-run them
            out["detector"] = det if sample == "boosted" else {k: v for k, v in det.items()
                                                                   if k != "calorimeter"}
        return out
    if stage == "manifest":
        sample = wildcards["sample"]
        return {"sample": sample, "split": wildcards["split"],
                "fractions": cfg["samples"][sample]["jets"]["fractions"]}
    if stage == "tokenize":
        name = wildcards["tokenizer"]
        tok = cfg["tokenizers"][name]
        # only the keys of its kind: a vqvae setting does not re-run a kmeans tokenizer
        return {"name": name, "sample": tok["sample"],
                "tokenizer": {k: tok[k] for k in TOKENIZER_KEYS[tok["kind"]]}}
    if stage == "pretrain":
        name = wildcards["backbone"]
        bb = cfg["backbones"][name]
        params: dict[str, Any] = {
            "name": name,
            "backbone": backbone_recipe(bb),
            # threads and ranks change speed, not results: they travel as the rule's threads and launcher
            "pretrain": {k: v for k, v in cfg["pretrain"].items() if k not in LAUNCH_KEYS} | bb["pretrain"],
            "device": cfg["device"],
            **compile_option(cfg),
        }
        params["tokenizers"] = {task: stage_params(cfg, "tokenize", tokenizer=tok)
                                for task, tok in backbone_tokenizers(cfg, name).items()}
        return params
    if stage == "generate_jets":
        section = cfg["downstream"]["jet_generation"]
        return {"backbone_name": wildcards["backbone"], "seed": int(wildcards["seed"]),
                "settings": {k: section[k] for k in ("temperature", "top_k", "batch_size")},
                "device": cfg["device"]}
    if stage == "evaluate_generation":
        return {"benchmark": "jet_generation", "backbone_name": wildcards["backbone"],
                "mode": wildcards["mode"], "seed": int(wildcards["seed"]),
                "settings": _generation_scoring(cfg), "device": cfg["device"]}
    if stage == "downstream":
        benchmark, name = wildcards["benchmark"], wildcards["backbone"]
        section = cfg["downstream"][benchmark]
        params = {"benchmark": benchmark, "backbone_name": name, "mode": wildcards["mode"],
                  "point": parse_point(wildcards["point"]), "seed": int(wildcards["seed"]),
                  "settings": {k: v for k, v in section.items() if k not in SWEEP_KEYS},
                  "device": cfg["device"], **compile_option(cfg)}
        # what the model is: a reference's config, a gpt backbone's architecture (with its
        # tokenizer), or the encoder alone; the pre-training recipe stays out, so that changing
        # it does not re-run the scratch runs
        if name in cfg["references"]:
            return params | {"reference": cfg["references"][name]}
        if cfg["backbones"][name]["method"] == "gpt":
            return params | {"architecture": scratch_architecture(cfg, name)}
        return params | {"encoder": cfg["backbones"][name]["encoder"]}
    if stage == "downstream_baselines":
        benchmark = wildcards["benchmark"]
        if benchmark == "jet_generation":
            return {"benchmark": benchmark, "settings": _generation_scoring(cfg)}
        section = cfg["downstream"][benchmark]
        keep = ("signal", "background", "background_rejection")
        return {"benchmark": benchmark, "settings": {k: section[k] for k in keep if k in section}}
    raise ConfigError(f"unknown stage '{stage}'")


def _generation_scoring(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What scoring generated jets depends on: the histogram bins and the jets' radius (τ_N)."""
    sample = benchmark_sample(cfg, "jet_generation")
    return {"bins": cfg["downstream"]["jet_generation"]["bins"], "sample": sample,
            "radius": cfg["samples"][sample]["jets"]["radius"]}
