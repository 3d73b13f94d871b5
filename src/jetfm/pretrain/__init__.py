"""Pre-training of backbones (rule pretrain, `jetfm pretrain`): MPMv1, MPMv2 and OmniJet-α (gpt).
The checkpoints it writes are read with :mod:`jetfm.models.checkpoint`."""

from jetfm.pretrain.masking import compact, sample_mask
from jetfm.pretrain.mpm import MaskedParticleModel
from jetfm.pretrain.mpm_v1 import MaskedParticleModelV1
from jetfm.pretrain.train import build_model, pretrain_backbone

__all__ = ["MaskedParticleModel", "MaskedParticleModelV1", "build_model", "compact", "pretrain_backbone",
           "sample_mask"]
