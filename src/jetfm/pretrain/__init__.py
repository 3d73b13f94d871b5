"""Pre-training of backbones (rule pretrain, `jetfm pretrain`): MPMv1, MPMv2 and OmniJet-α (gpt)."""

from jetfm.pretrain.gpt import NextTokenModel
from jetfm.pretrain.masking import compact, sample_mask
from jetfm.pretrain.mpm import MaskedParticleModel
from jetfm.pretrain.mpm_v1 import MaskedParticleModelV1
from jetfm.pretrain.train import (
    build_model,
    check_architecture,
    checkpoint_record,
    load_backbone,
    load_next_token_model,
    pretrain_backbone,
    read_backbone_checkpoint,
)

__all__ = ["MaskedParticleModel", "MaskedParticleModelV1", "NextTokenModel", "build_model",
           "check_architecture", "checkpoint_record", "compact", "load_backbone", "load_next_token_model",
           "pretrain_backbone", "read_backbone_checkpoint", "sample_mask"]
