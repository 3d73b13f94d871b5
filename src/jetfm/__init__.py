"""jetfm: a reproducible simulation-to-model pipeline for jet foundation models."""

__version__ = "0.1.0"

# Version of the on-disk formats (ROOT event files, jet Parquet, checkpoints, results).
SCHEMA_VERSION = 1
