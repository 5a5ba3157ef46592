"""The built-in log formats: which source column is which field, and what each raw event name means.

``Format`` describes one kind of log; ``BUILTINS`` holds the ones recs knows by name. Telling which
format a file is in lives in ``recs.sessions.detect``, reading a file as a format in
``recs.sessions.scan``, and parsing and tagging its values in ``recs.sessions.parse``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recs.columns import Col, Interaction
from recs.config import AUTO
from recs.errors import ConfigError

# Internal field names, also the left-hand side of ``--col FIELD=SOURCE_COLUMN``.
FIELDS = ("session", "user", "item", "event", "time", "category", "shop")
FIELD_ALIASES = {
    "session_id": "session",
    "user_id": "user",
    "item_id": "item",
    "interaction": "event",
    "event_type": "event",
    "timestamp": "time",
    "category_id": "category",
    "shop_id": "shop",
}
ID_FIELDS = ("session", "user", "item", "category", "shop")
CANONICAL_OF = {
    "session": Col.SESSION,
    "user": Col.USER,
    "item": Col.ITEM,
    "event": Col.INTERACTION,
    "time": Col.TIMESTAMP,
    "category": Col.CATEGORY,
    "shop": Col.SHOP,
}
LINE = "_line"
FILE = "_file"

# Raw event names seen in public logs, lower-cased, and what they mean. ``None``: a known event that
# is not an interaction with an item we learn from (dropped and counted, or kept with a flag).
EVENT_SYNONYMS: dict[str, str | None] = {
    "click": Interaction.CLICK,
    "clicks": Interaction.CLICK,
    "pv": Interaction.CLICK,
    "view": Interaction.CLICK,
    "views": Interaction.CLICK,
    "detail": Interaction.CLICK,
    "favorite": Interaction.FAVORITE,
    "favourite": Interaction.FAVORITE,
    "fav": Interaction.FAVORITE,
    "wishlist": Interaction.FAVORITE,
    "cart": Interaction.CART,
    "carts": Interaction.CART,
    "addtocart": Interaction.CART,
    "add_to_cart": Interaction.CART,
    "purchase": Interaction.PURCHASE,
    "purchases": Interaction.PURCHASE,
    "buy": Interaction.PURCHASE,
    "order": Interaction.PURCHASE,
    "orders": Interaction.PURCHASE,
    "transaction": Interaction.PURCHASE,
    "remove_from_cart": None,
}

@dataclass(frozen=True)
class Format:
    """How to read one kind of log: file layout, which source column is which field, event names."""

    name: str
    layout: str  # "csv", "otto" (session-per-line JSON), "ndjson", "parquet"
    columns: dict[str, str]  # field -> source column
    events: dict[str, str | None]  # raw event (lower case) -> canonical interaction, None = drop
    time_unit: str = AUTO  # unit of integer timestamps
    header: bool = True
    names: tuple[str, ...] = ()  # column names of a headerless CSV
    separator: str = ","
    describe: str = ""
    notes: dict[str, str] = field(default_factory=dict)


BUILTINS: dict[str, Format] = {
    "otto": Format(
        name="otto",
        layout="otto",
        columns={"session": "session", "item": "aid", "time": "ts", "event": "type"},
        events={"clicks": Interaction.CLICK, "carts": Interaction.CART, "orders": Interaction.PURCHASE},
        time_unit="ms",
        describe="OTTO JSONL: one session per line, events aid/ts (ms)/type clicks|carts|orders",
    ),
    "taobao": Format(
        name="taobao",
        layout="csv",
        columns={"user": "user_id", "item": "item_id", "category": "category_id", "event": "behavior_type",
                 "time": "timestamp"},
        events={"pv": Interaction.CLICK, "fav": Interaction.FAVORITE, "cart": Interaction.CART,
                "buy": Interaction.PURCHASE},
        time_unit="s",
        header=False,
        names=("user_id", "item_id", "category_id", "behavior_type", "timestamp"),
        describe="Taobao/Tianchi UserBehavior CSV without header: user_id,item_id,category_id,pv|fav|cart|buy,unix s",
    ),
    "rees46": Format(
        name="rees46",
        layout="csv",
        columns={"session": "user_session", "user": "user_id", "item": "product_id", "category": "category_id",
                 "event": "event_type", "time": "event_time"},
        events={"view": Interaction.CLICK, "cart": Interaction.CART, "purchase": Interaction.PURCHASE,
                "remove_from_cart": None},
        describe="REES46 multi-category store CSV: event_time,event_type,product_id,...,user_id,user_session",
    ),
    "retailrocket": Format(
        name="retailrocket",
        layout="csv",
        columns={"user": "visitorid", "item": "itemid", "event": "event", "time": "timestamp"},
        events={"view": Interaction.CLICK, "addtocart": Interaction.CART, "transaction": Interaction.PURCHASE},
        time_unit="ms",
        describe="RetailRocket events.csv: timestamp (ms),visitorid,event view|addtocart|transaction,itemid,...",
    ),
}
FORMAT_NAMES = (AUTO, *BUILTINS, "generic")


def normalise_field(name: str) -> str:
    key = name.strip().lower()
    key = FIELD_ALIASES.get(key, key)
    if key not in FIELDS:
        raise ConfigError(
            f"--col {name}=...: unknown field {name!r}; fields are {', '.join(FIELDS)} (or {', '.join(FIELD_ALIASES)})"
        )
    return key
