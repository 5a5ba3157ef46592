"""The one interface every candidate generator implements, ours and each baseline.

A generator is fitted on training sessions and then answers, for a (source, target) pair of
interactions, a candidate table ``item_id, candidate_item_id, rank, score``: for every item it can
answer for, at most ``k`` other items, best first (rank 1). Methods that ignore interactions answer
the same table for every pair. ``tests/test_generator_contract.py`` holds the shared tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import polars as pl

from recs.columns import Col


class CandidateGenerator(ABC):
    """Fit on sessions, then produce candidate tables."""

    name: str = "generator"
    interaction_aware: bool = True

    @abstractmethod
    def fit(self, train: pl.DataFrame) -> CandidateGenerator:
        """Learn from canonical training sessions; return self."""

    @abstractmethod
    def candidates(self, source: str, target: str, k: int) -> pl.DataFrame:
        """Candidate table for ``source`` -> ``target`` with at most ``k`` rows per item."""


def item_codes(query_items: pl.Series, target_items: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes shared by both sides, so "is this the query item itself" is an integer compare
    (item ids may be ints or strings)."""
    both = pl.concat([query_items.rename("x"), target_items.rename("x")]).rank("dense").to_numpy()
    return both[: len(query_items)], both[len(query_items) :]


def candidate_frame(
    query_items: pl.Series, target_items: pl.Series, ids: np.ndarray, scores: np.ndarray, k: int
) -> pl.DataFrame:
    """Turn k-NN results into the candidate table, dropping the query item itself and empty slots.

    ``ids[i]`` index into ``target_items``; row i belongs to ``query_items[i]``. The search should ask
    for ``k + 1`` neighbours so that removing the item itself still leaves ``k``.

    Rows are done in blocks of ``_BLOCK`` queries: the masks, cumulative counts and index arrays are
    as large as ``ids`` (int64, n x (k+1)), and at 700k queries x 201 one of them is 1.1 GB, so
    doing all rows at once would hold several GB of temporaries next to the output.
    """
    q_code, t_code = item_codes(query_items, target_items)
    parts = [candidate_block(query_items, target_items, ids[a : a + _BLOCK], scores[a : a + _BLOCK],
                             q_code, t_code, k, a)
             for a in range(0, max(len(ids), 1), _BLOCK)]
    return parts[0] if len(parts) == 1 else pl.concat(parts, rechunk=False)


_BLOCK = 32_768


def candidate_block(
    query_items: pl.Series, target_items: pl.Series, ids: np.ndarray, scores: np.ndarray, q_code: np.ndarray,
    t_code: np.ndarray, k: int, offset: int,
) -> pl.DataFrame:
    """The candidate rows of the queries ``offset .. offset + len(ids)`` (see ``candidate_frame``);
    ``ids`` and ``scores`` are those queries' rows only, codes are from ``item_codes``."""
    valid = ids >= 0
    safe = np.where(valid, ids, 0)
    valid &= t_code[safe] != q_code[offset : offset + len(ids), None]
    seen = np.cumsum(valid, axis=1)
    valid &= seen <= k
    rows, cols = np.nonzero(valid)
    return pl.DataFrame(
        {
            Col.ITEM: query_items.gather(rows + offset),
            Col.CANDIDATE: target_items.gather(safe[rows, cols]),
            Col.RANK: seen[rows, cols].astype(np.int32),
            Col.SCORE: scores[rows, cols].astype(np.float32),
        }
    )


def describe(frame: pl.DataFrame | pl.LazyFrame) -> dict[str, Any]:
    """Small summary of a candidate table (a frame, or a lazy scan of a written one).

    Lazy on purpose: the eager group_by over a 130M-row table took +3.6 GiB at 10M events, the lazy
    one +38 MiB (BENCHMARKS.md, Memory).
    """
    lengths = frame.lazy().group_by(Col.ITEM).len().collect()["len"]
    return {"items": lengths.len(), "rows": int(lengths.sum()), "mean_list_length": float(lengths.mean() or 0.0)}
