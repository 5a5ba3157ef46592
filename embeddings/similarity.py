"""Cosine similarity of a model's vectors, and Table 2 of the paper: are the vectors of items in one
category closer than those of items in different categories, for click and for cart vectors apart?

The category of an item is its most frequent ``category`` in the sessions (``item_categories``);
``category_similarity`` samples random same- and different-category pairs of items that have a
vector of an interaction and reports the mean cosine of their input vectors.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np
import polars as pl

from recs.columns import Col, Interaction
from recs.embeddings.model import EmbeddingModel

CLICK, CART = Interaction.CLICK, Interaction.CART


def normalized(vectors: np.ndarray) -> np.ndarray:
    """A float32 copy with unit rows (zero rows stay zero): cosine is then an inner product."""
    out = np.array(vectors, dtype=np.float32, copy=True, order="C")
    faiss.normalize_L2(out)
    return out


def item_categories(sessions: pl.DataFrame) -> pl.DataFrame:
    """item_id -> its most frequent category in the sessions (smallest category on a tie)."""
    return (
        sessions.filter(pl.col(Col.CATEGORY).is_not_null())
        .group_by(Col.ITEM, Col.CATEGORY)
        .len("_n")
        .sort(["_n", Col.CATEGORY], descending=[True, False])
        .unique(Col.ITEM, keep="first", maintain_order=True)
        .select(Col.ITEM, Col.CATEGORY)
    )


def category_similarity(
    model: EmbeddingModel, categories: pl.DataFrame, pairs: int, seed: int
) -> list[dict[str, Any]]:
    """Table 2: mean cosine of click vectors and of cart vectors, random same- vs different-category pairs.

    Same-category pairs: a random item of a category with at least two items, and another item of its
    category chosen uniformly. Different-category pairs: two random items whose categories differ.
    One row per interaction (click, then cart) that the model has and at least two items of it have a
    category; ``same_category`` is None when no category has two such items.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for inter in (CLICK, CART):
        if inter not in model.interactions:
            continue
        tok = model.tokens_of(inter).join(categories, on=Col.ITEM, how="inner").sort(Col.CATEGORY, Col.TOKEN_ID)
        if tok.height < 2:
            continue
        vec = normalized(model.vectors_in[tok[Col.TOKEN_ID].to_numpy()])
        cat = tok[Col.CATEGORY].rank("dense").cast(pl.Int64).to_numpy() - 1
        size = np.bincount(cat)
        start = np.cumsum(size) - size
        eligible = np.flatnonzero(size[cat] >= 2)
        row: dict[str, Any] = {"interaction": inter, "items": tok.height, "categories": int(size.size)}
        if eligible.size:
            a = rng.choice(eligible, pairs)
            s, off = size[cat[a]], a - start[cat[a]]
            b = start[cat[a]] + (off + 1 + rng.integers(0, s - 1)) % s  # another item, same category
            row["same_category"] = float(np.einsum("ij,ij->i", vec[a], vec[b]).mean())
        else:
            row["same_category"] = None
        a, b = rng.integers(0, tok.height, pairs), rng.integers(0, tok.height, pairs)
        diff = cat[a] != cat[b]
        row["different_category"] = float(np.einsum("ij,ij->i", vec[a[diff]], vec[b[diff]]).mean()) if diff.any() \
            else None
        row["pairs"] = pairs
        rows.append(row)
    return rows
