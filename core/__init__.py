"""recs: interaction-specific item embeddings and candidate sets for marketplaces.

The Python API, one call per step of the pipeline (``recs.facade``)::

    import recs

    model = recs.train(train_sessions, dim=64, seed=0)      # a polars frame or a path; TrainConfig fields
    model.similar(102124, "click", "cart", k=10)           # rank, candidate_item_id, score
    model["102124:cart"]                                   # the token's vector (numpy)
    index = recs.build_index(model)                        # candidate sets per (source, target) pair
    index.save("runs/index")                               # a normal INDEX_DIR; recs.open_index(path) reads one
    recs.Recommender(index).recommend(history, module="click").to_frame()
    recs.evaluate(index, test_sessions).to_frame()         # the purchase-intent hit rate, per set

Progress goes to the ``recs`` logger (``logging.basicConfig(level=logging.INFO)`` shows each stage);
errors are ``recs.errors.RecsError`` subclasses. ``python -m recs`` is the command line.

The package is laid out as one data flow, each stage a sub-package:

    recs.sessions   -> read, validate, split and synthesise canonical session logs
    recs.embeddings -> tokens -> co-occurrence pairs -> corpus -> trained model
    recs.candidates -> HNSW indexes per interaction -> candidate sets
    recs.eval       -> purchase-intent hit rate and coverage
    recs.recommend  -> per-user lists from an index
    recs.cli        -> the thin command-line layer over all of the above

``import recs`` stays light (no polars, gensim or faiss) for the CLI: the names every stage shares
are imported here (``Col``, ``Interaction``, ``RecsError``), the facade's only when first used (PEP 562
``__getattr__``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recs._version import __version__
from recs.columns import Col, Interaction
from recs.errors import RecsError

if TYPE_CHECKING:
    from recs.facade import (
        EvalResult,
        Index,
        Model,
        Recommender,
        SetResult,
        build_index,
        evaluate,
        open_index,
        train,
    )

__all__ = ["Col", "EvalResult", "Index", "Interaction", "Model", "Recommender", "RecsError", "SetResult", "__version__",
           "build_index", "evaluate", "open_index", "train"]
_FACADE = frozenset(__all__) - {"Col", "Interaction", "RecsError", "__version__"}


def __getattr__(name: str) -> Any:
    """The facade's names, imported on first use: ``recs.train`` loads polars then, gensim when it trains."""
    if name in _FACADE:
        import recs.facade

        value = getattr(recs.facade, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FACADE))
