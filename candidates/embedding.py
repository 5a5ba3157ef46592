"""Candidate sets from interaction embeddings: source-interaction vectors queried against an HNSW
index of target-interaction vectors (Click-to-Cart, Cart-to-Cart, any pair). What goes into the
index and the queries (score, backoff) is ``recs.candidates.scoring``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl

from recs.candidates.base import CandidateGenerator, candidate_block, item_codes
from recs.candidates.hnsw import Hnsw, build_hnsw, search_blocks
from recs.candidates.scoring import Side, query_side, target_side
from recs.config import IndexConfig, TrainConfig
from recs.embeddings.model import EmbeddingModel
from recs.progress import NullProgress, Progress


@dataclass
class EmbeddingCandidates(CandidateGenerator):
    """Our method as a CandidateGenerator: train (or take) a model, then k-NN per interaction pair."""

    train_config: TrainConfig = field(default_factory=TrainConfig)
    index_config: IndexConfig = field(default_factory=IndexConfig)
    model: EmbeddingModel | None = None
    progress: Progress = field(default_factory=NullProgress)
    name: str = "interaction-embeddings"
    interaction_aware: bool = True
    indexes: dict[tuple[str, str], tuple[Side, Hnsw]] = field(default_factory=dict)
    backoff_queries: dict[tuple[str, str], int] = field(default_factory=dict)

    def fit(self, train: pl.DataFrame) -> EmbeddingCandidates:
        from recs.embeddings.train import train as train_model

        self.model = train_model(train, self.train_config, self.progress)
        self.indexes.clear()
        return self

    def _model(self) -> EmbeddingModel:
        if self.model is None:
            raise RuntimeError("fit() first")
        return self.model

    def targets(self, target: str) -> tuple[Side, Hnsw]:
        """The rows of ``target`` candidates and their HNSW index, built once per target and score."""
        key = (target, self.index_config.score)
        if key not in self.indexes:
            side = target_side(self._model(), target, self.index_config)
            unit = self.index_config.score == "cosine"
            self.indexes[key] = (side, build_hnsw(side.vectors, self.index_config, unit=unit))
        return self.indexes[key]

    def candidate_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        """The candidate table in blocks of ``index_config.batch_size`` query items, so that a writer
        (``build_index``) holds one block at a time: at 10M events with backoff, Cart-to-Cart has
        1.2M query items, 240M rows."""
        tgt, index = self.targets(target)
        src = query_side(self._model(), source, self.index_config)
        self.backoff_queries[(source, target)] = src.backoff
        width = min(k + 1, len(tgt.items))
        q_code, t_code = item_codes(src.items, tgt.items)
        for a, scores, ids in search_blocks(index, src.vectors, width, self.index_config, self.progress,
                                            f"{source}->{target}"):
            yield candidate_block(src.items, tgt.items, ids, scores, q_code, t_code, k, a)

    def candidates(self, source: str, target: str, k: int) -> pl.DataFrame:
        blocks = list(self.candidate_blocks(source, target, k))  # never empty: every side has a row
        return blocks[0] if len(blocks) == 1 else pl.concat(blocks, rechunk=False)
