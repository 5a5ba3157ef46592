"""Sharded k-NN: split the target rows, search every shard, merge the per-shard top-k into the global top-k.

Why: an HNSW index of a large catalogue may not fit in one Spark executor's memory (``recs build-index
--engine spark --shards N``). Each shard indexes a contiguous range of the target rows
(``shard_bounds``), so a shard-local id ``j`` of shard ``s`` is the global row ``offsets[s] + j``.
A query is answered by every shard, and ``merge_topk`` keeps the best ``k`` of the ``N x k``
answers. The merge is exact: the global top-k of an exact search is contained in the union of the
shards' exact top-k (each global top-k row is in its own shard's top-k), so on exact indexes (faiss
``IndexFlat``) sharded equals unsharded, up to how ties are ordered.

Ties: rows are ordered by score, descending, then by global row id, ascending. Faiss's own order of
equal scores is not specified, so a merge cannot reproduce it; it applies this one rule instead, and
``tests/test_shard_merge.py`` compares with an unsharded search ordered by the same rule. Missing
answers (faiss id -1, a shard with fewer than k rows or an HNSW walk that found fewer) sort last and
come out as id -1, score -inf, as faiss reports them.

Scores of different shards are comparable: every shard's search returns the inner product q.x
(``recs.candidates.hnsw.search_blocks`` turns the MIPS-to-L2 distances back, each shard with its
own norm bound), which is the quantity being ranked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np
import polars as pl

from recs.candidates.hnsw import Hnsw, search_blocks
from recs.columns import Col
from recs.config import IndexConfig


def shard_bounds(rows: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous ``[start, end)`` ranges covering ``0 .. rows``, sizes differing by at most
    one (the first ``rows % shards`` are one longer). Never an empty shard: with fewer rows than
    shards, there are ``rows`` shards of one row (and one empty range for zero rows)."""
    shards = max(1, min(shards, rows))
    base, extra = divmod(rows, shards)
    edges = np.concatenate([[0], np.cumsum([base + (i < extra) for i in range(shards)])])
    return [(int(a), int(b)) for a, b in pairwise(edges)]


def merge_topk(
    results: Sequence[tuple[np.ndarray, np.ndarray]], offsets: Sequence[int], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The global top-``k`` of per-shard results; a pure function.

    ``results[s]`` is shard ``s``'s ``(scores [n, k_s] float, ids [n, k_s] int64)`` with shard-local
    ids (-1 = no answer); ``offsets[s]`` its first global row. Returns ``(scores [n, k] float32,
    ids [n, k] int64)`` with global ids, ordered by score descending then global id ascending;
    slots beyond the answers found are id -1, score -inf.
    """
    if len(results) != len(offsets):
        raise ValueError(f"{len(results)} shard results but {len(offsets)} offsets")
    if not results:
        raise ValueError("no shard results to merge")
    n = results[0][0].shape[0]
    scores = np.concatenate([np.asarray(s, dtype=np.float32).reshape(n, -1) for s, _ in results], axis=1)
    ids = np.concatenate(
        [np.where(np.asarray(i) >= 0, np.asarray(i, dtype=np.int64) + off, -1).reshape(n, -1)
         for (_, i), off in zip(results, offsets, strict=True)], axis=1)
    missing = ids < 0
    key_score = np.where(missing, np.inf, -scores.astype(np.float64))  # ascending sort: best first, missing last
    key_id = np.where(missing, np.iinfo(np.int64).max, ids)
    order = np.lexsort((key_id, key_score), axis=1)[:, :k]
    top_ids = np.take_along_axis(ids, order, axis=1)
    top_scores = np.take_along_axis(scores, order, axis=1)
    top_scores[top_ids < 0] = -np.inf
    if top_ids.shape[1] < k:  # fewer answers in all shards together than k: pad as faiss does
        pad = k - top_ids.shape[1]
        top_ids = np.hstack([top_ids, np.full((n, pad), -1, np.int64)])
        top_scores = np.hstack([top_scores, np.full((n, pad), -np.inf, np.float32)])
    return top_scores, top_ids


def search_shards(
    load: Callable[[int], Hnsw], offsets: Sequence[int], sizes: Sequence[int], queries: np.ndarray, k: int,
    cfg: IndexConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """k-NN of ``queries`` over every shard, merged: ``(scores [n, k], ids [n, k])`` with global ids.

    ``load(s)`` returns shard ``s``'s index; it is called once per shard and the index dropped before
    the next is loaded, so memory holds one shard at a time (the point of sharding). Each block of a
    shard's answers (``cfg.batch_size`` queries) is merged into the running top-k of those queries as
    it comes, so results take one ``n x k`` array and block-sized temporaries, not ``shards x n x k``;
    the order (score, then id) is a total order, so merging one shard at a time gives the top-k of
    all shards at once. One shard is searched as the unsharded index is, with no merge, so its
    order of ties is faiss's own.
    """
    if len(sizes) != len(offsets) or not sizes:
        raise ValueError(f"{len(sizes)} shard sizes for {len(offsets)} offsets")
    n = queries.shape[0]
    if len(sizes) == 1:
        blocks = list(search_blocks(load(0), queries, min(k, sizes[0]), cfg))
        if not blocks:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        return np.concatenate([b[1] for b in blocks]), np.concatenate([b[2] for b in blocks])
    best_scores = np.full((n, k), -np.inf, np.float32)
    best_ids = np.full((n, k), -1, np.int64)
    for s, (offset, size) in enumerate(zip(offsets, sizes, strict=True)):
        hnsw = load(s)
        for a, scores, ids in search_blocks(hnsw, queries, min(k, size), cfg):
            b = a + len(ids)
            best_scores[a:b], best_ids[a:b] = merge_topk(
                [(best_scores[a:b], best_ids[a:b]), (scores, ids)], [0, offset], k)
        del hnsw
    return best_scores, best_ids


def list_overlap(reference: pl.DataFrame | pl.LazyFrame, other: pl.DataFrame | pl.LazyFrame) -> float:
    """The share of ``reference``'s (item, candidate) rows that ``other`` also has: 1.0 when every list
    of the reference is found whole. How a sharded or distributed search is compared with the
    single-machine one (the HNSW search is approximate, so two searches over different graphs
    differ in the last places of some lists; ranks are left out for the same reason)."""
    keys = [Col.ITEM, Col.CANDIDATE]
    ref = reference.lazy().select(keys)
    total = ref.select(pl.len()).collect().item()
    if total == 0:
        return 1.0
    both = ref.join(other.lazy().select(keys).unique(), on=keys, how="semi").select(pl.len()).collect().item()
    return both / total
