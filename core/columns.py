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

    # derived
    POS: Final = "pos"  # 0-based position of an event inside its session, in time order
    TOKEN: Final = "token"  # human-readable "item:interaction"
    TOKEN_ID: Final = "token_id"  # dense int id of a token; row index into the vector arrays
    COUNT: Final = "count"

    # candidate sets
    CANDIDATE: Final = "candidate_item_id"
    RANK: Final = "rank"
    SCORE: Final = "score"

    REQUIRED: Final = (SESSION, ITEM, INTERACTION, TIMESTAMP)
    OPTIONAL: Final = (USER, CATEGORY, SHOP)


class Interaction:
    """Canonical interaction names. Any other string is allowed and kept as it is."""

    CLICK: Final = "click"
    FAVORITE: Final = "favorite"
    CART: Final = "cart"
    PURCHASE: Final = "purchase"

    CANONICAL: Final = (CLICK, FAVORITE, CART, PURCHASE)


TOKEN_SEPARATOR: Final = ":"
