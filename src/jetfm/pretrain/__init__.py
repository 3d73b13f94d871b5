"""Pre-training of backbones (rule pretrain, `jetfm pretrain`)."""

from jetfm.pretrain.masking import compact, sample_mask
from jetfm.pretrain.mpm import MaskedParticleModel
from jetfm.pretrain.train import load_backbone, pretrain_backbone

__all__ = ["MaskedParticleModel", "compact", "load_backbone", "pretrain_backbone", "sample_mask"]
