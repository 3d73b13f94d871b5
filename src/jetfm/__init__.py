"""jetfm: a reproducible simulation-to-model pipeline for jet foundation models."""

__version__ = "0.1.0"

from jetfm.contract import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "__version__"]
