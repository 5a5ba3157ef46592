"""Vectors for groups of items (a shop, a category), in the item vectors' space, for cold start.

An item the model never saw has no vector; its group stands in (``recs.candidates.rollup``). Two
ways to give a group a vector, measured side by side (README, "Cold start"):

* ``mean``: the count-weighted mean of the group's known items' rows, per interaction and side.
  Rows are the search rows of ``recs.candidates.scoring`` (query ``[u, 1]``, target ``[v, bias]``),
  so the mean lives in the very space the index is searched in, and an item seen often pulls its
  group harder than one seen once. Nothing is trained.
* ``trained``: the group's own tokens (``shop:click``), trained with the same pipeline on the sessions
  with ``shop_id`` in place of ``item_id`` (``recs train-embeddings --entity shop_id``; the model's
  ``groups``). That model is a space of its own: two word2vec runs agree only up to a rotation, so
  its vectors are mapped into the item space by the orthogonal Procrustes rotation (with one scale)
  that best carries each group token onto its ``mean`` row (Schoenemann 1966; the standard map of
  cross-lingual word embeddings). One rotation for input and output vectors together keeps the
  group model's own inner products; the group's training then decides what differs from the mean.

A rolled-up *target* row has no count of its own, so its prior (the ``[v, bias]`` bias of
``--score prob``) is that of ``COLD_PSEUDO_COUNT`` events: below an item seen once, so a listing that
only borrows its group's vector ranks below a real item whose vector fits as well. It is *not* put
below items that stand in with a token of another interaction (``--backoff``: a once-clicked,
never-carted item's cart prior is ``a log 1 + log(carts / clicks)``, about -2.8 on the planted log):
measured, a cold prior that low keeps every new listing out of every top 200 (0 of 97 new targets
found on the planted log, against 17 of 97 with ``a log 0.5``; README, "Cold start"), and a listing
with no events is no more evidence against a cart than a click without one. With ``cosine`` and
``in-out`` there is no prior; equal scores put known items first (``recs.candidates.rollup``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from recs.candidates.scoring import _N_ALT, _N_OWN, item_rows, ns_exponent, query_side, target_side
from recs.columns import Col
from recs.config import IndexConfig
from recs.embeddings.model import EmbeddingModel
from recs.embeddings.similarity import normalized
from recs.errors import ConfigError

COLD_PSEUDO_COUNT = 0.5  # events a rolled-up target counts as: fewer than any item with a token
_GROUP, _W, _ROW = "_group", "_w", "_row"


@dataclass(frozen=True)
class GroupRows:
    """One side's rows of one group column: the group ids and their vectors, in search form."""

    column: str  # shop_id or category
    groups: pl.Series
    vectors: np.ndarray  # float32, as the item rows of the same side (query or target)


def side_weights(model: EmbeddingModel, interaction: str, backoff: bool) -> np.ndarray:
    """Events behind each row of ``query_side``/``target_side`` (same order: both are ``item_rows``):
    its own token's count, or its stand-in's."""
    rows = item_rows(model, interaction, backoff)
    return rows[_N_OWN].fill_null(rows[_N_ALT]).fill_null(1).to_numpy().astype(np.float64)


def mean_rows(items: pl.Series, weights: np.ndarray, vectors: np.ndarray, catalog: pl.DataFrame,
              column: str) -> GroupRows:
    """Count-weighted mean of the rows of the items in each group of ``column`` (groups with no known
    item have no row). One sparse matrix product: no Python loop over groups or items."""
    member = (
        pl.DataFrame({Col.ITEM: items, _W: weights}).with_row_index(_ROW)
        .join(catalog.select(Col.ITEM, column).drop_nulls(column), on=Col.ITEM, how="inner")
    )
    groups = member.select(column).unique().sort(column)[column]
    member = member.join(groups.to_frame().with_row_index(_GROUP), on=column, how="left")
    g = member[_GROUP].to_numpy()
    w = member[_W].to_numpy()
    totals = np.bincount(g, weights=w, minlength=len(groups))
    share = (w / totals[g]).astype(np.float32)
    matrix = sp.csr_matrix((share, (g, member[_ROW].to_numpy())), shape=(len(groups), len(items)))
    return GroupRows(column, groups, np.ascontiguousarray(matrix @ vectors, dtype=np.float32))


def cold_bias(model: EmbeddingModel) -> float:
    """The prior term of a rolled-up target row under ``--score prob`` (see the module docstring)."""
    a = ns_exponent(model)
    return a * float(np.log(COLD_PSEUDO_COUNT))


def as_target(rows: GroupRows, model: EmbeddingModel, cfg: IndexConfig) -> GroupRows:
    """Group rows made fit to stand as targets: their own prior under ``prob`` (see the module
    docstring), unit length under ``cosine`` (a mean of unit vectors is shorter than one)."""
    vectors = rows.vectors.copy()
    if cfg.score == "prob":
        vectors[:, -1] = cold_bias(model)
    elif cfg.score == "cosine":
        vectors = normalized(vectors)
    return GroupRows(rows.column, rows.groups, vectors)


def as_query(rows: GroupRows, cfg: IndexConfig) -> GroupRows:
    if cfg.score == "cosine":
        return GroupRows(rows.column, rows.groups, normalized(rows.vectors))
    return rows


def procrustes(group_model: EmbeddingModel, model: EmbeddingModel, catalog: pl.DataFrame, column: str) -> np.ndarray:
    """The scaled rotation ``s W`` [dim, dim] carrying the group model's vectors into the item model's
    space: orthogonal W and scale s minimising sum_t c_t |s W^T a_t - b_t|^2 over group tokens t present
    in both (a = the token's input and output vectors, b = the count-weighted mean of its items' item
    vectors of the same interaction, c = its count)."""
    dim = model.vectors_in.shape[1]
    if group_model.vectors_in.shape[1] != dim:
        raise ConfigError(f"the {column} vectors have {group_model.vectors_in.shape[1]} dimensions and the item "
                          f"vectors {dim}; train both in one run (recs train-embeddings --entity {column})")
    a_rows, b_rows, w_rows = [], [], []
    for interaction in group_model.interactions:
        if interaction not in model.interactions:
            continue
        tokens = model.tokens_of(interaction)
        counts = model.vocab[Col.COUNT].to_numpy()[tokens[Col.TOKEN_ID].to_numpy()].astype(np.float64)
        for raw_item, raw_group in ((model.vectors_in, group_model.vectors_in),
                                    (model.vectors_out, group_model.vectors_out)):
            means = mean_rows(tokens[Col.ITEM], counts, raw_item[tokens[Col.TOKEN_ID].to_numpy()], catalog, column)
            own = group_model.vocab.filter(pl.col(Col.INTERACTION) == interaction).select(
                Col.TOKEN_ID, Col.COUNT, pl.col(Col.ITEM).alias(column))
            both = own.join(_typed(means.groups.to_frame().with_row_index(_ROW), column, own.schema[column]),
                            on=column, how="inner")
            if both.height == 0:
                continue
            a_rows.append(raw_group[both[Col.TOKEN_ID].to_numpy()].astype(np.float64))
            b_rows.append(means.vectors[both[_ROW].to_numpy()].astype(np.float64))
            w_rows.append(both[Col.COUNT].to_numpy().astype(np.float64))
    if not a_rows:
        raise ConfigError(f"the {column} vectors share no group and interaction with the item vectors; "
                          "nothing to align them by")
    a, b, c = np.vstack(a_rows), np.vstack(b_rows), np.sqrt(np.concatenate(w_rows))[:, None]
    u, s, vt = np.linalg.svd((a * c).T @ (b * c))
    rotation = u @ vt
    scale = float(s.sum() / max(np.sum((a * c) ** 2), 1e-30))
    return (scale * rotation).astype(np.float32)


def trained_rows(group_model: EmbeddingModel, interaction: str, cfg: IndexConfig, column: str, target: bool,
                 map_to_items: np.ndarray) -> GroupRows | None:
    """The group model's own search rows of ``interaction`` (its backoff and priors as for items),
    mapped into the item space; None when the group model has no token of the interaction at all."""
    try:
        side = (target_side if target else query_side)(group_model, interaction, cfg)
    except ConfigError:
        return None
    vectors = side.vectors.copy()
    dim = map_to_items.shape[0]
    vectors[:, :dim] = side.vectors[:, :dim] @ map_to_items
    return GroupRows(column, side.items.rename(column), vectors)


def _typed(frame: pl.DataFrame, column: str, dtype: pl.DataType) -> pl.DataFrame:
    """``frame[column]`` in ``dtype`` for a join (a catalogue's shop ids may be text where the sessions'
    were integers); values that do not convert match nothing."""
    if frame.schema[column] == dtype:
        return frame
    return frame.with_columns(pl.col(column).cast(pl.String).cast(dtype, strict=False))


__all__ = ["COLD_PSEUDO_COUNT", "GroupRows", "as_query", "as_target", "cold_bias", "mean_rows", "procrustes",
           "side_weights", "trained_rows"]
