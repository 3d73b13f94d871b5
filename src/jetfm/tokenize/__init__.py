"""Constituent tokenizers (rule tokenize, `jetfm tokenize`): K-Means (MPMv2) and VQ-VAE (MPMv1).

Both kinds share one interface: ``n_tokens``, ``info``, ``feature_names`` (the tokenized
continuous features), ``tokens(data)`` (int64 [J, W], -1 on padding), ``reconstruct(data)``
(float32 [J, W, F] in ``feature_names`` order, 0 on padding), ``save`` and ``load``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from jetfm.contract import CONTINUOUS_FEATURES
from jetfm.data.features import FEATURE_VERSION, pad_jets
from jetfm.distributed import World, per_rank_batch, process_group, world_from_environment
from jetfm.jets.jet_sets import read_jet_set
from jetfm.provenance import atomic_output, provenance
from jetfm.tokenize.kmeans import KMeansTokenizer, fit_kmeans, read_checkpoint
from jetfm.tokenize.report import tokenizer_quality
from jetfm.tokenize.vqvae import VQVAETokenizer, fit_vqvae

Tokenizer = KMeansTokenizer | VQVAETokenizer

__all__ = ["KMeansTokenizer", "Tokenizer", "VQVAETokenizer", "check_made_by", "fit_tokenizer",
           "load_tokenizer", "validation_arrays"]


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Either kind of tokenizer, chosen by the file's ``kind``."""
    blob = read_checkpoint(path)
    if blob["kind"] == "kmeans":
        return KMeansTokenizer.from_checkpoint(blob)
    return VQVAETokenizer.from_checkpoint(blob)


def check_made_by(tokenizer: Tokenizer, expected: Any, path: str | Path, user: str) -> None:
    """Refuse a tokenizer file made by other settings than ``user`` expects (its tokenize params)."""
    from jetfm.config import config_hash

    made_by = tokenizer.info.get("config_hash")
    if made_by is not None and made_by != config_hash(expected):
        raise ValueError(f"{path}: made by a different tokenizer config than {user} expects; "
                         "re-run the tokenize rule")


def fit_tokenizer(train_file: str | Path, val_file: str | Path, params: dict[str, Any], out: str | Path,
                  report_out: str | Path, threads: int = 1, progress: bool = True,
                  world: World | None = None) -> Tokenizer:
    """Fit the tokenizer ``params['tokenizer']`` on the training jets and report on the validation jets.

    Writes the checkpoint ``out`` and the JSON report ``report_out`` (`jetfm tokenize` draws the
    figure beside it). The quality numbers (held-out) are also stored in ``info['quality']``.
    A VQ-VAE trains on the CPU ranks a launcher started (``world``, from torchrun's or
    ``jetfm launch``'s environment; gloo); rank 0 writes the outputs. K-Means fits in one process.
    """
    cfg, name = params["tokenizer"], params["name"]
    kind = cfg.get("kind", "kmeans")
    world = world_from_environment() if world is None else world
    if world.distributed and kind != "vqvae":
        raise ValueError(f"tokenizer '{name}': a {kind} tokenizer fits in one process, "
                         f"not {world.size} ranks")
    if kind not in ("kmeans", "vqvae"):
        raise ValueError(f"tokenizer '{name}': unknown kind {kind!r} (expected 'kmeans' or 'vqvae')")
    if world.distributed:
        per_rank_batch(cfg["batch_size"], world, f"tokenizers.{name}.batch_size")
    with process_group(world, torch.device("cpu")) as device:
        bound = cfg.get("fit_jets")  # a sample of the split: bounded memory at any data size
        train = pad_jets(read_jet_set(train_file, params.get("sample"), max_jets=bound))
        if kind == "kmeans":
            tokenizer: Tokenizer = fit_kmeans(train, name, cfg, threads=threads, progress=progress)
        else:
            tokenizer = fit_vqvae(train, name, cfg, threads=threads, progress=progress, world=world,
                                  device=device)
        if not world.main:
            return tokenizer
        return _report(tokenizer, val_file, params, out, report_out)


def _report(tokenizer: Tokenizer, val_file: str | Path, params: dict[str, Any], out: str | Path,
            report_out: str | Path) -> Tokenizer:
    """Score the fitted tokenizer on the validation jets; write it and its report (the figure is
    the report layer's: :func:`jetfm.report.tokenizer.draw_tokenizer_figure`)."""
    cfg, name = params["tokenizer"], params["name"]
    kind, bound = cfg.get("kind", "kmeans"), cfg.get("fit_jets")

    tokens, original, reconstructed = validation_arrays(tokenizer, val_file, params.get("sample"), bound)
    names = tokenizer.feature_names
    quality = tokenizer_quality(tokens, tokenizer.n_tokens, original, reconstructed, names)
    record = provenance("tokenize", params)
    info = record | {"feature_version": FEATURE_VERSION, "quality": quality, "fit": tokenizer.info["fit"]}
    tokenizer = replace(tokenizer, info=info)
    tokenizer.save(out)

    report_out = Path(report_out)
    sample = params.get("sample", cfg.get("sample"))
    report = {"name": name, "kind": kind, "sample": sample, "n_tokens": tokenizer.n_tokens,
              "quality": quality, "fit": info["fit"], "provenance": record}
    with atomic_output(report_out) as tmp:
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return tokenizer


def validation_arrays(tokenizer: Tokenizer, val_file: str | Path, sample: str | None,
                      max_jets: int | None = None) -> tuple[Any, Any, Any]:
    """Tokens, original and reconstructed features (numpy, one row per real constituent) of the
    validation jets: what the quality report measures and the tokenizer figure draws."""
    val = pad_jets(read_jet_set(val_file, sample, max_jets=max_jets))
    valid = val.mask
    tokens = tokenizer.tokens(val)[valid].numpy()
    original = val.features[valid][:, [CONTINUOUS_FEATURES.index(f) for f in tokenizer.feature_names]].numpy()
    reconstructed = tokenizer.reconstruct(val)[valid].numpy()
    return tokens, original, reconstructed
