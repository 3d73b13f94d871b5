"""Transformer building blocks and the backbones: the set encoder of masked particle modelling
(:class:`JetEncoder`) and the token-sequence encoder of generative pre-training
(:class:`jetfm.models.token_encoder.TokenJetEncoder`, imported from its module: it needs the
tokenizer package, which needs these blocks)."""

from jetfm.models.encoder import JetEncoder
from jetfm.models.transformer import KVCache, Transformer, TransformerBlock

__all__ = ["JetEncoder", "KVCache", "Transformer", "TransformerBlock"]
