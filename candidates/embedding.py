"""Candidate sets from interaction embeddings: source-interaction vectors queried against an HNSW
index of target-interaction vectors (Click-to-Cart, Cart-to-Cart, any pair)."""

from __future__ import annotations

from dataclasses import dataclass, field

import faiss
import polars as pl

from recs.candidates.base import CandidateGenerator, candidate_frame
from recs.candidates.hnsw import build_hnsw, normalized, search
from recs.columns import Col
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
    indexes: dict[tuple[str, str], faiss.Index] = field(default_factory=dict)

    def fit(self, train: pl.DataFrame) -> EmbeddingCandidates:
        from recs.embeddings.train import train as train_model

        self.model = train_model(train, self.train_config, self.progress)
        self.indexes.clear()
        return self

    def _model(self) -> EmbeddingModel:
        if self.model is None:
            raise RuntimeError("fit() first")
        return self.model

    def index(self, target: str) -> faiss.Index:
        """The HNSW index of ``target`` vectors for the configured score, built once."""
        key = (target, self.index_config.score)
        if key not in self.indexes:
            model = self._model()
            rows = model.tokens_of(target)[Col.TOKEN_ID].to_numpy()
            if self.index_config.score == "cosine":
                vectors = normalized(model.vectors_in[rows])
            else:  # in-out: raw output vectors, inner product = u_p . v_q
                vectors = model.vectors_out[rows]
            self.indexes[key] = build_hnsw(vectors, self.index_config)
        return self.indexes[key]

    def candidates(self, source: str, target: str, k: int) -> pl.DataFrame:
        model = self._model()
        src = model.tokens_of(source)
        tgt = model.tokens_of(target)
        index = self.index(target)
        queries = model.vectors_in[src[Col.TOKEN_ID].to_numpy()]
        if self.index_config.score == "cosine":
            queries = normalized(queries)
        width = min(k + 1, tgt.height)
        scores, ids = search(index, queries, width, self.index_config, self.progress, f"{source}->{target}")
        return candidate_frame(src[Col.ITEM], tgt[Col.ITEM], ids, scores, k)
