"""Jets: clustering, detector, truth labelling and Parquet writing (rule jets).

Reading and writing jet sets (:mod:`jetfm.jets.parquet_io` for files, :mod:`jetfm.jets.jet_sets`
for a file or a split's manifest) needs pyarrow only; building
them (fastjet, uproot, vector) is imported on first use, so that every consumer of jet sets
runs without the event-level stack.
"""

from typing import Any

from jetfm.contract import SPLITS
from jetfm.jets.jet_sets import read_jet_table
from jetfm.jets.parquet_io import JetFileError, JetTable, write_jet_table

__all__ = [
    "SPLITS",
    "JetFileError",
    "JetTable",
    "build_jet_sets",
    "jets_from_events",
    "read_jet_table",
    "write_jet_table",
]

_BUILDERS = ("build_jet_sets", "jets_from_events")


def __getattr__(name: str) -> Any:
    if name in _BUILDERS:
        from jetfm.jets import build

        return getattr(build, name)
    raise AttributeError(f"module 'jetfm.jets' has no attribute {name!r}")
