"""The item table a model keeps beside its vectors: each item's shop and category, and its event count.

Cold-start roll-up (``recs.candidates``) files an item under its shop or category. Without a
catalogue the only place that knows an item's group is the training sessions, which ``build-index``
no longer reads; so training keeps this small table (one row per item of the sessions, below
``--min-count`` too) in ``MODEL_DIR/items.parquet`` whenever the sessions have ``shop_id`` and/or
``category``. An item that moved shop or was re-categorised takes its *last* non-null value in time
order, the listing as it stands now; ``count`` is all its events. The roll-up reads only the group
columns: listings that share one group vector are ordered by a catalogue's ``listed_at``, then id
(``recs.candidates.rollup``), never by this count.
"""

from __future__ import annotations

import polars as pl

from recs.columns import Col

ITEMS_FILE = "items.parquet"
GROUP_COLUMNS: tuple[str, ...] = (Col.SHOP, Col.CATEGORY)  # the columns an item table may hold, in this order


def item_table(sessions: pl.DataFrame) -> pl.DataFrame | None:
    """item_id, the group columns the sessions have (shop_id, category), count; None when they have neither.

    Sorted by item_id, so the same sessions give the same bytes. The sort by time is stable, so events
    at one instant keep the sessions' order (that of the log).
    """
    groups = [c for c in GROUP_COLUMNS if c in sessions.columns]
    if not groups:
        return None
    return (
        sessions.select(Col.ITEM, Col.TIMESTAMP, *groups)
        .sort(Col.TIMESTAMP, maintain_order=True)
        .group_by(Col.ITEM)
        .agg(*(pl.col(c).drop_nulls().last() for c in groups), pl.len().cast(pl.Int64).alias(Col.COUNT))
        .sort(Col.ITEM)
    )
