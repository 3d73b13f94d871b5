"""Jet generation with gpt (OmniJet-α) backbones and its evaluation (benchmark jet_generation).

`jetfm generate-jets` samples token sequences and decodes them into a Parquet jet set
(:mod:`.generate`, :mod:`.sample`, :mod:`.jet_sets`); `jetfm evaluate-generation` compares
them with true jets (:mod:`.evaluate`, :mod:`.observables`, :mod:`.distances`).
"""

from jetfm.jet_generation.evaluate import compare_jets, evaluate_generation, reference_halves, truth_floor_row
from jetfm.jet_generation.generate import generate_jet_file
from jetfm.jet_generation.sample import draw_next, sample_codes

__all__ = ["compare_jets", "draw_next", "evaluate_generation", "generate_jet_file", "reference_halves",
           "sample_codes", "truth_floor_row"]
