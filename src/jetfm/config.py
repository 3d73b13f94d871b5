"""Configuration: one JSON schema (workflow/schemas/config.schema.yaml) with defaults.

The Snakefile and the CLI both go through :func:`load_config` / :func:`validate_config`,
and both take a rule's parameters from :func:`stage_params`, so a job started by hand
sees exactly what Snakemake would pass it.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

# jetfm is installed editable from its checkout (README), so the schema is read where
# the workflow keeps it: one file for Snakemake, the CLI and the docs.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration problem, with the offending key in the message."""


def load_schema() -> dict[str, Any]:
    if not SCHEMA_PATH.exists():
        raise ConfigError(f"config schema not found at {SCHEMA_PATH}; install jetfm with pip -e")
    with open(SCHEMA_PATH) as handle:
        return yaml.safe_load(handle)


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
    instance = copy.deepcopy(dict(config))
    validator = _DefaultingValidator(load_schema())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(_describe(errors[0]))
    _check_consistency(instance)
    return instance


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
        elif not section["path"]:
            raise ConfigError(f"config key '{key}.path': source '{section['source']}' needs a glob "
                              "of input ROOT files")
    for name, bb in cfg["backbones"].items():
        for part in ("encoder", "decoder"):
            if bb[part]["dim"] % bb[part]["heads"]:
                raise ConfigError(
                    f"config key 'backbones.{name}.{part}.heads': {bb[part]['heads']} heads "
                    f"do not divide dim {bb[part]['dim']}"
                )
        if "kmeans" in bb["tasks"] and bb["tokenizer"] not in cfg["tokenizers"]:
            raise ConfigError(
                f"config key 'backbones.{name}.tokenizer': no tokenizer named "
                f"'{bb['tokenizer']}' (have: {', '.join(cfg['tokenizers']) or 'none'})"
            )
    for name in cfg["downstream"]["vertexing"]["backbones"]:
        if name not in cfg["backbones"]:
            raise ConfigError(
                f"config key 'downstream.vertexing.backbones': no backbone named '{name}' "
                f"(have: {', '.join(cfg['backbones'])})"
            )


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


SAMPLES = ("btag", "boosted")


def shard_names(cfg: Mapping[str, Any], sample: str = "btag") -> list[str]:
    """Shard wildcards of one sample, e.g. ``bb-000``; one Snakemake job and one ROOT file each.

    Empty when the sample is read from existing ROOT files instead of generated.
    """
    section = cfg["samples"][sample]
    if section["source"] != "pythia":
        return []
    shards = section["generate"]["shards"]
    order = list(load_schema()["properties"]["samples"]["properties"][sample]["properties"]
                 ["generate"]["properties"]["shards"]["properties"])  # catalogue order, not the file's
    return [
        f"{process}-{index:03d}"
        for process in sorted(shards, key=order.index)
        for index in range(shards[process])
    ]


def stage_params(cfg: Mapping[str, Any], stage: str, **wildcards: str) -> dict[str, Any]:
    """The config a stage depends on, resolved for one job."""
    if stage == "generate":
        sample = wildcards["sample"]
        gen = dict(cfg["generate"]) | dict(cfg["samples"][sample]["generate"])
        gen.pop("shards")  # a shard's content does not depend on how many others exist
        process, index = wildcards["shard"].rsplit("-", 1)
        return {"sample": sample, "generate": gen, "process": process, "shard_index": int(index)}
    if stage == "jets":
        sample = wildcards["sample"]
        section = cfg["samples"][sample]
        out: dict[str, Any] = {"sample": sample, "source": section["source"], "jets": section["jets"]}
        if section["source"] == "pythia":
            det = cfg["detector"]
            # btag jets use tracks only, so calorimeter settings do not re-run them
            out["detector"] = det if sample == "boosted" else {k: v for k, v in det.items()
                                                                   if k != "calorimeter"}
        else:
            out["path"] = section["path"]
        return out
    if stage == "tokenize":
        name = wildcards["tokenizer"]
        return {"name": name, "tokenizer": cfg["tokenizers"][name]}
    if stage == "pretrain":
        name = wildcards["backbone"]
        bb = cfg["backbones"][name]
        params: dict[str, Any] = {
            "name": name,
            "backbone": bb,
            # threads change speed, not results: they travel as the rule's threads
            "pretrain": {k: v for k, v in cfg["pretrain"].items() if k != "threads"},
            "device": cfg["device"],
        }
        if "kmeans" in bb["tasks"]:
            params["tokenizer"] = cfg["tokenizers"][bb["tokenizer"]]
        return params
    if stage == "vertexing":
        name = wildcards["backbone"]
        vtx = {k: v for k, v in cfg["downstream"]["vertexing"].items()
               if k not in ("backbones", "modes", "seeds", "threads")}
        return {
            "benchmark": "btag_vertex_ari",
            "backbone_name": name,
            # scratch needs only the architecture; the pre-training recipe stays out
            # so that changing it does not re-run the scratch baseline.
            "encoder": cfg["backbones"][name]["encoder"],
            "mode": wildcards["mode"],
            "seed": int(wildcards["seed"]),
            "vertexing": vtx,
            "device": cfg["device"],
        }
    raise ConfigError(f"unknown stage '{stage}'")
