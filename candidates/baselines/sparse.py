"""Sparse-matrix building blocks shared by the count-based baselines (co-purchase, co-occurrence).

Rows and columns are dense codes made by polars; products are scipy.sparse; top-k per row is one
lexsort over the product's non-zeros, never a Python loop over rows or events. The k-NN output has
the same shape as a faiss search (``scores [n, width]``, ``ids [n, width]``, ``-1`` in empty slots), so
``candidate_frame`` turns it into the candidate table exactly as it does for the vector methods.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
import scipy.sparse as sp

from recs.progress import NullProgress, Progress


def dense_codes(values: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """0-based codes of ``values`` in sorted order of the distinct values, and those values.

    Sorted, not first-seen, order: the same set of values always gets the same codes, so ties in a
    score are broken the same way on every run.
    """
    uniques = values.unique().sort()
    codes = values.rank("dense").cast(pl.Int64).to_numpy() - 1
    return codes, uniques


def popularity_codes(values: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """0-based codes of ``values`` by descending frequency (value breaks ties), and those values.

    ``topk_rows`` breaks score ties by the smaller code, so with these codes a tie goes to the more
    frequent item: the natural fallback of a count-based method, and deterministic.
    """
    counts = values.value_counts(name="_n").sort(["_n", values.name], descending=[True, False])
    uniques = counts[values.name]
    lookup = pl.DataFrame({values.name: uniques, "_code": np.arange(uniques.len(), dtype=np.int64)})
    codes = pl.DataFrame({values.name: values}).join(lookup, on=values.name, how="left", maintain_order="left")
    return codes["_code"].to_numpy(), uniques


def incidence(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], binary: bool = True) -> sp.csr_matrix:
    """A ``rows x cols`` CSR matrix: 1 where a pair occurs (``binary``) or the number of times it occurs."""
    m = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=shape)
    m.sum_duplicates()
    if binary:
        m.data[:] = 1.0
    return m


def row_normalized(m: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (empty rows stay empty): dot products become cosines."""
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ m)


def topk_rows(m: sp.csr_matrix, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``width`` largest entries of every row: (scores, column ids), ``-1`` where a row has fewer.

    Ties are broken by the smaller column id, so results are deterministic.
    """
    m = sp.csr_matrix(m)
    m.eliminate_zeros()
    n = m.shape[0]
    row = np.repeat(np.arange(n), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, row))
    row, col, val = row[order], m.indices[order], m.data[order]
    slot = np.arange(row.size) - m.indptr[row]
    keep = slot < width
    scores = np.full((n, width), -np.inf, dtype=np.float32)
    ids = np.full((n, width), -1, dtype=np.int64)
    scores[row[keep], slot[keep]] = val[keep]
    ids[row[keep], slot[keep]] = col[keep]
    return scores, ids


def _blocks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for a in range(0, n, size):
        yield a, min(n, a + size)


def sparse_knn(
    queries: sp.csr_matrix,
    targets: sp.csr_matrix,
    width: int,
    block_rows: int = 4096,
    progress: Progress | None = None,
    label: str = "sparse k-NN",
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``width`` rows of ``targets`` by dot product with each row of ``queries``.

    The product is formed one block of query rows at a time, so memory is bounded by one block's
    non-zeros rather than the full item-by-item matrix.
    """
    progress = progress or NullProgress()
    n = queries.shape[0]
    scores = np.full((n, width), -np.inf, dtype=np.float32)
    ids = np.full((n, width), -1, dtype=np.int64)
    targets_t = sp.csc_matrix(targets.T)
    with progress.stage(label, total=n, unit="query") as bar:
        for a, b in _blocks(n, block_rows):
            scores[a:b], ids[a:b] = topk_rows(sp.csr_matrix(queries[a:b] @ targets_t), width)
            bar.update(b - a)
    return scores, ids
