"""Cut a user's event stream into sessions at inactivity gaps, and collapse immediate repeats.

Raw logs from Taobao or RetailRocket have users but no sessions, while the embedding model learns
from sessions: a short burst of browsing with one intent. The common convention (and the one Etsy
and most session-based papers use) is an inactivity gap: a user's next event more than ``gap``
after the previous one starts a new session. Everything here is a polars expression over a frame
sorted by (user, time), so it runs in the lazy engine without Python loops over rows.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from recs.columns import Col
from recs.config import DEFAULT_GAP, parse_duration  # the --gap parser, with the other option checks


def sessionize(
    lf: pl.LazyFrame,
    gap: str | int | float | timedelta = DEFAULT_GAP,
    key: str = Col.USER,
    tiebreak: tuple[str, ...] = (),
) -> pl.LazyFrame:
    """Assign ``session_id = "<key>-<n>"`` by cutting each ``key``'s events at gaps longer than ``gap``.

    The frame is sorted by (key, timestamp, *tiebreak) and keeps that order. ``n`` counts a key's
    sessions from 1 in time order, so ids are deterministic and say whose session it is; they do
    not depend on which other users are in the file. A gap exactly equal to ``gap`` stays inside
    the session (the cut is at strictly longer gaps).
    """
    limit = parse_duration(gap)
    k, t = pl.col(key), pl.col(Col.TIMESTAMP)
    first_of_key = (k != k.shift(1)).fill_null(True)
    new_session = first_of_key | ((t - t.shift(1)) > pl.lit(limit)).fill_null(True)
    seq = new_session.cast(pl.UInt32).cum_sum()
    start = pl.when(first_of_key).then(seq).otherwise(None).forward_fill()
    n = seq - start + 1
    return (
        lf.sort([key, Col.TIMESTAMP, *tiebreak], maintain_order=True)
        .with_columns(pl.concat_str([k.cast(pl.String), pl.lit("-"), n.cast(pl.String)]).alias(Col.SESSION))
    )


def dedupe_mask(session: str = Col.SESSION) -> pl.Expr:
    """True for an event that repeats the previous event of its session (same item, same interaction).

    Expects a frame sorted by (session, time). Reloading a product page or double-clicking "add to
    cart" logs the same token twice in a row; for skip-gram training that is noise, not signal.
    Only *immediate* repeats go: click A, click B, click A keeps all three.
    """
    same = [pl.col(c) == pl.col(c).shift(1) for c in (session, Col.ITEM, Col.INTERACTION)]
    return pl.all_horizontal(same).fill_null(False)
