"""Catalogue of hard processes and the Pythia8 settings jetfm always applies."""

from __future__ import annotations

from typing import Any

# btag sample: one entry per shard process, its Pythia switches and what the sample gains.
BTAG_PROCESSES: dict[str, dict[str, Any]] = {
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

# boosted sample: one forced-decay process per JetClass class. Resonances recoil against
# Z → νν (Higgs) or a parton (W, Z) or each other (tt̄), so each jet has one clear origin.
_Z_TO_NUNU = ["23:onMode = off", "23:onIfAny = 12 14 16"]
_W_TO_QQ = ["24:onMode = off", "24:onIfAny = 1 2 3 4 5"]
_W_TO_LNU = ["24:onMode = off", "24:onIfAny = 11 13 15"]
_ZH = ["HiggsSM:ffbar2HZ = on", *_Z_TO_NUNU, "25:onMode = off"]
_TTBAR = ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on"]

# keys: contract.BOOSTED_PROCESS_LABELS (process → JetClass class index);
# resonance: |PDG id| the jet is matched to (None: no matching)
BOOSTED_PROCESSES: dict[str, dict[str, Any]] = {
    "qcd": {"resonance": None, "settings": ["HardQCD:all = on"],
            "description": "QCD 2→2 multijets: light-quark and gluon jets, no resonance"},
    "hbb": {"resonance": 25, "settings": [*_ZH, "25:onIfMatch = 5 -5"],
            "description": "f f̄ → ZH, Z → νν̄, H → bb̄"},
    "hcc": {"resonance": 25, "settings": [*_ZH, "25:onIfMatch = 4 -4"],
            "description": "f f̄ → ZH, Z → νν̄, H → cc̄"},
    "hgg": {"resonance": 25, "settings": [*_ZH, "25:onIfMatch = 21 21"],
            "description": "f f̄ → ZH, Z → νν̄, H → gg"},
    "h4q": {"resonance": 25, "settings": [*_ZH, "25:onIfMatch = 24 -24", *_W_TO_QQ],
            "description": "f f̄ → ZH, Z → νν̄, H → WW* → qq̄'qq̄'"},
    # W+ → ℓν with W− → qq̄' in even shards, the charge conjugate in odd ones (settings_for)
    "hqql": {"resonance": 25,
             "settings": [*_ZH, "25:onIfMatch = 24 -24", "24:onMode = off"],
             "description": "f f̄ → ZH, Z → νν̄, H → WW* → ℓνqq̄' (ℓ = e, μ, τ; W± alternate by shard)"},
    "zqq": {"resonance": 23,
            "settings": ["WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on",
                         "WeakZ0:gmZmode = 2", "23:onMode = off", "23:onIfAny = 1 2 3 4 5"],
            "description": "Z + parton, Z → qq̄ (pure Z, no γ*)"},
    "wqq": {"resonance": 24,
            "settings": ["WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on", *_W_TO_QQ],
            "description": "W + parton, W → qq̄'"},
    "tbqq": {"resonance": 6, "settings": [*_TTBAR, *_W_TO_QQ],
             "description": "tt̄, both t → bW, W → qq̄'"},
    "tbl": {"resonance": 6, "settings": [*_TTBAR, *_W_TO_LNU],
            "description": "tt̄, both t → bW, W → ℓν (ℓ = e, μ, τ)"},
}

SAMPLE_PROCESSES: dict[str, dict[str, dict[str, Any]]] = {
    "btag": BTAG_PROCESSES,
    "boosted": BOOSTED_PROCESSES,
}


def settings_for(sample: str, process: str, shard_index: int) -> list[str]:
    """The process's own Pythia lines for one shard."""
    catalogue = SAMPLE_PROCESSES.get(sample)
    if catalogue is None:
        raise ValueError(f"unknown sample '{sample}' (known: {', '.join(SAMPLE_PROCESSES)})")
    if process not in catalogue:
        raise ValueError(f"unknown process '{process}' for sample '{sample}' "
                         f"(known: {', '.join(catalogue)})")
    lines = list(catalogue[process]["settings"])
    if sample == "boosted" and process == "hqql":
        # onPos/onNeg address W+ and W− separately: one W decays leptonically, the other to quarks
        leptonic, hadronic = ("onPosIfAny", "onNegIfAny") if shard_index % 2 == 0 \
            else ("onNegIfAny", "onPosIfAny")
        lines += [f"24:{leptonic} = 11 13 15", f"24:{hadronic} = 1 2 3 4 5"]
    return lines


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


def pythia_settings(generate: dict[str, Any], sample: str, process: str, shard_index: int,
                    seed: int) -> list[str]:
    """All readString lines for one shard, in the order they are applied."""
    window = [f"PhaseSpace:pTHatMin = {generate['pthat_min_gev']}"]
    if generate["pthat_max_gev"] >= 0:
        window.append(f"PhaseSpace:pTHatMax = {generate['pthat_max_gev']}")
    return [
        *_SILENCE,
        f"Beams:eCM = {generate['ecm_gev']}",
        *window,
        *settings_for(sample, process, shard_index),
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        *generate["pythia_settings"],
    ]
