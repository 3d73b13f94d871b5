"""Transformer building blocks and the backbones: the set encoder of masked particle modelling
(:class:`JetEncoder`) here; in their own modules, imported from there, the token-sequence
encoder of generative pre-training (:mod:`jetfm.models.token_encoder`) with its next-token
model (:mod:`jetfm.models.next_token`), the VQ-VAE network of the tokenizers
(:mod:`jetfm.models.vqvae`) and the backbone checkpoints (:mod:`jetfm.models.checkpoint`)."""

from jetfm.models.encoder import JetEncoder
from jetfm.models.transformer import KVCache, Transformer, TransformerBlock

__all__ = ["JetEncoder", "KVCache", "Transformer", "TransformerBlock"]
