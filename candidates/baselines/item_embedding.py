"""Baselines 1 and 2 (paper 5.3.1): skip-gram on item tokens only, without and with co-occurrence
regularization.

They reuse the interaction model's whole pipeline (``EmbeddingCandidates``: tokens, the same
regularization rule and k, gensim, HNSW) on the log with every interaction renamed to one name, so
the only difference from our model is that a click and a cart-add of an item share one vector.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl

from recs.candidates.base import CandidateGenerator
from recs.candidates.baselines.common import ITEM_ONLY, item_only
from recs.candidates.embedding import EmbeddingCandidates
from recs.config import IndexConfig, TrainConfig
from recs.progress import NullProgress, Progress


@dataclass
class ItemEmbeddingCandidates(CandidateGenerator):
    """One vector per item; answers the same item-to-item list for every (source, target) pair."""

    train_config: TrainConfig = field(default_factory=TrainConfig)
    index_config: IndexConfig = field(default_factory=IndexConfig)
    progress: Progress = field(default_factory=NullProgress)
    name: str = "embedding"
    interaction_aware: bool = False
    inner: EmbeddingCandidates | None = None

    def _fit(self, train: pl.DataFrame) -> None:
        self.inner = EmbeddingCandidates(self.train_config, self.index_config, progress=self.progress)
        self.inner.fit(item_only(train))

    def candidates_of(self, source: str, target: str, k: int, items: pl.Series) -> pl.DataFrame:
        self.candidate_blocks(source, target, k)  # the checks of a full request (fitted, k)
        assert self.inner is not None
        return self.inner.candidates_of(ITEM_ONLY, ITEM_ONLY, k, items)

    def _candidate_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        assert self.inner is not None  # fitted: the base class checked
        return self.inner.candidate_blocks(ITEM_ONLY, ITEM_ONLY, k)  # the list ignores source and target
