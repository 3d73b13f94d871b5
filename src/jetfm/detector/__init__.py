"""Parametrised ATLAS-like detector: tracking (efficiency, pT, impact parameters), calorimeters."""

from jetfm.detector.calorimeter import energy_resolution, measure_energy
from jetfm.detector.tracking import (
    TrackMeasurement,
    beam_spot,
    d0_error_with_beam_spot,
    impact_parameters,
    impact_parameters_with_beam_spot,
    ip_resolution,
    lifetime_sign,
    measure_tracks,
    track_efficiency,
)

__all__ = [
    "TrackMeasurement",
    "beam_spot",
    "d0_error_with_beam_spot",
    "energy_resolution",
    "impact_parameters",
    "impact_parameters_with_beam_spot",
    "ip_resolution",
    "lifetime_sign",
    "measure_energy",
    "measure_tracks",
    "track_efficiency",
]
