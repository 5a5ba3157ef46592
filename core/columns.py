"""The one vocabulary of column names and canonical interactions.

Every frame that crosses a module boundary uses these names, so a rename happens here and nowhere
else (the pattern of RecTools' ``columns.py``).
"""

from __future__ import annotations

from typing import Final


class Col:
    """Column names of the canonical tables."""

    # canonical sessions
    SESSION: Final = "session_id"
    ITEM: Final = "item_id"
    INTERACTION: Final = "interaction"
    TIMESTAMP: Final = "timestamp"
    USER: Final = "user_id"
    CATEGORY: Final = "category"
    SHOP: Final = "shop_id"
    LISTED_AT: Final = "listed_at"  # a catalogue's listing time: newer listings first among equal scores

    # derived
    POS: Final = "pos"  # 0-based position of an event inside its session, in time order
    TOKEN: Final = "token"  # human-readable "item:interaction"
    TOKEN_ID: Final = "token_id"  # dense int id of a token; row index into the vector arrays
    COUNT: Final = "count"

    # candidate sets
    CANDIDATE: Final = "candidate_item_id"
    RANK: Final = "rank"
    SCORE: Final = "score"
    # with a roll-up (recs.candidates.rollup): where the query and the candidate's vector came from
    QUERY_LEVEL: Final = "query_level"
    CANDIDATE_LEVEL: Final = "candidate_level"

    REQUIRED: Final = (SESSION, ITEM, INTERACTION, TIMESTAMP)
    OPTIONAL: Final = (USER, CATEGORY, SHOP)


class Interaction:
    """Canonical interaction names. Any other string is allowed and kept as it is."""

    CLICK: Final = "click"
    FAVORITE: Final = "favorite"
    CART: Final = "cart"
    PURCHASE: Final = "purchase"

    CANONICAL: Final = (CLICK, FAVORITE, CART, PURCHASE)


class Level:
    """The cold-start fallback chain, in order (``recs.candidates.rollup``): an item's own vector
    (or its stand-in of another interaction), its shop's, its category's, and, for a query with none of
    these, the most frequent items of the target interaction."""

    ITEM: Final = "item"
    SHOP: Final = "shop"
    CATEGORY: Final = "category"
    POPULAR: Final = "popular"

    CHAIN: Final = (ITEM, SHOP, CATEGORY, POPULAR)
    GROUP_COLUMNS: Final = {SHOP: Col.SHOP, CATEGORY: Col.CATEGORY}  # a group level -> its catalogue column


TOKEN_SEPARATOR: Final = ":"
