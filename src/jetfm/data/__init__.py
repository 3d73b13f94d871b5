"""Parquet jet sets → padded arrays and torch tensors for training."""

from jetfm.data.features import (
    CONTINUOUS_FEATURES,
    N_PID_CLASSES,
    PaddedJets,
    pad_jets,
    preprocess_continuous,
)

__all__ = ["CONTINUOUS_FEATURES", "N_PID_CLASSES", "PaddedJets", "pad_jets", "preprocess_continuous"]
