"""Parametrised ATLAS-like tracking detector: efficiency, pT smearing, impact parameters."""

from jetfm.detector.tracking import (
    TrackMeasurement,
    impact_parameters,
    ip_resolution,
    measure_tracks,
    track_efficiency,
)

__all__ = [
    "TrackMeasurement",
    "impact_parameters",
    "ip_resolution",
    "measure_tracks",
    "track_efficiency",
]
