"""K-Means tokenizer over the preprocessed continuous track features, fitted with faiss."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

from jetfm.data.features import FEATURE_VERSION, preprocess_continuous
from jetfm.jets.parquet_io import read_jet_table
from jetfm.provenance import atomic_output, provenance


@dataclass(frozen=True)
class KMeansTokenizer:
    centroids: np.ndarray  # float32 [K, 7]
    info: dict[str, Any]

    @property
    def k(self) -> int:
        return self.centroids.shape[0]

    def encode(self, features: np.ndarray) -> np.ndarray:
        """Token (nearest centroid) of each row of preprocessed features [n, 7]."""
        index = faiss.IndexFlatL2(self.centroids.shape[1])
        index.add(np.ascontiguousarray(self.centroids))
        _, token = index.search(np.ascontiguousarray(features, dtype=np.float32), 1)
        return token[:, 0].astype(np.int64)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        return self.centroids[tokens]

    def save(self, path: str | Path) -> None:
        with atomic_output(path) as tmp:
            torch.save({"kind": "kmeans", "centroids": torch.from_numpy(self.centroids),
                        "info": self.info}, tmp)

    @classmethod
    def load(cls, path: str | Path) -> KMeansTokenizer:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"tokenizer not found: {path}")
        blob = torch.load(path, map_location="cpu", weights_only=False)
        if blob.get("kind") != "kmeans":
            raise ValueError(f"{path}: not a K-Means tokenizer")
        if blob["info"].get("feature_version") != FEATURE_VERSION:
            raise ValueError(f"{path}: fitted on feature version {blob['info'].get('feature_version')}, "
                             f"this jetfm uses {FEATURE_VERSION}; re-run the tokenize rule")
        return cls(blob["centroids"].numpy(), blob["info"])


def fit_tokenizer(train_file: str | Path, params: dict[str, Any], out: str | Path,
                  threads: int = 1, progress: bool = True) -> KMeansTokenizer:
    """Fit K-Means on up to ``n_fit`` training tracks; report utilisation and perplexity."""
    cfg = params["tokenizer"]
    table = read_jet_table(train_file)
    features = preprocess_continuous(table.tracks)
    rng = np.random.default_rng(cfg["seed"])
    if len(features) > cfg["n_fit"]:
        features = features[rng.choice(len(features), cfg["n_fit"], replace=False)]
    if len(features) < cfg["k"]:
        raise ValueError(f"tokenizer '{params['name']}': {len(features)} training tracks for "
                         f"k={cfg['k']} centroids; generate more events or lower k")
    faiss.omp_set_num_threads(threads)
    kmeans = faiss.Kmeans(features.shape[1], cfg["k"], niter=cfg["iterations"],
                          seed=cfg["seed"], verbose=progress, max_points_per_centroid=10**9)
    kmeans.train(np.ascontiguousarray(features))
    tokenizer = KMeansTokenizer(kmeans.centroids.astype(np.float32), {})
    tokens = tokenizer.encode(features)
    usage = np.bincount(tokens, minlength=cfg["k"]) / len(tokens)
    nonzero = usage[usage > 0]
    quality = {
        "n_fit_tracks": len(features),
        "utilisation": float((usage > 0).mean()),
        "perplexity": float(np.exp(-(nonzero * np.log(nonzero)).sum())),
        "rms_residual": float(np.sqrt(((tokenizer.decode(tokens) - features) ** 2).mean())),
        "inertia_per_track": float(kmeans.obj[-1] / len(features)),
    }
    info = provenance("tokenize", params) | {"feature_version": FEATURE_VERSION, "quality": quality}
    tokenizer = KMeansTokenizer(tokenizer.centroids, info)
    tokenizer.save(out)
    return tokenizer
