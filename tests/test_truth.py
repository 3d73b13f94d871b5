from __future__ import annotations

import numpy as np

from jetfm.jets import truth


def test_heavy_hadron_identification() -> None:
    ids = np.array([511, -521, 531, 5122, -5232, 553, 411, -421, 4122, 443, 211, 5, 4, 22, 2212, 3122])
    assert truth.is_b_hadron(ids).tolist() == [1, 1, 1, 1, 1, 1] + [0] * 10
    assert truth.is_c_hadron(ids).tolist() == [0] * 6 + [1, 1, 1, 1] + [0] * 6


def test_pid_classes_of_the_papers() -> None:
    ids = np.array([22, -211, 130, 211, 11, -11, 13, -13, 2212, -2212])
    charge = np.array([0, -1, 0, 1, -1, 1, -1, 1, 1, -1])
    assert truth.pid_class(ids, charge).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 3, 1]


def _chain():
    """Event 0: B0 (no 5) → D- (6) π+ (7); D- → K+ (8) π- (9) π- (10). Plus a prompt π (3).
    Event 1: K0S (no 4) → π+ (5) π- (6) displaced; a prompt π (2)."""
    event = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    no = np.array([3, 5, 6, 7, 8, 9, 10, 2, 4, 5, 6])
    pdg = np.array([211, 511, -411, 211, 321, -211, -211, 211, 310, 211, -211])
    status = np.array([84, -83, -91, 91, 91, 91, 91, 84, -84, 91, 91])
    mother1 = np.array([1, 1, 5, 5, 6, 6, 6, 1, 1, 4, 4])
    return event, no, pdg, status, mother1


def test_record_index_finds_rows_and_misses() -> None:
    event, no, *_ = _chain()
    index = truth.RecordIndex(event, no)
    assert index.rows(np.array([0, 0, 1, 1]), np.array([6, 4, 4, -1])).tolist() == [2, -1, 8, -1]


def test_decay_ancestry_flags_b_and_cascade_c() -> None:
    event, no, pdg, status, mother1 = _chain()
    index = truth.RecordIndex(event, no)
    rows = np.array([0, 3, 4, 5, 7, 9])  # prompt π, π from B, K/π from D (from B), prompt π, π from K0S
    weak_b, weak_c = truth.weak_heavy_hadron_rows(pdg, event, no, mother1)
    assert weak_b.tolist() == [False, True] + [False] * 9
    from_b, from_c = truth.heavy_flavour_ancestry(rows, event, status, mother1, index, weak_b, weak_c)
    assert from_b.tolist() == [False, True, True, True, False, False]
    assert from_c.tolist() == [False, False, True, True, False, False]
    displaced = np.array([False, True, True, True, False, True])
    assert truth.track_origin(from_b, from_c, displaced).tolist() == [0, 2, 2, 2, 0, 3]


def test_prompt_excited_charm_does_not_make_c_tracks() -> None:
    # D*+ (no 4, prompt) → D0 (5) π+ (6, soft pion at the primary vertex); D0 → K− (7) π+ (8)
    event = np.zeros(5, dtype=int)
    no = np.array([4, 5, 6, 7, 8])
    pdg = np.array([413, 421, 211, -321, 211])
    status = np.array([-83, -91, 91, 91, 91])
    mother1 = np.array([1, 4, 4, 5, 5])
    index = truth.RecordIndex(event, no)
    weak_b, weak_c = truth.weak_heavy_hadron_rows(pdg, event, no, mother1)
    assert weak_c.tolist() == [False, True, False, False, False]
    _, from_c = truth.heavy_flavour_ancestry(np.array([2, 3, 4]), event, status, mother1, index,
                                             weak_b, weak_c)
    assert from_c.tolist() == [False, True, True]


def test_weakly_decaying_keeps_the_last_heavy_hadron() -> None:
    # B*0 (no 4) → B0 (no 5): only B0 decays weakly.
    event = np.array([0, 0])
    no = np.array([4, 5])
    mother1 = np.array([2, 4])
    assert truth.weakly_decaying(np.array([0, 1]), event, no, mother1).tolist() == [1]


def test_vertex_index_groups_by_production_point() -> None:
    tol = 1e-3
    pos = np.zeros((2, 5, 3))
    pos[0, 1] = pos[0, 3] = [1.0, 0.5, 0.2]  # a B vertex
    pos[0, 2] = [3.0, 1.0, 0.4]  # a D vertex
    pos[0, 4] = [3.0, 1.0, 0.4 + 1e-4]  # same D vertex within tolerance
    pos[1, 0] = [0.2, 0.0, 0.0]  # jet 2: no track from the primary vertex
    pos[1, 1] = [0.2, 0.0, 0.0]
    valid = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=bool)
    vertex = truth.vertex_index(pos, valid, tol)
    assert vertex.tolist() == [[0, 1, 2, 1, 2], [1, 1, -1, -1, -1]]
