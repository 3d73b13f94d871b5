"""Backbone checkpoints in one place: writing them, reading them back with their checks (kind,
feature version, the architecture a config entry expects), rebuilding the encoder (or a gpt
backbone's whole next-token model) they hold, and the record a result keeps of the file it used.
Pre-training writes them; downstream runs, jet generation and the tokenizer-backed gpt encoder
read them, without importing any training loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from jetfm.data.features import FEATURE_VERSION
from jetfm.jets.build import label_names
from jetfm.models.encoder import JetEncoder
from jetfm.models.next_token import NextTokenModel
from jetfm.models.token_encoder import Backbone, TokenJetEncoder
from jetfm.provenance import atomic_output

if TYPE_CHECKING:
    from jetfm.tokenize.vqvae import VQVAETokenizer

CHECKPOINT_KIND = "backbone"


def write_backbone_checkpoint(blob: Mapping[str, Any], out: str | Path) -> None:
    """Write a pre-trained backbone (its method, encoder config and state, whole model state,
    provenance, ...) atomically; it must say what it is (``kind``, ``feature_version``)."""
    if blob.get("kind") != CHECKPOINT_KIND or blob.get("feature_version") != FEATURE_VERSION:
        raise ValueError(f"{out}: a backbone checkpoint needs kind {CHECKPOINT_KIND!r} and feature_version "
                         f"{FEATURE_VERSION}")
    missing = [k for k in ("method", "encoder_config", "encoder_state", "model_state", "provenance")
               if k not in blob]
    if missing:
        raise ValueError(f"{out}: a backbone checkpoint without {', '.join(missing)}")
    with atomic_output(out) as tmp:
        torch.save(dict(blob), tmp)


def token_encoder(recipe: Mapping[str, Any], tokenizer: VQVAETokenizer) -> TokenJetEncoder:
    """A gpt backbone around the trained ``tokenizer`` (its weights copied in, frozen)."""
    n_classes = len(label_names(recipe["sample"])) if recipe["conditional"] else 0
    encoder = TokenJetEncoder(**recipe["encoder"], tokenizer=tokenizer.model.config, n_classes=n_classes)
    encoder.tokenizer.load_state_dict(tokenizer.model.state_dict())
    return encoder


def read_backbone_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A backbone checkpoint's contents, checked for kind and feature version."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"backbone checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # a truncated or foreign file: say which one
        raise ValueError(f"{path}: not a readable backbone checkpoint ({exc})") from exc
    if not isinstance(blob, dict) or blob.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{path}: not a jetfm backbone checkpoint")
    if blob.get("feature_version") != FEATURE_VERSION:
        raise ValueError(f"{path}: trained on feature version {blob.get('feature_version')}, "
                         f"this jetfm uses {FEATURE_VERSION}; re-run pretrain")
    return blob


def encoder_from_config(config: Mapping[str, Any]) -> Backbone:
    """An untrained backbone of the architecture a checkpoint's ``encoder_config`` describes."""
    if config.get("kind") == "token":
        return TokenJetEncoder.from_config(dict(config))
    return JetEncoder.from_config(dict(config))


def check_architecture(blob: Mapping[str, Any], expected: Mapping[str, Any], path: str | Path,
                       name: str) -> None:
    """Refuse a checkpoint whose encoder differs from the config entry ``expected`` of backbone
    ``name`` in any key the entry sets (a checkpoint from another config or another backbone)."""
    actual = blob["encoder_config"]
    differ = sorted(k for k in expected if actual.get(k, "<absent>") != expected[k])
    if differ:
        want = ", ".join(f"{k}={expected[k]!r}" for k in differ)
        have = ", ".join(f"{k}={actual.get(k, '<absent>')!r}" for k in differ)
        raise ValueError(f"{path}: backbone '{name}' is configured with {want} but the checkpoint's "
                         f"encoder has {have}; re-run pretrain for '{name}' or give its own checkpoint")


def checkpoint_record(path: str | Path) -> dict[str, Any]:
    """What a result says about the checkpoint it used: full path, SHA-256, the encoder it really
    holds, and the config hash of the pre-training that made it."""
    path = Path(path)
    blob = read_backbone_checkpoint(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    architecture = {k: v for k, v in blob["encoder_config"].items() if k != "tokenizer"}
    return {"path": str(path.resolve()), "sha256": digest.hexdigest(), "method": blob.get("method"),
            "architecture": architecture,
            "pretrain_config_hash": blob.get("provenance", {}).get("config_hash")}


def load_backbone(path: str | Path, map_location: str | torch.device = "cpu",
                  expected: Mapping[str, Any] | None = None, name: str = "") -> Backbone:
    """The pre-trained encoder of a backbone checkpoint (a gpt backbone with its tokenizer),
    checked against its config entry ``expected`` (the backbone's ``encoder``) when given."""
    blob = read_backbone_checkpoint(path, map_location)
    if expected is not None:
        check_architecture(blob, expected, path, name or Path(path).stem)
    encoder = encoder_from_config(blob["encoder_config"])
    encoder.load_state_dict(blob["encoder_state"])
    return encoder


def load_next_token_model(path: str | Path, map_location: str | torch.device = "cpu"
                          ) -> tuple[NextTokenModel, dict[str, Any]]:
    """The whole generative model of a gpt backbone checkpoint (encoder and next-token head), and
    the checkpoint's contents."""
    blob = read_backbone_checkpoint(path, map_location)
    if blob.get("method") != "gpt":
        raise ValueError(f"{path}: a {blob.get('method')} backbone; only gpt backbones generate jets")
    encoder = encoder_from_config(blob["encoder_config"])
    assert isinstance(encoder, TokenJetEncoder)
    model = NextTokenModel(encoder)
    model.load_state_dict(blob["model_state"])
    return model.eval(), blob
