"""What the baselines share: the one interaction name of item-only methods, and a clear error for a
missing optional library."""

from __future__ import annotations

from typing import Final

import polars as pl

from recs.columns import Col
from recs.errors import ConfigError

ITEM_ONLY: Final = "item"
"""The single interaction every event is renamed to when a method must ignore interactions."""


class OptionalDependencyError(ConfigError):
    """A method needs a library that is an optional extra (``pip install 'recs[compare]'``)."""


def item_only(sessions: pl.DataFrame) -> pl.DataFrame:
    """The same events with the interaction erased: every event becomes ``item_id:item``.

    Events are kept one for one (a click and the cart-add of the same item become two ``42:item``
    tokens), so an item-only model sees exactly the corpus the interaction model sees, with the same
    length, window and epoch budget: the comparison isolates the interaction, nothing else.
    """
    return sessions.with_columns(pl.lit(ITEM_ONLY).alias(Col.INTERACTION))


def basket_column(sessions: pl.DataFrame) -> str:
    """The column that groups events into one 'user' for MF and co-purchase: user_id when the log
    has it (the paper's user x item matrix), else session_id."""
    return Col.USER if Col.USER in sessions.columns and sessions[Col.USER].null_count() == 0 else Col.SESSION
