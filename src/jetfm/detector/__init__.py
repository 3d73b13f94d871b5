"""Parametrised ATLAS-like detector: tracking (efficiency, pT, impact parameters), calorimeters."""

from jetfm.detector.calorimeter import energy_resolution, measure_energy
from jetfm.detector.tracking import (
    TrackMeasurement,
    impact_parameters,
    ip_resolution,
    lifetime_sign,
    measure_tracks,
    track_efficiency,
)

__all__ = [
    "TrackMeasurement",
    "energy_resolution",
    "impact_parameters",
    "ip_resolution",
    "lifetime_sign",
    "measure_energy",
    "measure_tracks",
    "track_efficiency",
]
