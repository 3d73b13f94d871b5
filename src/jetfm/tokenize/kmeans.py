"""K-Means tokenizer over the preprocessed continuous track features, fitted with faiss."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

from jetfm.contract import CONTINUOUS_FEATURES
from jetfm.data.features import FEATURE_VERSION, PaddedJets
from jetfm.provenance import atomic_output


def read_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """A tokenizer file's contents, checked for existence, ``kind`` (if given) and feature version."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"tokenizer not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file: say which one
        raise ValueError(f"{path}: not a readable tokenizer file ({exc})") from exc
    if not isinstance(blob, dict) or blob.get("kind") not in ("kmeans", "vqvae"):
        found = blob.get("kind") if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path}: not a tokenizer file (kind {found!r}, expected 'kmeans' or 'vqvae')")
    if kind is not None and blob["kind"] != kind:
        raise ValueError(f"{path}: a {blob['kind']} tokenizer, expected {kind}")
    if blob["info"].get("feature_version") != FEATURE_VERSION:
        raise ValueError(f"{path}: fitted on feature version {blob['info'].get('feature_version')}, "
                         f"this jetfm uses {FEATURE_VERSION}; re-run the tokenize rule")
    return blob


@dataclass(frozen=True)
class KMeansTokenizer:
    centroids: np.ndarray  # float32 [K, 7]
    info: dict[str, Any]

    @property
    def k(self) -> int:
        return self.centroids.shape[0]

    @property
    def n_tokens(self) -> int:
        return self.k

    @property
    def feature_names(self) -> tuple[str, ...]:
        return CONTINUOUS_FEATURES

    def encode(self, features: np.ndarray) -> np.ndarray:
        """Token (nearest centroid) of each row of preprocessed features [n, 7]."""
        faiss.omp_set_num_threads(torch.get_num_threads())  # no more threads than the caller's
        index = faiss.IndexFlatL2(self.centroids.shape[1])
        index.add(np.ascontiguousarray(self.centroids))
        _, token = index.search(np.ascontiguousarray(features, dtype=np.float32), 1)
        return token[:, 0].astype(np.int64)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        return self.centroids[tokens]

    def tokens(self, data: PaddedJets, batch_size: int = 4096) -> torch.Tensor:
        """int64 [J, W], -1 on padding. Tokens depend on the constituent alone (no context)."""
        out = torch.full(data.mask.shape, -1, dtype=torch.int64)
        out[data.mask] = torch.from_numpy(self.encode(data.features[data.mask].numpy()))
        return out

    def reconstruct(self, data: PaddedJets, batch_size: int = 4096) -> torch.Tensor:
        """float32 [J, W, 7]: each constituent's centroid, 0 on padding."""
        out = torch.zeros(data.features.shape, dtype=torch.float32)
        tokens = self.tokens(data)
        out[data.mask] = torch.from_numpy(self.decode(tokens[data.mask].numpy()))
        return out

    def save(self, path: str | Path) -> None:
        with atomic_output(path) as tmp:
            torch.save({"kind": "kmeans", "centroids": torch.from_numpy(self.centroids),
                        "info": self.info}, tmp)

    @classmethod
    def from_checkpoint(cls, blob: dict[str, Any]) -> KMeansTokenizer:
        return cls(blob["centroids"].numpy(), blob["info"])

    @classmethod
    def load(cls, path: str | Path) -> KMeansTokenizer:
        return cls.from_checkpoint(read_checkpoint(path, "kmeans"))


def fit_kmeans(train: PaddedJets, name: str, cfg: dict[str, Any], threads: int = 1,
               progress: bool = True) -> KMeansTokenizer:
    """K-Means on up to ``n_fit`` training constituents; ``info`` holds only the fit numbers."""
    features = train.features[train.mask].numpy()
    rng = np.random.default_rng(cfg["seed"])
    if len(features) > cfg["n_fit"]:
        features = features[rng.choice(len(features), cfg["n_fit"], replace=False)]
    if len(features) < cfg["k"]:
        raise ValueError(f"tokenizer '{name}' (kmeans): {len(features)} training constituents for "
                         f"k={cfg['k']} centroids; generate more events or lower k")
    faiss.omp_set_num_threads(threads)
    kmeans = faiss.Kmeans(features.shape[1], cfg["k"], niter=cfg["iterations"],
                          seed=cfg["seed"], verbose=progress, max_points_per_centroid=10**9)
    kmeans.train(np.ascontiguousarray(features))
    fit = {"n_fit_tracks": len(features), "inertia_per_track": float(kmeans.obj[-1] / len(features))}
    return KMeansTokenizer(kmeans.centroids.astype(np.float32), {"fit": fit})
