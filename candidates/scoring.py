"""How a source token is scored against target tokens: the vectors that go into the index and the queries.

Three scores, each an inner product so that one Faiss HNSW (``METRIC_INNER_PRODUCT``) serves all:

* ``prob`` (default): the model's own estimate of log P(q | p), the probability that target token q
  follows source token p. Skip-gram with negative sampling converges to
  ``u_p . v_q = log P(q | p) - log(k P_n(q))`` where the noise distribution is P_n(q) ~ count(q)^a
  (Levy & Goldberg 2014; a = the model's ``ns_exponent``, gensim's 0.75). So ``u_p . v_q + a log
  count(q)`` ranks targets by P(q | p), which is what a hit rate rewards: an often-carted item that
  fits the trigger beats a once-carted one that fits it equally. Index rows are
  ``[v_q, a log count(q)]``, queries ``[u_p, 1]``.
* ``in-out``: ``u_p . v_q`` alone, the shifted PMI; it favours rare targets.
* ``cosine``: cosine of input vectors, the "nearest vectors" of the paper's retrieval.

**Backoff** (on by default). Marketplace data is sparse: most items are clicked and never carted,
so many items carted tomorrow have no cart vector today (27% of the planted log's test carts, 93% of
Taobao's), and most cart vectors rest on one or two cart-adds. An item's *stand-in* is its most
frequent token of another interaction (ties: the smaller token id).

* Queries: an item without a source token asks with its stand-in's input vector (``cart -> cart``
  for an item that was only ever clicked).
* Targets, with ``prob`` only: the stand-in estimates ``log P(q:cart | p) ~ log P(q:click | p) +
  log r``, where r is the log's ratio of cart to click events, so a backed-off item ranks below a
  real cart token that fits as well. An item with both shrinks one toward the other: its index row
  is ``w * cart row + (1 - w) * stand-in row`` with ``w = n / (n + shrink)``, n its cart events; one
  pseudo-event by default, so a cart vector learnt from one cart-add counts half and one learnt from
  20 counts 95%. Mixing the rows mixes the two log-probabilities (a weighted geometric mean of the
  two estimates). cosine and in-out scores of two interactions are not on one scale, so they do not
  back off targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from recs.columns import Col
from recs.config import NS_EXPONENT, IndexConfig
from recs.embeddings.model import EmbeddingModel
from recs.embeddings.similarity import normalized

DEFAULT_NS_EXPONENT = NS_EXPONENT  # the training default, for models whose manifest predates the field
# rows per block of target_side's float64 mix: 4096 x 200 temporaries (6.5 MB) stay in cache and are
# reused by the allocator; 65,536-row ones (105 MB each) were fresh pages on every block, 0.1-2.8 s on a
# shared machine against a steady 0.1 s (issue 23). The values do not depend on it (elementwise).
_BLOCK = 4_096
_OWN, _N_OWN, _ALT, _N_ALT, _ALT_INTERACTION = "_own", "_n_own", "_alt", "_n_alt", "_alt_interaction"


@dataclass(frozen=True)
class Side:
    """Rows of one side of a search: the item of each row and its vector (float32, C order)."""

    items: pl.Series
    vectors: np.ndarray
    backoff: int  # rows of items that have no token of the interaction and use their stand-in


def item_rows(model: EmbeddingModel, interaction: str, backoff: bool) -> pl.DataFrame:
    """One row per item that can take part as ``interaction``.

    Columns: item_id, _own / _n_own (its ``interaction`` token id and count, null if none), _alt /
    _n_alt / _alt_interaction (its stand-in; null without backoff or without another token). Items
    with an own token come first, in token-id order, then backed-off items in item order.
    """
    model.tokens_of(interaction)  # raises a ConfigError naming the interactions present
    vocab = model.vocab.select(Col.TOKEN_ID, Col.ITEM, Col.INTERACTION, Col.COUNT)
    own = (
        vocab.filter(pl.col(Col.INTERACTION) == interaction)
        .sort(Col.TOKEN_ID)
        .select(Col.ITEM, pl.col(Col.TOKEN_ID).alias(_OWN), pl.col(Col.COUNT).alias(_N_OWN))
    )
    if not backoff:
        return own.with_columns(pl.lit(None, pl.Int64).alias(_ALT), pl.lit(None, pl.Int64).alias(_N_ALT),
                                pl.lit(None, pl.String).alias(_ALT_INTERACTION))
    alt = (
        vocab.filter(pl.col(Col.INTERACTION) != interaction)
        .sort([Col.ITEM, Col.COUNT, Col.TOKEN_ID], descending=[False, True, False])
        .group_by(Col.ITEM, maintain_order=True)
        .first()
        .select(Col.ITEM, pl.col(Col.TOKEN_ID).alias(_ALT), pl.col(Col.COUNT).alias(_N_ALT),
                pl.col(Col.INTERACTION).alias(_ALT_INTERACTION))
    )
    with_own = own.join(alt, on=Col.ITEM, how="left", maintain_order="left")
    without = alt.join(own, on=Col.ITEM, how="anti").with_columns(
        pl.lit(None, pl.Int64).alias(_OWN), pl.lit(None, pl.Int64).alias(_N_OWN)
    )
    return pl.concat([with_own, without.select(with_own.columns)], how="vertical_relaxed")


def query_side(model: EmbeddingModel, source: str, cfg: IndexConfig) -> Side:
    """Query vectors of every item that can ask for candidates as ``source``."""
    rows = item_rows(model, source, cfg.backoff)
    token = rows[_OWN].fill_null(rows[_ALT]).to_numpy()
    if cfg.score == "prob":  # [u_p, 1], written in place: one copy of the rows, not three (hstack, astype)
        dim = model.vectors_in.shape[1]
        vectors = np.empty((len(token), dim + 1), dtype=np.float32)
        vectors[:, :dim] = model.vectors_in[token]
        vectors[:, dim] = 1.0
        return Side(rows[Col.ITEM], vectors, int(rows[_OWN].null_count()))
    u = model.vectors_in[token]
    vectors = normalized(u) if cfg.score == "cosine" else np.ascontiguousarray(u, dtype=np.float32)
    return Side(rows[Col.ITEM], vectors, int(rows[_OWN].null_count()))


def target_side(model: EmbeddingModel, target: str, cfg: IndexConfig) -> Side:
    """Index vectors of every item that can be a candidate as ``target``."""
    prob = cfg.score == "prob"
    rows = item_rows(model, target, cfg.backoff and prob)
    if not prob:
        ids = rows[_OWN].to_numpy()
        if cfg.score == "cosine":
            return Side(rows[Col.ITEM], normalized(model.vectors_in[ids]), 0)
        return Side(rows[Col.ITEM], np.ascontiguousarray(model.vectors_out[ids], dtype=np.float32), 0)
    a = ns_exponent(model)
    own, alt = rows[_OWN].fill_null(0).to_numpy(), rows[_ALT].fill_null(0).to_numpy()
    has_own, has_alt = rows[_OWN].is_not_null().to_numpy(), rows[_ALT].is_not_null().to_numpy()
    own_bias = a * np.log(np.maximum(rows[_N_OWN].fill_null(1).to_numpy().astype(np.float64), 1.0))
    alt_bias = a * np.log(rows[_N_ALT].fill_null(1).to_numpy().astype(np.float64)) + _log_rate(model, rows, target)
    n_own = rows[_N_OWN].fill_null(0).to_numpy().astype(np.float64)
    w = n_own / (n_own + cfg.shrink) if cfg.shrink > 0 else np.ones_like(n_own)
    w = np.where(has_alt, np.where(has_own, w, 0.0), 1.0)
    dim = model.vectors_out.shape[1]
    vectors = np.empty((rows.height, dim + 1), dtype=np.float32)
    for lo in range(0, rows.height, _BLOCK):  # blocks: no n x dim float64 temporaries at 10M items
        hi = min(rows.height, lo + _BLOCK)
        wb = w[lo:hi, None]
        vectors[lo:hi, :dim] = wb * model.vectors_out[own[lo:hi]] + (1.0 - wb) * model.vectors_out[alt[lo:hi]]
        vectors[lo:hi, dim] = w[lo:hi] * own_bias[lo:hi] + (1.0 - w[lo:hi]) * alt_bias[lo:hi]
    return Side(rows[Col.ITEM], vectors, int((~has_own).sum()))


def ns_exponent(model: EmbeddingModel) -> float:
    """The exponent a of the model's noise distribution, the weight of ``a log count`` in every prior
    of ``--score prob`` (known items, stand-ins, rolled-up groups, the popular fallback)."""
    return float(model.manifest.get("config", {}).get("ns_exponent", DEFAULT_NS_EXPONENT))


def _log_rate(model: EmbeddingModel, rows: pl.DataFrame, target: str) -> np.ndarray:
    """Per row: log(events of ``target`` / events of the stand-in's interaction); 0 without a stand-in."""
    totals = model.vocab.group_by(Col.INTERACTION).agg(pl.col(Col.COUNT).sum().cast(pl.Float64).alias("_n"))
    n_target = float(totals.filter(pl.col(Col.INTERACTION) == target)["_n"].sum())
    return (
        rows.select(pl.col(_ALT_INTERACTION).alias(Col.INTERACTION))
        .join(totals, on=Col.INTERACTION, how="left", maintain_order="left")
        .select((n_target / pl.col("_n")).log().fill_null(0.0))
        .to_series()
        .to_numpy()
    )
