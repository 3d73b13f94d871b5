"""Pythia8 event generation into ROOT TTrees (rule generate, `jetfm generate`)."""

from jetfm.events.processes import BOOSTED_PROCESSES, BTAG_PROCESSES, SAMPLE_PROCESSES, pythia_settings
from jetfm.events.shard import generate_shard, shard_seed

__all__ = [
    "BOOSTED_PROCESSES",
    "BTAG_PROCESSES",
    "SAMPLE_PROCESSES",
    "generate_shard",
    "pythia_settings",
    "shard_seed",
]
