"""Faiss HNSW indexes and batched k-NN search, used as faiss intends.

Cosine similarity is inner product on L2-normalised vectors (``faiss.normalize_L2`` +
``METRIC_INNER_PRODUCT``). Inner product on vectors of *different* norms (``--score prob`` and
``in-out``) is not a metric, and an HNSW graph built on it finds the true top 200 poorly (recall 0.42
on the Taobao sample). So those go through the standard reduction of maximum inner product search to
nearest neighbours (Bachrach et al. 2014): each key x gets one more coordinate sqrt(M^2 - |x|^2), M
the largest key norm, so all keys have norm M; each query gets a 0. Then |q - x|^2 = |q|^2 + M^2 -
2 q.x, and the L2 nearest keys are the largest inner products. Scores are turned back into q.x. The
queries (last coordinate 0) lie off the keys' sphere, so the graph walk needs a wider beam than for
cosine: measured recall@200 on the planted 200k log is 0.93 at efSearch 256 and 0.98 at 512 (cosine:
0.999 at 256), so a transformed index searches with twice the configured efSearch
(``effective_ef_search``; BENCHMARKS.md has the sweep).

``IndexConfig.search`` "exact" (or "auto" with at most ``EXACT_MAX_ROWS`` keys) builds a flat index instead:
the exact k largest inner products by a BLAS scan, whatever the norms. Its cost is queries x keys, the graph's
its build plus about queries x efSearch x log(keys). Measured on our model's Click-to-Cart lists at k=200
(BENCHMARKS.md, Blend): 17k cart rows (200k planted events) 1.6 s scanned against 9.2 s for the graph, whose
build dominates; 75k rows (1M events) 18.7 s against 14.3 s. So "auto" scans up to 50k keys.

``efConstruction`` is set before ``add``, ``efSearch`` before ``search``. Searches run in batches so
memory for results stays bounded; faiss parallelises each batch over OpenMP threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import faiss
import numpy as np

from recs.checks import check_choice
from recs.config import SEARCHES, IndexConfig
from recs.progress import NullProgress, Progress

EXACT_MAX_ROWS = 50_000  # "auto" scans exactly up to this many keys (the module docstring)


@dataclass
class Hnsw:
    """A faiss HNSW index (or, with ``IndexConfig.search`` exact, a flat one) and how queries map onto it."""

    index: faiss.IndexHNSWFlat | faiss.IndexFlatIP
    mips_norm2: float | None = None  # set: inner product through the L2 transform; M^2 of the keys

    @property
    def exact(self) -> bool:
        return not isinstance(self.index, faiss.IndexHNSW)

    def effective_ef_search(self, cfg: IndexConfig, k: int) -> int:
        """efSearch used for a k-NN search: the configured one (doubled for a transformed index),
        and never below k."""
        return max(cfg.ef_search * (1 if self.mips_norm2 is None else 2), k)


def scans_exactly(cfg: IndexConfig, rows: int) -> bool:
    """Whether ``rows`` keys are searched by an exact scan under ``cfg.search`` (the module docstring)."""
    check_choice("search", cfg.search, SEARCHES)
    return cfg.search == "exact" or (cfg.search == "auto" and rows <= EXACT_MAX_ROWS)


def build_hnsw(vectors: np.ndarray, cfg: IndexConfig, unit: bool = True) -> Hnsw:
    """An HNSW index for inner-product search over ``vectors`` (rows in the caller's id order).

    ``unit``: the rows are L2-normalised (cosine), so plain ``METRIC_INNER_PRODUCT`` is exact enough;
    otherwise the MIPS-to-L2 transform of the module docstring is applied.
    """
    faiss.omp_set_num_threads(cfg.threads)
    keys = np.ascontiguousarray(vectors, dtype=np.float32)
    if scans_exactly(cfg, keys.shape[0]):
        flat = faiss.IndexFlatIP(keys.shape[1])
        flat.add(keys)
        return Hnsw(flat)
    norm2 = None
    if unit:
        index = faiss.IndexHNSWFlat(keys.shape[1], cfg.m, faiss.METRIC_INNER_PRODUCT)
    else:
        sq = np.einsum("ij,ij->i", keys, keys, dtype=np.float64)
        norm2 = float(sq.max()) if sq.size else 0.0
        keys = np.hstack([keys, np.sqrt(np.maximum(norm2 - sq, 0.0)).astype(np.float32)[:, None]])
        index = faiss.IndexHNSWFlat(keys.shape[1], cfg.m, faiss.METRIC_L2)
    index.hnsw.efConstruction = cfg.ef_construction
    index.hnsw.efSearch = cfg.ef_search
    index.add(keys)
    return Hnsw(index, norm2)


def _batches(n: int, size: int) -> Iterator[tuple[int, int]]:
    for a in range(0, n, size):
        yield a, min(n, a + size)


def search_blocks(
    hnsw: Hnsw, queries: np.ndarray, k: int, cfg: IndexConfig, progress: Progress | None = None,
    label: str = "search",
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """k-NN of the query rows, ``cfg.batch_size`` at a time: (first row, scores [b, k] float32,
    ids [b, k] int64, -1 where fewer exist). A caller that writes each block as it comes holds one
    block of results, not n x k of them."""
    progress = progress or NullProgress()
    faiss.omp_set_num_threads(cfg.threads)
    index = hnsw.index
    if not hnsw.exact:
        index.hnsw.efSearch = hnsw.effective_ef_search(cfg, k)
    n = queries.shape[0]
    with progress.stage(label, total=n, unit="query") as bar:
        for a, b in _batches(n, cfg.batch_size):
            q = np.ascontiguousarray(queries[a:b], dtype=np.float32)
            if hnsw.mips_norm2 is None:
                scores, ids = index.search(q, k)
                if hnsw.exact:
                    scores[ids < 0] = -np.inf
            else:
                dist, ids = index.search(np.hstack([q, np.zeros((q.shape[0], 1), np.float32)]), k)
                q2 = np.einsum("ij,ij->i", q, q, dtype=np.float64)[:, None]
                scores = ((q2 + hnsw.mips_norm2 - dist) / 2).astype(np.float32)
                scores[ids < 0] = -np.inf
            yield a, scores, ids
            bar.update(b - a)


def exact_blocks(
    keys: np.ndarray, queries: np.ndarray, k: int, cfg: IndexConfig
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """The exact k largest inner products of each query row with ``keys`` (faiss ``IndexFlatIP``, a BLAS
    scan), in the blocks and form of ``search_blocks``: for a few queries against many keys, where building
    the graph would cost more than scanning. Same scores as the graph's (q.x), without its misses."""
    faiss.omp_set_num_threads(cfg.threads)
    keys = np.ascontiguousarray(keys, dtype=np.float32)
    index = faiss.IndexFlatIP(keys.shape[1])
    index.add(keys)
    for a, b in _batches(queries.shape[0], cfg.batch_size):
        scores, ids = index.search(np.ascontiguousarray(queries[a:b], dtype=np.float32), k)
        scores[ids < 0] = -np.inf
        yield a, scores, ids
