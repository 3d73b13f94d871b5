"""Catalogue of hard processes and the Pythia8 settings jetfm always applies."""

from __future__ import annotations

from typing import Any

# One entry per shard process: Pythia switches and what the sample gains from it.
PROCESSES: dict[str, dict[str, Any]] = {
    "bb": {
        "settings": ["HardQCD:hardbbbar = on"],
        "description": "gg → bb̄ and qq̄ → bb̄: b jets (and light/charm from radiation)",
    },
    "cc": {
        "settings": ["HardQCD:hardccbar = on"],
        "description": "gg → cc̄ and qq̄ → cc̄: c jets",
    },
    "light": {
        "settings": ["HardQCD:all = on"],
        "description": "inclusive QCD 2→2: light-quark and gluon jets, some g → bb̄/cc̄ splitting",
    },
}

# Quiet, reproducible Pythia: no banners, no event listings, explicit seed.
_SILENCE = [
    "Print:quiet = on",
    "Init:showProcesses = off",
    "Init:showMultipartonInteractions = off",
    "Init:showChangedSettings = off",
    "Init:showChangedParticleData = off",
    "Next:numberCount = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
    "Next:numberShowEvent = 0",
]


def pythia_settings(generate: dict[str, Any], process: str, seed: int) -> list[str]:
    """All readString lines for one shard, in the order they are applied."""
    if process not in PROCESSES:
        raise ValueError(f"unknown process '{process}' (known: {', '.join(PROCESSES)})")
    return [
        *_SILENCE,
        f"Beams:eCM = {generate['ecm_gev']}",
        f"PhaseSpace:pTHatMin = {generate['pthat_min_gev']}",
        *PROCESSES[process]["settings"],
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        *generate["pythia_settings"],
    ]
