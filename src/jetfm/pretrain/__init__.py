"""Pre-training of backbones (rule pretrain, `jetfm pretrain`)."""

from jetfm.pretrain.masking import compact, sample_mask
from jetfm.pretrain.mpm import MaskedParticleModel
from jetfm.pretrain.mpm_v1 import MaskedParticleModelV1
from jetfm.pretrain.train import build_model, load_backbone, pretrain_backbone

__all__ = ["MaskedParticleModel", "MaskedParticleModelV1", "build_model", "compact", "load_backbone",
           "pretrain_backbone", "sample_mask"]
