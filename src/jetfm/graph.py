"""Connected components of many small graphs at once (one graph per jet)."""

from __future__ import annotations

import numpy as np


def connected_components(adjacency: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Component label of every node: the lowest node index in its component.

    adjacency: bool [G, N, N] (symmetric); valid: bool [G, N]. Invalid nodes get -1.
    Uses the transitive closure by repeated squaring, ceil(log2 N) boolean products.
    """
    n = adjacency.shape[1]
    link = adjacency & valid[:, :, None] & valid[:, None, :]
    link = link | (np.eye(n, dtype=bool)[None] & valid[:, :, None])
    reach = link.astype(np.float32)
    for _ in range(max(1, int(np.ceil(np.log2(max(n, 2)))))):
        reach = np.minimum(reach @ reach, 1.0)
    label = np.argmax(reach > 0, axis=2)
    return np.where(valid, label, -1)
