"""Transformer building blocks and the jet encoder (the backbone)."""

from jetfm.models.encoder import JetEncoder
from jetfm.models.transformer import Transformer, TransformerBlock

__all__ = ["JetEncoder", "Transformer", "TransformerBlock"]
