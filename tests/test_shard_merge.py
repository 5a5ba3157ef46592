"""The shard merge (recs.candidates.shards): sharded exact search equals unsharded exact search.

On exact indexes (faiss IndexFlatIP) the global top-k is in the union of the shards' top-k, so the
merge must reproduce the unsharded answer exactly once both are ordered by the one tie rule (score
descending, then row id ascending). Integer-valued vectors make ties common on purpose.
"""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recs.candidates.hnsw import Hnsw, build_hnsw
from recs.candidates.shards import merge_topk, search_shards, shard_bounds
from recs.config import IndexConfig


def flat_search(keys: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product, ordered by (score desc, id asc): all rows searched, then cut,
    so the tie at the k-th place is broken by the rule and not by faiss's heap."""
    index = faiss.IndexFlatIP(keys.shape[1])
    index.add(keys)
    scores, ids = index.search(queries, keys.shape[0])
    order = np.lexsort((ids, -scores.astype(np.float64)), axis=1)[:, :k]
    out_ids = np.take_along_axis(ids, order, axis=1)
    out_scores = np.take_along_axis(scores, order, axis=1)
    if k > keys.shape[0]:
        pad = k - keys.shape[0]
        out_ids = np.hstack([out_ids, np.full((len(queries), pad), -1)])
        out_scores = np.hstack([out_scores, np.full((len(queries), pad), -np.inf, np.float32)])
    return out_scores, out_ids


def sharded_flat(keys: np.ndarray, queries: np.ndarray, k: int, shards: int) -> tuple[np.ndarray, np.ndarray]:
    bounds = shard_bounds(len(keys), shards)
    results = [flat_search(keys[a:b], queries, min(k, b - a)) for a, b in bounds]
    return merge_topk(results, [a for a, _ in bounds], k)


def test_shard_bounds_cover_the_rows_in_near_equal_ranges():
    assert shard_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert shard_bounds(10, 1) == [(0, 10)]
    assert shard_bounds(2, 4) == [(0, 1), (1, 2)]  # never an empty shard
    assert shard_bounds(0, 3) == [(0, 0)]


def test_hand_worked_merge():
    # two shards of 2 rows each (global rows 0,1 and 2,3); one query
    a = (np.array([[0.9, 0.5]], np.float32), np.array([[1, 0]]))
    b = (np.array([[0.9, 0.7]], np.float32), np.array([[0, 1]]))  # global 2 and 3
    scores, ids = merge_topk([a, b], [0, 2], 3)
    # 0.9 twice: global 1 and 2, the smaller id first; then 0.7 (global 3)
    assert ids.tolist() == [[1, 2, 3]]
    assert scores[0].tolist() == pytest.approx([0.9, 0.9, 0.7])


def test_missing_answers_sort_last_and_pad():
    a = (np.array([[0.1, -np.inf]], np.float32), np.array([[0, -1]]))
    b = (np.array([[-0.5]], np.float32), np.array([[0]]))
    scores, ids = merge_topk([a, b], [0, 5], 4)
    assert ids.tolist() == [[0, 5, -1, -1]]
    assert scores[0, :2].tolist() == pytest.approx([0.1, -0.5]) and np.isneginf(scores[0, 2:]).all()


def test_sharded_equals_unsharded_on_exact_indexes_with_ties():
    rng = np.random.default_rng(0)
    keys = rng.integers(-2, 3, size=(101, 4)).astype(np.float32)  # many equal inner products
    queries = rng.integers(-2, 3, size=(37, 4)).astype(np.float32)
    want = flat_search(keys, queries, 15)
    for shards in (1, 2, 3, 7, 101):
        got = sharded_flat(keys, queries, 15, shards)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])


@settings(max_examples=150, deadline=None)
@given(rows=st.integers(1, 40), queries=st.integers(1, 6), dim=st.integers(1, 4), k=st.integers(1, 50),
       shards=st.integers(1, 9), seed=st.integers(0, 2**32 - 1))
def test_sharded_equals_unsharded_property(rows, queries, dim, k, shards, seed):
    rng = np.random.default_rng(seed)
    keys = rng.integers(-2, 3, size=(rows, dim)).astype(np.float32)
    q = rng.integers(-2, 3, size=(queries, dim)).astype(np.float32)
    want = flat_search(keys, q, k)
    got = sharded_flat(keys, q, k, shards)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("unit", [True, False])
def test_search_shards_over_hnsw_finds_the_exact_neighbours(unit):
    """Sharded HNSW search: on a small catalogue an HNSW with a wide beam is exact, so the merged
    per-shard answers are the exact top-k, ids in the global row space (cosine, and the MIPS-to-L2
    transform whose shards each have their own norm bound)."""
    rng = np.random.default_rng(1)
    keys = rng.normal(size=(300, 8)).astype(np.float32)
    if unit:
        keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    else:
        keys *= rng.uniform(0.2, 3.0, size=(300, 1)).astype(np.float32)  # different norms: not a metric
    queries = rng.normal(size=(50, 8)).astype(np.float32)
    cfg = IndexConfig(m=16, ef_construction=200, ef_search=300, threads=1, batch_size=16)
    bounds = shard_bounds(len(keys), 3)
    indexes = [build_hnsw(keys[a:b], cfg, unit=unit) for a, b in bounds]
    loaded: list[int] = []

    def load(s: int) -> Hnsw:
        loaded.append(s)
        return indexes[s]

    scores, ids = search_shards(load, [a for a, _ in bounds], [b - a for a, b in bounds], queries, 10, cfg)
    assert loaded == [0, 1, 2]  # each shard once
    exact_scores, exact_ids = flat_search(keys, queries, 10)
    np.testing.assert_array_equal(ids, exact_ids)
    np.testing.assert_allclose(scores, exact_scores, rtol=1e-4, atol=1e-4)
