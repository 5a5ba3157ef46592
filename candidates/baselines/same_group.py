"""Same-shop and same-category candidates: the paper's cart-page control (sec. 5.4), as a method.

The paper's second online test compares the treatment (the last carted item's ``purchase``
candidates) with a control that learns nothing: "items that come from the same shop as the last item
added to the shopping cart". This generator writes that control as an ordinary item-level index, so
``recs eval-recommend`` can replay the experiment and ``compare`` and the blend can use it like any
other method.

For each item, its list is the *other* items of its group (``shop_id`` for ``same-shop``,
``category`` for ``same-category``), best first, at most k. Every member of a group is ranked by one
rule, the same for every query item of the group (a shop's page shows the shop's best sellers, not
something tuned to the item):

1. carts + purchases of the candidate in TRAIN (purchase intent, what the hit rate counts), more first;
2. then its other events (clicks, favorites, any other interaction), more first;
3. then recency: its latest event in TRAIN, later first;
4. then the candidate id, smaller first (so the same log always gives the same lists).

``score`` = carts + purchases + other / (other + 1): rules 1 and 2 in one non-increasing number (the
fraction stays below 1, so it never overtakes a cart); rules 3 and 4 only break its ties.

Where the groups come from. Without a catalogue, each item's group is the one of its most recent
event in TRAIN that names one (an item that moved shop is filed under its current shop); a log without
the column is refused naming it. With a catalogue (``build-index --catalog``, ``recs.candidates.catalog``)
the catalogue's group wins, and items of TRAIN it does not list keep the sessions' group. A listing
of the catalogue with no event in TRAIN gets its group's list like any member (the point of a
catalogue: a shop's new listing is shown the shop's best sellers) and is a candidate in its group's
lists too, ranked after every member with events (no carts, no clicks, no recency), among such
listings by id; so it is shown only where its group has fewer than k members with events.
An item without a group (null) gets no list and is in none; a group of one item gives an empty list.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl

from recs.candidates.base import CandidateGenerator
from recs.candidates.catalog import catalog_for
from recs.columns import Col, Interaction
from recs.errors import InputError

INTENT: tuple[str, ...] = (Interaction.CART, Interaction.PURCHASE)  # rule 1 of the ranking
_GROUP, _INTENT, _OTHER, _LAST, _MEMBER, _OWN = "_group", "_intent", "_other", "_last", "_member", "_own"
_BLOCK_ITEMS = 32_768  # query items per answered block: a block is at most this x (k + 1) rows


@dataclass
class SameGroupCandidates(CandidateGenerator):
    """The other items of an item's shop (or category), by carts + purchases, other events, recency, id."""

    column: str = Col.SHOP  # the group column: Col.SHOP (same-shop) or Col.CATEGORY (same-category)
    name: str = "same-shop"
    interaction_aware: bool = False
    # a checked catalogue frame (``read_catalog``): its groups win, its listings without events get lists
    catalog: pl.DataFrame | None = field(default=None, repr=False)
    _members: pl.DataFrame | None = field(default=None, repr=False)  # _group, candidate, _member, score; ranked
    _queries: pl.DataFrame | None = field(default=None, repr=False)  # item_id, _group, _own; sorted by group

    def _reset(self) -> None:
        self._members = self._queries = None

    def _fit(self, train: pl.DataFrame) -> None:
        groups = self._groups(train)
        stats = train.group_by(Col.ITEM).agg(
            pl.col(Col.INTERACTION).is_in(list(INTENT)).sum().cast(pl.Int64).alias(_INTENT),
            (~pl.col(Col.INTERACTION).is_in(list(INTENT))).sum().cast(pl.Int64).alias(_OTHER),
            pl.col(Col.TIMESTAMP).max().alias(_LAST),
        )
        ranked = (
            groups.join(stats, on=Col.ITEM, how="left")
            .with_columns(pl.col(_INTENT, _OTHER).fill_null(0))
            .sort([_GROUP, _INTENT, _OTHER, _LAST, Col.ITEM], descending=[False, True, True, True, False],
                  nulls_last=True)
            .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(_GROUP).alias(_MEMBER))
        )
        self._members = ranked.select(
            _GROUP, pl.col(Col.ITEM).alias(Col.CANDIDATE), _MEMBER,
            (pl.col(_INTENT) + pl.col(_OTHER) / (pl.col(_OTHER) + 1)).cast(pl.Float32).alias(Col.SCORE),
        )
        self._queries = ranked.select(Col.ITEM, _GROUP, pl.col(_MEMBER).alias(_OWN))

    def _groups(self, train: pl.DataFrame) -> pl.DataFrame:
        """``item_id, _group``: one row per item that has a group (see the module docstring), or an
        InputError naming the column when neither the sessions nor the catalogue have it."""
        col, where = self.column, f"{self.name}: the training sessions"
        from_sessions = None
        if col in train.columns:
            from_sessions = (
                train.filter(pl.col(col).is_not_null())
                .group_by(Col.ITEM)
                .agg(pl.col(col).sort_by(Col.TIMESTAMP, maintain_order=True).last().alias(_GROUP))
            )
        if self.catalog is None:
            if from_sessions is None:
                raise InputError(f"{where} have no {col!r} column ({', '.join(train.columns)}); {self.name} "
                                 f"needs each item's {col}: give sessions with it, or a catalogue (--catalog)")
            if from_sessions.height == 0:
                raise InputError(f"{where}: every value of {col!r} is empty (null); "
                                 f"{self.name} needs each item's {col}")
            return from_sessions
        catalog = self._catalog(train)
        if from_sessions is not None and catalog.schema[_GROUP] != from_sessions.schema[_GROUP]:
            # text shop ids in one, integers in the other: compared as text, they still match
            catalog, from_sessions = (f.with_columns(pl.col(_GROUP).cast(pl.String)) for f in (catalog, from_sessions))
        if from_sessions is not None:
            catalog = pl.concat([catalog, from_sessions.join(catalog, on=Col.ITEM, how="anti")])
        return catalog

    def _catalog(self, train: pl.DataFrame) -> pl.DataFrame:
        """The catalogue's ``item_id, _group`` rows that name a group, its ids typed as TRAIN's."""
        assert self.catalog is not None
        where = f"{self.name}: the catalogue"
        if self.catalog.height == 0:
            raise InputError(f"{where} has no rows; {self.name} needs the items of each {self.column}")
        if self.column not in self.catalog.columns:
            raise InputError(f"{where} has no {self.column!r} column ({', '.join(self.catalog.columns)}); "
                             f"{self.name} needs each item's {self.column}")
        typed = catalog_for(None, self.catalog, train.schema[Col.ITEM], where)
        assert typed is not None
        return typed.select(Col.ITEM, pl.col(self.column).alias(_GROUP)).filter(pl.col(_GROUP).is_not_null())

    def _candidate_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        assert self._members is not None and self._queries is not None  # fitted: the base class checked
        # the first k + 1 members of a group hold the best k other than any one of them
        top = self._members.filter(pl.col(_MEMBER) <= k + 1)
        for start in range(0, max(self._queries.height, 1), _BLOCK_ITEMS):
            queries = self._queries.slice(start, _BLOCK_ITEMS)
            yield (
                queries.join(top, on=_GROUP, how="inner")
                .filter(pl.col(Col.CANDIDATE) != pl.col(Col.ITEM))
                # members after the item itself move up one place
                .with_columns((pl.col(_MEMBER) - (pl.col(_MEMBER) > pl.col(_OWN)).cast(pl.Int64))
                              .cast(pl.Int32).alias(Col.RANK))
                .filter(pl.col(Col.RANK) <= k)
                .sort(Col.ITEM, Col.RANK)
                .select(Col.ITEM, Col.CANDIDATE, Col.RANK, Col.SCORE)
            )


__all__ = ["INTENT", "SameGroupCandidates"]
