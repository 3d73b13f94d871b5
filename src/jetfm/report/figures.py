"""Writing matplotlib figures as jetfm artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jetfm.provenance import atomic_output


def save_png(fig: Any, path: Path) -> str:
    """Write ``fig`` atomically as a PNG, close it, and return the file name."""
    import matplotlib.pyplot as plt

    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path.name
