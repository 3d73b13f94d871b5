from __future__ import annotations

import warnings

import awkward as ak
import fastjet
import numpy as np
import pytest

from jetfm.jets.substructure import nsubjettiness, tau_ratios


def _disk_jets(rng: np.random.Generator, counts: np.ndarray, spread: float = 0.8,
               centres: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat (pt, eta, phi) of particles uniform in a disk of radius `spread` around each jet centre."""
    n = int(counts.sum())
    r = spread * np.sqrt(rng.uniform(size=n))
    a = rng.uniform(0, 2 * np.pi, n)
    pt = rng.exponential(5.0, n) + 0.5
    return pt, centres[0] + r * np.cos(a), centres[1] + r * np.sin(a)


def _prongs(rng: np.random.Generator, centres: list[tuple[float, float]], per_prong: int = 20,
            width: float = 0.02) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    eta = np.concatenate([rng.normal(c[0], width, per_prong) for c in centres])
    phi = np.concatenate([rng.normal(c[1], width, per_prong) for c in centres])
    return rng.uniform(5, 15, len(eta)), eta, phi


def _reference_taus(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, n_max: int, beta: float,
                    radius: float) -> np.ndarray:
    """One jet, slowly: fastjet's classic PseudoJet interface for the axes, then the τ formula."""
    particles = [fastjet.PseudoJet(p * np.cos(f), p * np.sin(f), p * np.sinh(e), p * np.cosh(e))
                 for p, e, f in zip(pt, eta, phi, strict=True)]
    sequence = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.kt_algorithm, 1000.0))
    taus = []
    for n in range(1, n_max + 1):
        axes = sequence.exclusive_jets(min(n, len(pt)))
        total = 0.0
        for p, e, f in zip(pt, eta, phi, strict=True):
            dr = [np.hypot(e - ax.rap(), (f - ax.phi_std() + np.pi) % (2 * np.pi) - np.pi) for ax in axes]
            total += p * min(dr) ** beta
        taus.append(total / (pt.sum() * radius**beta))
    return np.array(taus)


@pytest.mark.parametrize(("beta", "radius"), [(1.0, 0.8), (0.5, 0.8), (2.0, 1.0)])
def test_matches_jet_by_jet_fastjet_reference(beta: float, radius: float) -> None:
    rng = np.random.default_rng(7)
    counts = rng.integers(3, 41, size=5)
    pt, eta, phi = _disk_jets(rng, counts, centres=(0.3, -1.0))
    taus = nsubjettiness(pt, eta, phi, counts, n_max=4, beta=beta, radius=radius)
    assert taus.shape == (5, 4)
    starts = np.cumsum(counts) - counts
    for i, (s, c) in enumerate(zip(starts, counts, strict=True)):
        ref = _reference_taus(pt[s:s + c], eta[s:s + c], phi[s:s + c], 4, beta, radius)
        np.testing.assert_allclose(taus[i], ref, rtol=0, atol=1e-6)
    assert np.all(taus[:, 0] > 0.05)


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_matches_fastjet_nsubjettiness_contrib_with_kt_axes(beta: float) -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 50, size=40)
    pt, eta, phi = _disk_jets(rng, counts)
    taus = nsubjettiness(pt, eta, phi, counts, n_max=3, beta=beta, radius=0.8)
    events = ak.unflatten(ak.zip({"pt": pt, "eta": eta, "phi": phi, "mass": np.zeros_like(pt)},
                                 with_name="Momentum4D"), counts)
    sequence = fastjet.ClusterSequence(events, fastjet.JetDefinition(fastjet.kt_algorithm, 1000.0))
    contrib = sequence.njettiness(measure_definition="NormalizedMeasure", axes_definition="KT_Axes",
                                  njets=[1, 2, 3], beta=beta, R0=0.8)
    np.testing.assert_allclose(taus, ak.to_numpy(contrib), rtol=0, atol=1e-6)


def test_two_and_three_prong_jets_are_told_from_diffuse_ones() -> None:
    rng = np.random.default_rng(11)
    two = _prongs(rng, [(-0.2, 0.0), (0.2, 0.0)])
    three = _prongs(rng, [(0.0, 0.25), (0.22, -0.12), (-0.22, -0.12)])
    diffuse = _disk_jets(rng, np.array([200]))
    pt, eta, phi = (np.concatenate(parts) for parts in zip(two, three, diffuse, strict=True))
    counts = np.array([len(two[0]), len(three[0]), 200])
    tau21, tau32 = tau_ratios(nsubjettiness(pt, eta, phi, counts))
    assert tau21[0] < 0.2
    assert tau21[2] > 0.5
    assert tau32[1] < 0.2
    assert tau21[1] > 0.4
    assert tau32[0] > 0.5


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_taus_are_ordered_and_non_negative(beta: float) -> None:
    rng = np.random.default_rng(5)
    counts = rng.integers(20, 80, size=1000)
    pt, eta, phi = _disk_jets(rng, counts)
    taus = nsubjettiness(pt, eta, phi, counts, n_max=4, beta=beta)
    assert np.all(taus >= 0)
    assert np.all(taus[:, 0] <= 1.0 + 1e-12)
    assert np.all(np.diff(taus, axis=1) <= 1e-12)


def test_ordering_holds_for_small_jets_at_beta_two() -> None:
    # With unminimised kt axes, β < 2 can give τ_{N+1} > τ_N for a few small jets (the contrib
    # agrees); at β = 2 the E-scheme axis is the pT-weighted centroid, which keeps the order.
    rng = np.random.default_rng(9)
    counts = rng.integers(1, 9, size=5000)
    pt, eta, phi = _disk_jets(rng, counts, spread=0.4)
    taus = nsubjettiness(pt, eta, phi, counts, n_max=3, beta=2.0)
    assert np.all(taus >= 0)
    assert np.all(np.diff(taus, axis=1) <= 1e-12)


def test_jet_with_n_constituents_has_zero_tau_n() -> None:
    rng = np.random.default_rng(2)
    counts = np.array([1, 2, 3, 4, 5])
    pt, eta, phi = _disk_jets(rng, counts, spread=0.5)
    taus = nsubjettiness(pt, eta, phi, counts, n_max=5)
    n = np.arange(1, 6)
    assert np.all(taus[counts[:, None] <= n[None, :]] == 0.0)
    assert np.all(taus[counts[:, None] > n[None, :]] > 0.0)


def test_single_and_empty_jets_are_nan_safe() -> None:
    rng = np.random.default_rng(4)
    counts = np.array([1, 0, 30, 1])
    pt, eta, phi = _disk_jets(rng, counts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        taus = nsubjettiness(pt, eta, phi, counts)
        tau21, tau32 = tau_ratios(taus)
    assert np.all(taus[[0, 1, 3]] == 0.0)
    assert np.all(taus[2] > 0)
    assert np.isnan(tau21[[0, 1, 3]]).all() and np.isnan(tau32[[0, 1, 3]]).all()
    assert np.isfinite(tau21[2]) and np.isfinite(tau32[2])
    alone = nsubjettiness(pt[1:31], eta[1:31], phi[1:31], np.array([30]))
    np.testing.assert_array_equal(alone[0], taus[2])


def test_empty_input_and_bad_arguments() -> None:
    empty = np.zeros(0)
    assert nsubjettiness(empty, empty, empty, np.array([0, 0])).shape == (2, 3)
    assert np.all(nsubjettiness(empty, empty, empty, np.array([0, 0])) == 0)
    with pytest.raises(ValueError, match="sum to 2"):
        nsubjettiness(np.ones(2), np.zeros(2), np.zeros(2), np.array([1, 2]))
    with pytest.raises(ValueError, match="n_max"):
        nsubjettiness(np.ones(2), np.zeros(2), np.zeros(2), np.array([2]), n_max=0)
    with pytest.raises(ValueError, match="shape"):
        tau_ratios(np.ones((3, 2)))


def test_phi_wraparound_and_boost_invariance() -> None:
    rng = np.random.default_rng(8)
    counts = np.array([40, 25])
    pt, deta, dphi = _disk_jets(rng, counts)
    at_zero = nsubjettiness(pt, deta, dphi, counts)
    straddling = np.angle(np.exp(1j * (dphi + np.pi)))  # centred on φ = π, wrapped to (-π, π]
    assert straddling.min() < -2.5 and straddling.max() > 2.5
    np.testing.assert_allclose(nsubjettiness(pt, deta + 1.7, straddling, counts), at_zero,
                               rtol=1e-9, atol=1e-12)


def test_does_not_leak_fastjet_warning_state() -> None:
    rng = np.random.default_rng(1)
    counts = np.array([10])
    before = warnings.formatwarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nsubjettiness(*_disk_jets(rng, counts), counts)
    assert caught == []
    assert warnings.formatwarning is before


def _brute_force_d2(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, beta: float) -> float:
    z = pt / pt.sum()
    n = len(pt)

    def dr(i: int, j: int) -> float:
        return float(np.hypot(eta[i] - eta[j], (phi[i] - phi[j] + np.pi) % (2 * np.pi) - np.pi)) ** beta

    e2 = sum(z[i] * z[j] * dr(i, j) for i in range(n) for j in range(i + 1, n))
    e3 = sum(z[i] * z[j] * z[k] * dr(i, j) * dr(i, k) * dr(j, k)
             for i in range(n) for j in range(i + 1, n) for k in range(j + 1, n))
    return e3 / e2**3


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_d2_matches_the_triple_sum_across_chunks(beta: float) -> None:
    from jetfm.jets.substructure import energy_correlation_d2

    rng = np.random.default_rng(4)
    counts = rng.integers(2, 14, size=30)
    pt, eta, phi = _disk_jets(rng, counts, centres=(0.3, 3.1))  # across the φ = ±π seam
    phi = (phi + np.pi) % (2 * np.pi) - np.pi
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    expected = [_brute_force_d2(pt[s:s + c], eta[s:s + c], phi[s:s + c], beta)
                for s, c in zip(starts, counts, strict=True)]
    # a chunk of a few hundred bytes forces many chunks of different widths
    got = energy_correlation_d2(pt, eta, phi, counts, beta=beta, chunk_bytes=600)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_d2_tells_two_prongs_from_one_and_is_nan_below_two_constituents() -> None:
    from jetfm.jets.substructure import energy_correlation_d2

    rng = np.random.default_rng(5)
    one = _prongs(rng, [(0.0, 0.0)], per_prong=40, width=0.1)
    two = _prongs(rng, [(-0.3, 0.0), (0.3, 0.0)])
    pt, eta, phi = (np.concatenate([a, b, [10.0]]) for a, b in zip(one, two, strict=True))
    d2 = energy_correlation_d2(pt, eta, phi, [40, 40, 1])
    # a two-prong jet has small e3 at given e2: D2 well below a one-prong jet's
    assert d2[1] < 0.5 * d2[0] and np.isnan(d2[2])
    assert np.isnan(energy_correlation_d2(np.ones(2), np.zeros(2), np.zeros(2), [2])[0])  # ΔR = 0: e2 = 0


def test_jet_kinematics_of_two_back_to_back_massless_particles() -> None:
    from jetfm.jets.substructure import jet_kinematics

    # two particles of pT p at (η, φ) = (±a, 0): m² = 2 p² (cosh 2a − 1), pT = 2p, η = 0
    p, a = 50.0, 0.2
    out = jet_kinematics([p, p], [a, -a], [0.0, 0.0], [2])
    assert out["pt"][0] == pytest.approx(2 * p)
    assert out["mass"][0] == pytest.approx(np.sqrt(2 * p * p * (np.cosh(2 * a) - 1)))
    assert abs(out["eta"][0]) < 1e-12 and abs(out["phi"][0]) < 1e-12
