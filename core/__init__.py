"""recs: interaction-specific item embeddings and candidate sets for marketplaces.

The package is laid out as one data flow, each stage a sub-package:

    recs.sessions   -> read, validate, split and synthesise canonical session logs
    recs.embeddings -> tokens -> co-occurrence pairs -> corpus -> trained model
    recs.candidates -> HNSW indexes per interaction -> candidate sets
    recs.eval       -> purchase-intent hit rate and coverage
    recs.cli        -> the thin command-line layer over all of the above

The most used entry points are re-exported here so that a notebook needs one import.
"""

from __future__ import annotations

__version__ = "0.1.0"

from recs.columns import Col, Interaction
from recs.errors import RecsError

__all__ = ["Col", "Interaction", "RecsError", "__version__"]
