"""``recs stats``: what a practitioner checks in a sessions table before training on it.

Each number answers a question that decides whether training is worth it: enough carts and
purchases per click for the cart vectors to learn anything (events per interaction, funnel)? Items
seen once cannot get a useful vector (one-of-a-kind share)? Sessions of length 1 teach skip-gram
nothing (length distribution)? Gaps or spikes in time (events per day)? And the share of carts
and purchases whose item was clicked earlier in the session says how much of the Click-to-Cart
signal is "same item again" rather than a new item worth recommending.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from recs.columns import Col, Interaction
from recs.config import DEFAULT_TIME_ZONE, check_time_zone

LENGTH_BREAKS = (1, 2, 3, 5, 10, 20, 50, 100)
LENGTH_LABELS = ("1", "2", "3", "4-5", "6-10", "11-20", "21-50", "51-100", "101+")
_IDX = "_idx"


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _in_zone(t: datetime | None, tz: str) -> str | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(ZoneInfo(tz)).isoformat()


def session_stats(sessions: pl.DataFrame | pl.LazyFrame, tz: str = DEFAULT_TIME_ZONE) -> dict[str, Any]:
    """Summary of a canonical sessions table (as from ``read_sessions``); ``tz`` sets the day boundaries.

    ``tz`` is an IANA time-zone name (``Asia/Shanghai``); another name is a ConfigError.

    Expects rows ordered by session and time, which ``read_sessions`` guarantees; "earlier in the
    session" means an earlier row of that session. Rates with nothing to divide by are ``None``.
    """
    check_time_zone(tz)
    lf = sessions.lazy().with_row_index(_IDX)
    schema = lf.collect_schema()
    s, i, a, t = (pl.col(c) for c in (Col.SESSION, Col.ITEM, Col.INTERACTION, Col.TIMESTAMP))

    overview = [
        pl.len().alias("events"),
        s.n_unique().alias("sessions"),
        i.n_unique().alias("items"),
        t.min().alias("first"),
        t.max().alias("last"),
    ]
    if Col.USER in schema:
        overview.append(pl.col(Col.USER).n_unique().alias("users"))
    head = lf.select(overview).collect().row(0, named=True)
    events = head["events"]

    per_inter = lf.group_by(Col.INTERACTION).len().sort(["len", Col.INTERACTION], descending=[True, False]).collect()
    interactions = dict(zip(per_inter[Col.INTERACTION].to_list(), per_inter["len"].to_list(), strict=True))

    item_counts = lf.group_by(Col.ITEM).len()
    once = item_counts.filter(pl.col("len") == 1).select(pl.len()).collect().item()

    per_session = lf.group_by(Col.SESSION).agg(
        pl.len().alias("n"),
        (a == Interaction.CLICK).any().alias("click"),
        (a == Interaction.CART).any().alias("cart"),
        (a == Interaction.PURCHASE).any().alias("purchase"),
    )
    lengths = per_session.select(
        pl.col("n").min().alias("min"),
        pl.col("n").median().alias("median"),
        pl.col("n").mean().alias("mean"),
        pl.col("n").quantile(0.9, "nearest").alias("p90"),
        pl.col("n").max().alias("max"),
        (pl.col("n") == 1).sum().alias("single_event_sessions"),
    ).collect().row(0, named=True)
    bucket = pl.when(pl.col("n") <= LENGTH_BREAKS[0]).then(pl.lit(LENGTH_LABELS[0]))
    for upper, label in zip(LENGTH_BREAKS[1:], LENGTH_LABELS[1:], strict=False):
        bucket = bucket.when(pl.col("n") <= upper).then(pl.lit(label))
    hist = (
        per_session.select(bucket.otherwise(pl.lit(LENGTH_LABELS[-1])).alias("length"))
        .group_by("length")
        .len()
        .collect()
    )
    hist_map = dict(zip(hist["length"].to_list(), hist["len"].to_list(), strict=True))
    lengths["histogram"] = [{"length": lab, "sessions": hist_map.get(lab, 0)} for lab in LENGTH_LABELS]

    funnel_row = per_session.select(
        pl.col("click").sum().alias("sessions_with_click"),
        pl.col("cart").sum().alias("sessions_with_cart"),
        pl.col("purchase").sum().alias("sessions_with_purchase"),
        (pl.col("click") & pl.col("cart")).sum().alias("_click_cart"),
        (pl.col("cart") & pl.col("purchase")).sum().alias("_cart_purchase"),
        (pl.col("click") & pl.col("purchase")).sum().alias("_click_purchase"),
    ).collect().row(0, named=True)
    n_click = interactions.get(Interaction.CLICK, 0)
    n_cart = interactions.get(Interaction.CART, 0)
    n_buy = interactions.get(Interaction.PURCHASE, 0)
    funnel = {
        k: v for k, v in funnel_row.items() if not k.startswith("_")
    } | {
        "click_to_cart": _rate(funnel_row["_click_cart"], funnel_row["sessions_with_click"]),
        "cart_to_purchase": _rate(funnel_row["_cart_purchase"], funnel_row["sessions_with_cart"]),
        "click_to_purchase": _rate(funnel_row["_click_purchase"], funnel_row["sessions_with_click"]),
        "carts_per_click": _rate(n_cart, n_click),
        "purchases_per_cart": _rate(n_buy, n_cart),
    }

    # For each (session, item): the row of its first click; a cart or purchase row after it was clicked before.
    first_click = (
        lf.filter(a == Interaction.CLICK)
        .group_by(Col.SESSION, Col.ITEM)
        .agg(pl.col(_IDX).min().alias("_first_click"))
    )
    before = (
        lf.filter(a.is_in([Interaction.CART, Interaction.PURCHASE]))
        .join(first_click, on=[Col.SESSION, Col.ITEM], how="left")
        .group_by(Col.INTERACTION)
        .agg(pl.len().alias("events"), (pl.col("_first_click") < pl.col(_IDX)).fill_null(False).sum().alias("hit"))
        .collect()
    )
    clicked_before: dict[str, Any] = {}
    for name in (Interaction.CART, Interaction.PURCHASE):
        row = before.filter(pl.col(Col.INTERACTION) == name)
        total = int(row["events"].sum()) if row.height else 0
        hit = int(row["hit"].sum()) if row.height else 0
        clicked_before[name] = {"events": total, "clicked_before": hit, "share": _rate(hit, total)}

    per_day = (
        lf.group_by(t.dt.convert_time_zone(tz).dt.date().alias("day"))
        .len()
        .sort("day")
        .collect()
    )
    return {
        "events": events,
        "interactions": interactions,
        "sessions": head["sessions"],
        "users": head.get("users"),
        "items": head["items"],
        "items_seen_once": once,
        "items_seen_once_share": _rate(once, head["items"]),
        "events_per_session": _rate(events, head["sessions"]),
        "session_length": lengths,
        "time_zone": tz,
        "first_event": head["first"].isoformat() if head["first"] is not None else None,
        "last_event": head["last"].isoformat() if head["last"] is not None else None,
        # the same two instants in ``tz``, the zone of the day buckets
        "first_event_local": _in_zone(head["first"], tz),
        "last_event_local": _in_zone(head["last"], tz),
        "events_per_day": [
            {"day": d.isoformat(), "events": n} for d, n in zip(per_day["day"], per_day["len"], strict=True)
        ],
        "funnel": funnel,
        "clicked_before": clicked_before,
    }
