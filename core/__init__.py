"""recs: interaction-specific item embeddings and candidate sets for marketplaces.

The package is laid out as one data flow, each stage a sub-package:

    recs.sessions   -> read, validate, split and synthesise canonical session logs
    recs.embeddings -> tokens -> co-occurrence pairs -> corpus -> trained model
    recs.candidates -> HNSW indexes per interaction -> candidate sets
    recs.eval       -> purchase-intent hit rate and coverage
    recs.cli        -> the thin command-line layer over all of the above

Only the names every stage shares are re-exported here (``Col``, ``Interaction``, ``RecsError``), so
that ``import recs`` stays light (no polars, gensim or faiss) for the CLI and for setuptools, which
reads ``__version__``. The entry points are imported from their stage, e.g.
``from recs.sessions.prepare import prepare`` or ``from recs.candidates.build import build_index``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from recs.columns import Col, Interaction
from recs.errors import RecsError

__all__ = ["Col", "Interaction", "RecsError", "__version__"]
