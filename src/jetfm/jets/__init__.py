"""Jets: clustering, detector, truth labelling and Parquet writing (rule jets)."""

from jetfm.jets.build import SPLITS, build_jet_sets, jets_from_events
from jetfm.jets.parquet_io import JetFileError, JetTable, read_jet_table, write_jet_table

__all__ = [
    "SPLITS",
    "JetFileError",
    "JetTable",
    "build_jet_sets",
    "jets_from_events",
    "read_jet_table",
    "write_jet_table",
]
