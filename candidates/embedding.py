"""Candidate sets from interaction embeddings: source-interaction vectors queried against an HNSW
index of target-interaction vectors (Click-to-Cart, Cart-to-Cart, any pair). What goes into the
index and the queries (score, backoff) is ``recs.candidates.scoring``; cold-start items without a vector,
through their shop or category, ``recs.candidates.rollup``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, NamedTuple

import numpy as np
import polars as pl

from recs.candidates.base import CandidateGenerator, candidate_block, item_codes
from recs.candidates.hnsw import Hnsw, build_hnsw, exact_blocks, search_blocks
from recs.candidates.rollup import RolledTarget, RollUp, rolled_blocks
from recs.candidates.scoring import Side, query_side, target_side
from recs.config import IndexConfig, TrainConfig
from recs.embeddings.model import EmbeddingModel
from recs.overlap import ahead
from recs.progress import NullProgress, Progress

# ``candidates_of`` scans the target rows exactly, without building the HNSW graph, when the queries are
# fewer than 1 / EXACT_SHARE of them: the blend's validation stage asks for a few thousand triggers' lists
# of a catalogue of tens of thousands, and the graph's build (``efConstruction`` 128, M 64) costs more than
# the scan. The exact lists are what the graph approximates (recall 0.999 at efSearch 256, BENCHMARKS.md).
EXACT_SHARE = 4


class TargetIndex(NamedTuple):
    """The candidate side of one target interaction and the HNSW index searched over its rows."""

    side: Side  # target items and the vectors indexed for them (recs.candidates.scoring.target_side)
    hnsw: Hnsw
    rolled: RolledTarget | None = None  # with a roll-up: the index rows (side's, then groups') and their items


@dataclass
class EmbeddingCandidates(CandidateGenerator):
    """Our method as a CandidateGenerator: train (or take) a model, then k-NN per interaction pair."""

    train_config: TrainConfig = field(default_factory=TrainConfig)
    index_config: IndexConfig = field(default_factory=IndexConfig)
    model: EmbeddingModel | None = None
    progress: Progress = field(default_factory=NullProgress)
    name: str = "interaction-embeddings"
    interaction_aware: bool = True
    indexes: dict[tuple[str, str], TargetIndex] = field(default_factory=dict)  # by (target, score)
    backoff_queries: dict[tuple[str, str], int] = field(default_factory=dict)
    rollup: RollUp | None = None  # cold start through shop / category (recs.candidates.rollup)
    rollup_counts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # search block i + 1 while block i's rows are made (faiss releases the GIL); False: one after the
    # other, as before issue 23. Same tables either way; a switch (not a setting: not in the manifest)
    # so that a test can compare the two
    overlap: ClassVar[bool] = True

    def _fit(self, train: pl.DataFrame) -> None:
        from recs.embeddings.train import train as train_model

        self.model = train_model(train, self.train_config, self.progress)

    def _reset(self) -> None:
        # a given or earlier-trained model answers without fit; a refit that fails must not leave it answering
        self.model = None
        self.indexes.clear()

    def _known_interactions(self) -> tuple[str, ...] | None:
        # ready once it has a model, trained here or given (build_index loads one from MODEL_DIR)
        return None if self.model is None else tuple(self.model.interactions)

    def _model(self) -> EmbeddingModel:
        self.interactions()  # NotFittedError without a model
        assert self.model is not None
        return self.model

    def settings(self) -> dict[str, Any]:
        """Index settings and the training config the model was trained with (its manifest's, which is
        the one that applies when the model was given rather than trained here)."""
        out = super().settings()
        if self.model is not None and "config" in self.model.manifest:
            out["train_config"] = self.model.manifest["config"]
        return out

    def target_index(self, target: str) -> TargetIndex:
        """The rows of ``target`` candidates and their HNSW index, built once per target and score."""
        key = (target, self.index_config.score)
        if key not in self.indexes:
            side = target_side(self._model(), target, self.index_config)
            unit = self.index_config.score == "cosine"
            if self.rollup is None:
                self.indexes[key] = TargetIndex(side, build_hnsw(side.vectors, self.index_config, unit=unit))
            else:
                rolled = self.rollup.target(self._model(), side, target, self.index_config)
                hnsw = build_hnsw(rolled.vectors, self.index_config, unit=unit)
                # faiss holds its own copy of the rows: keeping this one (side's rows again, plus the
                # groups') for the generator's life would be a second index-sized matrix per target
                rolled = replace(rolled, vectors=rolled.vectors[:0])
                self.indexes[key] = TargetIndex(side, hnsw, rolled)
        return self.indexes[key]

    def set_details(self, source: str, target: str) -> dict[str, Any]:
        details: dict[str, Any] = {"backoff_queries": self.backoff_queries[(source, target)]}
        if (source, target) in self.rollup_counts:
            details["rollup"] = self.rollup_counts[(source, target)]
        return details

    def candidates_of(self, source: str, target: str, k: int, items: pl.Series) -> pl.DataFrame:
        """Only ``items``' queries searched; the same rows ``candidates`` has for them (without a roll-up)."""
        if self.rollup is not None:
            return super().candidates_of(source, target, k, items)
        self.candidate_blocks(source, target, k)  # the checks of a full request (fitted, interactions, k)
        src = query_side(self._model(), source, self.index_config)
        keep = src.items.is_in(items.unique().implode()).to_numpy()
        src = replace(src, items=src.items.filter(keep), vectors=src.vectors[keep])
        built = (target, self.index_config.score) in self.indexes
        tgt = self.target_index(target).side if built else target_side(self._model(), target, self.index_config)
        width = min(k + 1, len(tgt.items))
        if not built and len(src.items) * EXACT_SHARE <= len(tgt.items):
            # a few queries: an exact scan of the target rows costs less than building the graph for them
            found = exact_blocks(tgt.vectors, src.vectors, width, self.index_config)
        else:
            found = search_blocks(self.target_index(target).hnsw, src.vectors, width, self.index_config)
        q_code, t_code = item_codes(src.items, tgt.items)
        blocks = [candidate_block(src.items, tgt.items, ids, scores, q_code, t_code, k, a) for a, scores, ids in found]
        return pl.concat(blocks) if blocks else candidate_block(src.items, tgt.items, np.zeros((0, width), np.int64),
                                                               np.zeros((0, width), np.float32), q_code, t_code, k, 0)

    def _candidate_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        """Blocks of ``index_config.batch_size`` query items, searched as they are asked for (never
        empty: every side has a row)."""
        tgt, index, rolled = self.target_index(target)
        src = query_side(self._model(), source, self.index_config)
        self.backoff_queries[(source, target)] = src.backoff
        if self.rollup is not None and rolled is not None:
            query = self.rollup.query(self._model(), src, source, self.index_config)
            counts: dict[str, Any] = {"cold_targets": rolled.details}
            self.rollup_counts[(source, target)] = counts
            yield from rolled_blocks(self._model(), query, rolled, index, source, target, k, self.index_config,
                                     counts, self.progress)
            return
        width = min(k + 1, len(tgt.items))
        q_code, t_code = item_codes(src.items, tgt.items)
        found = search_blocks(index, src.vectors, width, self.index_config, self.progress, f"{source}->{target}")
        # faiss searches the next block in a thread while this one's rows are made (recs.overlap): the
        # blocks and their order are those of the plain loop (tests/test_build_overlap.py)
        for a, scores, ids in ahead(found) if self.overlap else found:
            yield candidate_block(src.items, tgt.items, ids, scores, q_code, t_code, k, a)
