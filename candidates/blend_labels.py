"""Graded labels of the blend's ranker, from the validation window (``recs.candidates.blend``).

A *trigger* is the first ``source``-interaction event of an item in a validation session; its group
is that (session, trigger item). Every item the session touches *after* the trigger gets the grade of
the strongest thing that happened to it, as eBay's similar-item ranker grades relevance (purchase
above add-to-cart above click), with the pair's own target interaction on top, because that is what
the candidate set is scored on:

    4  the pair's target interaction (cart, for Click-to-Cart)
    3  purchase            2  cart            1  any other interaction (click, favorite, ...)
    0  nothing after the trigger (every other candidate of the group)

Only events after the trigger count, and only in the same session, as in the hit rate
(``recs.eval.hitrate``): a session's later carts are the targets its earlier clicks trigger. The
trigger item itself is never its own label. Everything is polars expressions over the events; no
loop over sessions.
"""

from __future__ import annotations

import polars as pl

from recs.columns import Col, Interaction

GROUP = "_group"  # dense id of a (session, trigger item) group
LABEL = "label"
GRADES: tuple[tuple[str, int], ...] = ((Interaction.PURCHASE, 3), (Interaction.CART, 2))
TARGET_GRADE, OTHER_GRADE = 4, 1


def grade(target: str) -> pl.Expr:
    """The grade of one event for a pair whose target interaction is ``target``."""
    expr = pl.when(pl.col(Col.INTERACTION) == target).then(pl.lit(TARGET_GRADE))
    for name, value in GRADES:
        expr = expr.when(pl.col(Col.INTERACTION) == name).then(pl.lit(value))
    return expr.otherwise(pl.lit(OTHER_GRADE)).cast(pl.Int8)


def trigger_groups(valid: pl.DataFrame, source: str) -> pl.DataFrame:
    """One row per (session, trigger item): the first ``source`` event of the item in the session.

    Columns: _group (0..n-1, by session then position), session_id, item_id, pos. Events are put in
    time order, ties by input row, as everywhere in recs."""
    events = _ordered(valid)
    return (
        events.filter(pl.col(Col.INTERACTION) == source)
        .group_by(Col.SESSION, Col.ITEM)
        .agg(pl.col(Col.POS).min())
        .sort(Col.SESSION, Col.POS)
        .with_row_index(GROUP)
        .with_columns(pl.col(GROUP).cast(pl.UInt32))
    )


def group_labels(valid: pl.DataFrame, groups: pl.DataFrame, target: str) -> pl.DataFrame:
    """(_group, candidate_item_id, label) for every item a group's session touched after its trigger,
    label > 0; a candidate absent here has label 0."""
    events = _ordered(valid).select(Col.SESSION, pl.col(Col.ITEM).alias(Col.CANDIDATE), pl.col(Col.POS).alias("_p"),
                                    grade(target).alias(LABEL))
    return (
        groups.select(GROUP, Col.SESSION, Col.ITEM, Col.POS)
        .join(events, on=Col.SESSION)
        .filter((pl.col("_p") > pl.col(Col.POS)) & (pl.col(Col.CANDIDATE) != pl.col(Col.ITEM)))
        .group_by(GROUP, Col.CANDIDATE)
        .agg(pl.col(LABEL).max())
        .sort(GROUP, Col.CANDIDATE)
    )


def _ordered(valid: pl.DataFrame) -> pl.DataFrame:
    return (
        valid.select(Col.SESSION, Col.ITEM, Col.INTERACTION, Col.TIMESTAMP)
        .with_row_index("_row")
        .sort(Col.SESSION, Col.TIMESTAMP, "_row")
        .with_columns(pl.int_range(pl.len()).over(Col.SESSION).alias(Col.POS))
        .drop("_row")
    )
