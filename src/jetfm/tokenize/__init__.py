"""Constituent tokenizers (rule tokenize, `jetfm tokenize`)."""

from jetfm.tokenize.kmeans import KMeansTokenizer, fit_tokenizer

__all__ = ["KMeansTokenizer", "fit_tokenizer"]
