"""Item-interaction tokens: every event becomes the token ``item:interaction``.

The vocabulary (token table) is the one external<->internal id map of the model: ``token_id`` is a
dense int that indexes the vector arrays, and each row carries ``item_id`` (original type) and
``interaction``. Ids are assigned by descending count with (interaction, item_id) breaking ties, so
the same sessions always give the same vocabulary, whatever the thread count.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from recs.columns import TOKEN_SEPARATOR, Col


@dataclass(frozen=True)
class Tokenized:
    """A vocabulary and the sessions rewritten as token-id sequences."""

    vocab: pl.DataFrame  # token_id, token, item_id, interaction, count  (sorted by token_id)
    sequences: pl.DataFrame  # session_id, pos, token_id  (sorted by session, pos; in-vocabulary only)
    n_events: int
    n_sessions: int
    n_items: int  # distinct items in the sessions, before min_count


def token_strings(item: pl.Expr, interaction: pl.Expr) -> pl.Expr:
    """The human-readable token, e.g. ``42:cart``."""
    return pl.concat_str([item.cast(pl.String), pl.lit(TOKEN_SEPARATOR), interaction])


def vocabulary(counts: pl.DataFrame, min_count: int = 1) -> pl.DataFrame:
    """The token table from (item_id, interaction, count) rows, one per token, in any order.

    The one rule of token ids, shared by both engines (``--engine spark`` counts on Spark and ranks
    the counted table here, on the machine that trains, which holds the vocabulary anyway).
    """
    return (
        counts.with_columns(pl.col(Col.COUNT).cast(pl.Int64))
        .filter(pl.col(Col.COUNT) >= min_count)
        .sort([Col.COUNT, Col.INTERACTION, Col.ITEM], descending=[True, False, False])
        .with_row_index(Col.TOKEN_ID)
        .select(
            pl.col(Col.TOKEN_ID).cast(pl.Int32),
            token_strings(pl.col(Col.ITEM), pl.col(Col.INTERACTION)).alias(Col.TOKEN),
            Col.ITEM,
            Col.INTERACTION,
            Col.COUNT,
        )
    )


def tokenize(sessions: pl.DataFrame, min_count: int = 1) -> Tokenized:
    """Turn validated, time-sorted sessions into a vocabulary and token-id sequences.

    Tokens seen fewer than ``min_count`` times are left out of the vocabulary and out of the
    sequences, as gensim would skip them; counts always come from the sessions.
    """
    vocab = vocabulary(sessions.group_by(Col.ITEM, Col.INTERACTION).agg(pl.len().alias(Col.COUNT)), min_count)
    sequences = (
        sessions.select(Col.SESSION, Col.ITEM, Col.INTERACTION)
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int32).over(Col.SESSION).alias(Col.POS))
        .join(vocab.select(Col.ITEM, Col.INTERACTION, Col.TOKEN_ID), on=[Col.ITEM, Col.INTERACTION], how="inner")
        .select(Col.SESSION, Col.POS, Col.TOKEN_ID)
        .sort([Col.SESSION, Col.POS])
    )
    return Tokenized(
        vocab=vocab,
        sequences=sequences,
        n_events=sessions.height,
        n_sessions=sessions[Col.SESSION].n_unique(),
        n_items=sessions[Col.ITEM].n_unique(),
    )
