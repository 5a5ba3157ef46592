"""Baselines 3 and 7 (paper 5.3.1): implicit-feedback ALS (Hu, Koren, Volinsky 2008) on a
user x item matrix, and on a user x (item, interaction) matrix for the interaction-aware variant.

The factorisation is the ``implicit`` library's (well kept, conjugate-gradient ALS); it is an
optional extra, ``pip install 'recs[compare]'``, and without it these generators raise an
``OptionalDependencyError`` that ``recs compare`` reports as a skipped method. Item factors become an
``EmbeddingModel`` (one row per token), so candidates come from exactly the HNSW cosine search our
model uses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from recs.candidates.base import CandidateGenerator
from recs.candidates.baselines.common import ITEM_ONLY, OptionalDependencyError, basket_column, item_only
from recs.candidates.baselines.sparse import dense_codes, incidence
from recs.candidates.embedding import EmbeddingCandidates
from recs.columns import Col
from recs.config import ALSConfig, IndexConfig
from recs.embeddings.model import EmbeddingModel
from recs.embeddings.tokens import tokenize
from recs.progress import NullProgress, Progress


def _als_class() -> type:
    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError:
        raise OptionalDependencyError(
            "the matrix-factorization baselines need the 'implicit' package: pip install 'recs[compare]'"
        ) from None
    return AlternatingLeastSquares


@dataclass
class ALSCandidates(CandidateGenerator):
    """Implicit ALS; with ``interaction_aware`` the columns are (item, interaction) tokens."""

    config: ALSConfig = field(default_factory=ALSConfig)
    index_config: IndexConfig = field(default_factory=IndexConfig)
    interaction_aware: bool = False
    progress: Progress = field(default_factory=NullProgress)
    name: str = "mf"
    inner: EmbeddingCandidates | None = None

    def _fit(self, train: pl.DataFrame) -> None:
        self.config.validate()
        als_class = _als_class()
        from threadpoolctl import threadpool_limits  # a dependency of implicit

        events = train if self.interaction_aware else item_only(train)
        # Rows of the matrix are users (or sessions), so tokenize with them standing in for sessions:
        # the vocabulary (token_id <-> item, interaction, count) is the same one our model uses.
        tok = tokenize(events.with_columns(pl.col(basket_column(train)).alias(Col.SESSION)))
        users, _ = dense_codes(tok.sequences[Col.SESSION])
        cols = tok.sequences[Col.TOKEN_ID].to_numpy()
        matrix = incidence(users, cols, (int(users.max()) + 1, tok.vocab.height), binary=False)
        t = time.perf_counter()
        with threadpool_limits(1, "blas"):  # implicit's advice: its own threads, single-threaded BLAS
            als = als_class(
                factors=self.config.factors,
                regularization=self.config.regularization,
                alpha=self.config.alpha,
                iterations=self.config.iterations,
                num_threads=self.config.workers,
                random_state=self.config.seed,
            )
            with self.progress.stage(f"ALS {self.name}", total=1, unit="fit") as bar:
                als.fit(matrix, show_progress=False)
                bar.update(1)
        factors = np.ascontiguousarray(als.item_factors, dtype=np.float32)
        manifest = {"counts": {"users": matrix.shape[0], "tokens": matrix.shape[1], "nonzeros": matrix.nnz},
                    "timings": {"als_s": time.perf_counter() - t}}
        model = EmbeddingModel(tok.vocab, factors, factors, manifest)
        # Neighbours by cosine of item factors (as implicit's similar_items ranks them), whatever the
        # configured score: factors have no output vectors or event counts, so in-out and prob mean nothing.
        index_config = replace(self.index_config, score="cosine")
        self.inner = EmbeddingCandidates(index_config=index_config, model=model, progress=self.progress)

    def candidates_of(self, source: str, target: str, k: int, items: pl.Series) -> pl.DataFrame:
        self.candidate_blocks(source, target, k)  # the checks of a full request (fitted, interactions, k)
        assert self.inner is not None
        pair = (source, target) if self.interaction_aware else (ITEM_ONLY, ITEM_ONLY)
        return self.inner.candidates_of(*pair, k, items)

    def _candidate_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        assert self.inner is not None  # fitted: the base class checked
        pair = (source, target) if self.interaction_aware else (ITEM_ONLY, ITEM_ONLY)
        return self.inner.candidate_blocks(*pair, k)
