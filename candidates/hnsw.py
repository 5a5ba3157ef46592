"""Faiss HNSW indexes and batched k-NN search, used as faiss intends.

Cosine similarity is inner product on L2-normalised vectors (``faiss.normalize_L2`` +
``METRIC_INNER_PRODUCT``). ``efConstruction`` is set before ``add``, ``efSearch`` before ``search``.
Searches run in batches so memory for results stays bounded; faiss parallelises each batch over
OpenMP threads.
"""

from __future__ import annotations

from collections.abc import Iterator

import faiss
import numpy as np

from recs.config import IndexConfig
from recs.progress import NullProgress, Progress


def normalized(vectors: np.ndarray) -> np.ndarray:
    """A float32 copy with unit rows (zero rows stay zero)."""
    out = np.array(vectors, dtype=np.float32, copy=True, order="C")
    faiss.normalize_L2(out)
    return out


def build_hnsw(vectors: np.ndarray, cfg: IndexConfig) -> faiss.IndexHNSWFlat:
    """An inner-product HNSW index over ``vectors`` (float32, rows in the caller's id order)."""
    faiss.omp_set_num_threads(cfg.threads)
    index = faiss.IndexHNSWFlat(vectors.shape[1], cfg.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = cfg.ef_construction
    index.hnsw.efSearch = cfg.ef_search
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _batches(n: int, size: int) -> Iterator[tuple[int, int]]:
    for a in range(0, n, size):
        yield a, min(n, a + size)


def search(
    index: faiss.Index, queries: np.ndarray, k: int, cfg: IndexConfig, progress: Progress | None = None,
    label: str = "search",
) -> tuple[np.ndarray, np.ndarray]:
    """k-NN of every query row: (scores [n, k] float32, ids [n, k] int64, -1 where fewer exist)."""
    progress = progress or NullProgress()
    faiss.omp_set_num_threads(cfg.threads)
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = max(cfg.ef_search, k)
    n = queries.shape[0]
    scores = np.empty((n, k), dtype=np.float32)
    ids = np.empty((n, k), dtype=np.int64)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    with progress.stage(label, total=n, unit="q") as bar:
        for a, b in _batches(n, cfg.batch_size):
            scores[a:b], ids[a:b] = index.search(q[a:b], k)
            bar.update(b - a)
    return scores, ids
