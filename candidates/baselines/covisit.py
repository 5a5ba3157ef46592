"""Baseline 9: co-visitation as the strongest public session-recommendation pipelines build it.

This is the "carts-orders" co-visitation matrix of the top public OTTO (Kaggle 2022-23) pipelines:
take each session's most recent ``max_events`` events, pair every two events of *different* items
that lie within ``window_s`` seconds of each other, count each (item, other item) pair once per
session with the weight of the other event's type (OTTO: click 1, cart 6, order 3), sum over
sessions and keep the top k other items per item. It is the baseline a practitioner tries first:
no training, one self-join.

Interactions enter only as weights: the answer is one item-to-item list per item, the same for every
(source, target) pair, so it is evaluated like the other item-level methods. Two choices of ours:
a favorite (no OTTO type) weighs as an order, 3; when a session has the pair with several types of
the other event, the highest weight counts (OTTO keeps whichever row comes first).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl

from recs.candidates.base import CandidateGenerator
from recs.columns import Col
from recs.config import CoVisitConfig


@dataclass
class CoVisitationCandidates(CandidateGenerator):
    """OTTO-style type-weighted co-visitation counts, top k per item."""

    config: CoVisitConfig = field(default_factory=CoVisitConfig)
    name: str = "co-visitation"
    interaction_aware: bool = False
    _pairs: pl.DataFrame | None = field(default=None, repr=False)  # item_id, candidate_item_id, score; sorted

    def _fit(self, train: pl.DataFrame) -> None:
        cfg = self.config
        cfg.validate()
        names, weights = zip(*cfg.weights, strict=True) if cfg.weights else ((), ())
        weight = pl.col(Col.INTERACTION).replace_strict(list(names), list(weights), default=cfg.other_weight,
                                                        return_dtype=pl.Float64)
        events = (
            train.select(Col.SESSION, Col.ITEM, Col.INTERACTION, Col.TIMESTAMP)
            .with_row_index("_row")
            .sort([Col.SESSION, Col.TIMESTAMP, "_row"])
            # the most recent max_events of each session (len is unsigned: cast before subtracting)
            .filter(pl.len().over(Col.SESSION).cast(pl.Int64) - pl.int_range(pl.len()).over(Col.SESSION)
                    <= cfg.max_events)
            .select(Col.SESSION, Col.ITEM, Col.TIMESTAMP, weight.alias("_w"))
        )
        other = events.select(
            Col.SESSION, pl.col(Col.ITEM).alias(Col.CANDIDATE), pl.col(Col.TIMESTAMP).alias("_ty"), "_w"
        )
        popularity = events.group_by(Col.ITEM).len("_pop").rename({Col.ITEM: Col.CANDIDATE})
        self._pairs = (
            events.select(Col.SESSION, Col.ITEM, Col.TIMESTAMP)
            .join(other, on=Col.SESSION)
            .filter(
                (pl.col(Col.ITEM) != pl.col(Col.CANDIDATE))
                & ((pl.col(Col.TIMESTAMP) - pl.col("_ty")).abs() < pl.duration(seconds=cfg.window_s))
            )
            .group_by(Col.SESSION, Col.ITEM, Col.CANDIDATE)
            .agg(pl.col("_w").max())
            .group_by(Col.ITEM, Col.CANDIDATE)
            .agg(pl.col("_w").sum().alias(Col.SCORE))
            .join(popularity, on=Col.CANDIDATE, how="left")
            # ties go to the more visited item, then the smaller id: deterministic
            .sort([Col.ITEM, Col.SCORE, "_pop", Col.CANDIDATE], descending=[False, True, True, False])
            .drop("_pop")
        )

    def _candidate_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        assert self._pairs is not None  # fitted: the base class checked
        yield (
            self._pairs.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over(Col.ITEM).alias(Col.RANK))
            .filter(pl.col(Col.RANK) <= k)
            .select(Col.ITEM, Col.CANDIDATE, Col.RANK, pl.col(Col.SCORE).cast(pl.Float32))
        )
