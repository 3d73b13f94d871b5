"""Parquet jet sets → padded arrays and torch tensors for training."""

from jetfm.data.features import PaddedJets, pad_jets, preprocess_continuous

__all__ = ["PaddedJets", "pad_jets", "preprocess_continuous"]
