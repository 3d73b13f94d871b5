from __future__ import annotations

import numpy as np
import pytest

from jetfm.config import validate_config
from jetfm.detector import impact_parameters, ip_resolution, measure_tracks, track_efficiency

DET = validate_config({})["detector"]["tracking"]


def _ip(vertex, momentum, jet):
    arrays = [np.array([v], dtype=float) for v in (*vertex, *momentum, *jet)]
    d0, z0 = impact_parameters(*arrays)
    return float(d0[0]), float(z0[0])


def test_prompt_track_has_zero_impact_parameters() -> None:
    assert _ip((0, 0, 0), (3, 4, 5), (1, 1, 1)) == (0.0, 0.0)


def test_displaced_track_geometry_and_lifetime_sign() -> None:
    # Produced at x = 1 mm flying along +y: closest approach (1, 0), |d0| = 1 mm.
    assert _ip((1, 0, 0), (0, 1, 0), (1, 0, 0))[0] == pytest.approx(1.0)
    assert _ip((1, 0, 0), (0, 1, 0), (-1, 0, 0))[0] == pytest.approx(-1.0)
    # Produced at z = 2 mm on the beam line: z0 = 2 mm, positive along the jet's pz.
    assert _ip((0, 0, 2), (1, 0, 1), (1, 0, 1))[1] == pytest.approx(2.0)
    assert _ip((0, 0, 2), (1, 0, 1), (1, 0, -1))[1] == pytest.approx(-2.0)
    # A decay 3 mm along the jet, daughter at 45°: d0 = 3 sin 45°.
    d0, _ = _ip((3, 0, 0), (1, 1, 0), (1, 0, 0))
    assert d0 == pytest.approx(3 / np.sqrt(2))


def test_ip_resolution_limits() -> None:
    s_d0, s_z0 = ip_resolution(np.array([1e6, 1.0]), np.array([0.0, 0.0]), DET)
    assert s_d0[0] == pytest.approx(DET["d0_resolution_constant_mm"])
    assert s_z0[0] == pytest.approx(DET["z0_resolution_constant_mm"])
    expected = np.hypot(DET["d0_resolution_constant_mm"], DET["d0_resolution_ms_mm_gev"])
    assert s_d0[1] == pytest.approx(expected)
    # Forward tracks are measured worse, and z0 degrades faster than d0.
    f_d0, f_z0 = ip_resolution(np.array([5.0, 5.0]), np.array([0.0, 2.0]), DET)
    assert f_d0[1] > f_d0[0] and f_z0[1] / f_z0[0] > f_d0[1] / f_d0[0]


def test_efficiency_plateau_and_turn_on() -> None:
    eff = track_efficiency(np.array([100.0, 100.0, 1.0]), np.array([0.0, 2.0, 0.0]), DET)
    assert eff[0] == pytest.approx(DET["efficiency_central"])
    assert eff[1] == pytest.approx(DET["efficiency_forward"])
    assert eff[2] == 0.0  # exactly at threshold the turn-on is zero


def test_measured_impact_parameters_have_unit_pulls() -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    pt = rng.uniform(1.5, 50, n)
    eta = rng.uniform(-2.4, 2.4, n)
    zeros = np.zeros(n)
    meas = measure_tracks(pt, eta, zeros, zeros, DET, rng)
    assert 0.80 < meas.kept.mean() < DET["efficiency_central"]
    assert np.std(meas.d0 / meas.d0_err) == pytest.approx(1.0, abs=0.02)
    assert np.std(meas.z0 / meas.z0_err) == pytest.approx(1.0, abs=0.02)
    rel = meas.pt / pt[meas.kept] - 1
    expected = np.hypot(DET["pt_resolution_constant"], DET["pt_resolution_slope_per_gev"] * pt[meas.kept])
    assert np.std(rel / expected) == pytest.approx(1.0, abs=0.02)
    assert meas.pt.min() > DET["track_pt_min_gev"]


def test_lifetime_sign_of_geometric_perigee_matches_the_truth_convention() -> None:
    """A Delphes-style geometric d0 = (x·py − y·px)/pT, converted, equals impact_parameters."""
    from jetfm.detector import lifetime_sign

    rng = np.random.default_rng(3)
    n = 500
    jet_phi, jet_eta = rng.uniform(-np.pi, np.pi, n), rng.uniform(-2, 2, n)
    # decay vertices ahead of or behind the primary vertex along the jet, tracks near the jet
    flight = rng.uniform(-3, 3, n)
    x, y = flight * np.cos(jet_phi), flight * np.sin(jet_phi)
    z = flight * np.sinh(jet_eta)
    phi = jet_phi + rng.normal(0, 0.2, n)
    eta = jet_eta + rng.normal(0, 0.2, n)
    px, py, pz = np.cos(phi), np.sin(phi), np.sinh(eta)
    geometric_d0 = x * py - y * px  # pT = 1
    t_star = -(x * px + y * py)
    geometric_z0 = z + t_star * pz
    d0, z0 = lifetime_sign(geometric_d0, geometric_z0, phi - jet_phi, jet_eta)
    truth_d0, truth_z0 = impact_parameters(x, y, z, px, py, pz, np.cos(jet_phi), np.sin(jet_phi),
                                           np.sinh(jet_eta))
    np.testing.assert_allclose(d0, truth_d0, atol=1e-12)
    np.testing.assert_allclose(z0, truth_z0, atol=1e-12)
    assert (d0[flight > 0.5] > 0).mean() > 0.95  # ahead of the PV: positive


def test_beam_spot_widens_prompt_d0_only() -> None:
    from jetfm.detector import beam_spot

    rng = np.random.default_rng(5)
    n = 20000
    pv_x, pv_y = beam_spot(n, DET, rng)
    assert np.std(pv_x) == pytest.approx(DET["beam_spot_xy_mm"], rel=0.03)
    phi = rng.uniform(-np.pi, np.pi, n)
    eta = rng.uniform(-2, 2, n)
    px, py, pz = np.cos(phi), np.sin(phi), np.sinh(eta)
    d0, _ = impact_parameters(pv_x, pv_y, np.zeros(n), px, py, pz, px, py, pz)
    # prompt tracks from a displaced PV: |d0| is the PV offset perpendicular to the track
    assert np.sqrt(np.mean(d0**2)) == pytest.approx(DET["beam_spot_xy_mm"], rel=0.05)
