"""Pass 1 of ``recs prepare``: map event names, parse times, and tag each row that cannot be used.

Nothing is dropped here: every row keeps its file and line and gets a reason (null when fine), so
that ``recs.sessions.prepare`` can count each drop, name the first bad row, and stop or go on as
``--on-error`` says.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from recs.columns import Col, Interaction
from recs.instants import EARLIEST_INSTANT, LATEST_INSTANT
from recs.sessions import times
from recs.sessions.formats import FIELDS, FILE, LINE, Format
from recs.sessions.io import datetime_to_utc

REASON, DETAIL = "_reason", "_detail"
RAW_EVENT = "_raw_event"  # the raw event name as read (lower-cased, trimmed): what `prepare` says it mapped

# Reasons a row cannot be used. The first six are errors (``--on-error`` decides); the last two
# are expected in real logs and are always dropped and counted.
MISSING_ITEM = "missing item"
MISSING_TIME = "missing time"
BAD_TIME = "unparsable time"
TIME_RANGE = "time out of range"  # an integer time outside 1990..2100 in --time-unit (recs.sessions.times)
MISSING_KEY = "missing session/user"
UNKNOWN_EVENT = "unknown event"
UNMAPPED_EVENT = "unmapped event"
BLANK_LINE = "blank line"
ERROR_REASONS = (MISSING_ITEM, MISSING_TIME, BAD_TIME, TIME_RANGE, MISSING_KEY, UNKNOWN_EVENT)
_REASON_FIELD = {MISSING_ITEM: "item", MISSING_TIME: "time", BAD_TIME: "time", TIME_RANGE: "time",
                 UNKNOWN_EVENT: "event"}

_DROP = ""  # value of a mapping entry that drops the event

_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d",
)


def _as_int(c: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    """The integer a time value holds (numbers, or strings of digits), null otherwise; None for other types."""
    if dtype.is_numeric():
        return c.cast(pl.Int64, strict=False)
    if dtype == pl.String:
        return c.str.strip_chars().cast(pl.Int64, strict=False)
    return None


def time_expr(c: pl.Expr, dtype: pl.DataType, unit: str) -> pl.Expr:
    """Parse a time column of any source type to Datetime('us', 'UTC'); unparsable values become null.

    Integers are unix time in ``unit`` through ``recs.sessions.times``: a value outside 1990..2100 in
    that unit becomes null too (``time_out_of_range`` tells those rows apart), and ``auto`` takes the
    unit that puts the value in that range. Strings may hold such integers or ISO-8601-like
    datetimes, with an offset or a trailing UTC/GMT/Z.
    """
    as_datetime = datetime_to_utc(c, dtype)
    if as_datetime is not None:
        return _representable(as_datetime)
    as_int = _as_int(c, dtype)
    if as_int is None:
        return pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    if dtype.is_numeric():
        return times.epoch_to_utc(as_int, unit)
    text = c.str.strip_chars().str.replace(r"\s*(?:UTC|GMT|Z)$", "")
    parsed = [text.str.to_datetime(f, strict=False, time_zone="UTC", time_unit="us") for f in _DATETIME_FORMATS]
    return pl.when(as_int.is_not_null()).then(times.epoch_to_utc(as_int, unit)).otherwise(
        _representable(pl.coalesce(parsed)))


def _representable(t: pl.Expr) -> pl.Expr:
    """Null where a parsed time lies outside years 1..9999 in UTC (``0001-01-01T00:00:00+01:00``): polars
    holds it, Python's datetime cannot, so it is a time that cannot be read (``recs.instants``)."""
    return pl.when(t.is_between(EARLIEST_INSTANT, LATEST_INSTANT)).then(t)


def time_out_of_range(c: pl.Expr, dtype: pl.DataType, unit: str) -> pl.Expr:
    """True where a time value is an integer outside 1990..2100 in ``unit`` (a bad row of its own kind)."""
    as_int = _as_int(c, dtype)
    if as_int is None:
        return pl.lit(False)
    return (as_int.is_not_null() & ~times.epoch_in_range(as_int, unit)).fill_null(False)


def tag_rows(lf: pl.LazyFrame, fmt: Format, keep_session: bool, keep_unmapped: bool) -> pl.LazyFrame:
    """Tag every row with a reason it cannot be used (null when fine) and parse time and interaction."""
    schema = lf.collect_schema()
    present = [f for f in FIELDS if f in schema]
    events = {k.strip().lower(): (_DROP if v is None or v == "" else v) for k, v in fmt.events.items()}
    raw_event = pl.col("event").cast(pl.String).str.strip_chars().str.to_lowercase()
    known = pl.col("_ev").is_in(list(events))
    # A when/then chain over the (small) event table: replace_strict is not streamed by polars 2.1 and
    # held the whole column in memory (1.6 GiB on 10M events).
    mapped = pl.lit(None, dtype=pl.String)
    if events:
        chain = None
        for raw_name, canon in events.items():
            cond = pl.col("_ev") == raw_name
            chain = pl.when(cond).then(pl.lit(canon)) if chain is None else chain.when(cond).then(pl.lit(canon))
        mapped = chain.otherwise(None)
    ts = time_expr(pl.col("time"), schema["time"], fmt.time_unit)
    out_of_range = time_out_of_range(pl.col("time"), schema["time"], fmt.time_unit)
    item = pl.col("item")
    item_missing = item.is_null() | (item.cast(pl.String).str.strip_chars() == "")
    key = "session" if keep_session else ("user" if "user" in schema else "session")
    blank = pl.all_horizontal([pl.col(f).is_null() for f in present])

    ev, tcol = pl.col("_ev"), pl.col("_ts")
    reason = (
        pl.when(blank).then(pl.lit(BLANK_LINE))
        .when(item_missing).then(pl.lit(MISSING_ITEM))
        .when(pl.col("time").is_null()).then(pl.lit(MISSING_TIME))
        .when(out_of_range).then(pl.lit(TIME_RANGE))
        .when(tcol.is_null()).then(pl.lit(BAD_TIME))
        .when(pl.col(key).is_null()).then(pl.lit(MISSING_KEY))
    )
    if not keep_unmapped:
        reason = reason.when(~known).then(pl.lit(UNKNOWN_EVENT)).when(mapped == _DROP).then(pl.lit(UNMAPPED_EVENT))
    detail = (
        pl.when(pl.col(REASON).is_in([BAD_TIME, TIME_RANGE])).then(pl.col("time").cast(pl.String))
        .when(pl.col(REASON).is_in([UNKNOWN_EVENT, UNMAPPED_EVENT])).then(ev)
        .otherwise(None)
    )
    interaction = pl.when(known & (mapped != _DROP)).then(mapped).otherwise(ev)
    others = [pl.col(f) for f in present if f not in ("time", "event")]
    return (
        lf.with_columns(ts.alias("_ts"), raw_event.alias("_ev"))
        .with_columns(reason.otherwise(None).alias(REASON))
        .select(
            pl.col(FILE),
            pl.col(LINE),
            *others,
            interaction.alias(Col.INTERACTION),
            tcol.alias(Col.TIMESTAMP),
            pl.col(REASON),
            detail.alias(DETAIL),
            ev.alias(RAW_EVENT),
        )
    )


def drop_summary(parsed: pl.LazyFrame, displays: list[str], layout: str) -> dict[str, dict[str, Any]]:
    """Per reason: how many rows, where the first one is (``file: line N``) and its offending value."""
    bad = (
        parsed.filter(pl.col(REASON).is_not_null())
        .sort(FILE, LINE)
        .group_by(REASON, maintain_order=True)
        .agg(pl.len().alias("rows"), pl.col(FILE).first(), pl.col(LINE).first(), pl.col(DETAIL).first())
        .collect()
    )
    dropped: dict[str, dict[str, Any]] = {}
    for row in bad.iter_rows(named=True):
        where = _where(displays[row[FILE]], layout, row[LINE])
        dropped[row[REASON]] = {"rows": row["rows"], "first": where, "value": row[DETAIL]}
    return dropped


def _where(display: str, layout: str, line: int) -> str:
    return f"{display}: {'row' if layout == 'parquet' else 'line'} {line}"


def error_message(errors: dict[str, dict[str, Any]], fmt: Format) -> str:
    """One line: where the first bad row is, what is wrong with it, how many more, and what to do."""
    first_reason = min(errors, key=lambda r: _sort_key(errors[r]["first"]))
    e = errors[first_reason]
    fld = _REASON_FIELD.get(first_reason)
    column = f" in column {fmt.columns[fld]!r}" if fld and fld in fmt.columns else ""
    value = f" {e['value']!r}" if e["value"] is not None else ""
    total = sum(v["rows"] for v in errors.values())
    breakdown = ", ".join(f"{v['rows']:,} {r}" for r, v in errors.items())
    hint = ""
    if first_reason == UNKNOWN_EVENT:
        known = sorted(k for k in fmt.events if fmt.events[k])
        shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
        hint = (
            f"; map it with --map {e['value']}=click|favorite|cart|purchase, drop it with --map {e['value']}=, "
            f"or keep it with --keep-unmapped (known events: {shown})"
        )
    elif first_reason == TIME_RANGE:
        hint = f" (range {times.plausible_range(fmt.time_unit)}); {times.unit_hint(e['value'], fmt.time_unit)}"
    return (
        f"{e['first']}: {first_reason}{value}{column}; {total:,} bad row{'s' if total != 1 else ''} in all "
        f"({breakdown}){hint}; use --on-error skip to drop and count them"
    )


def _sort_key(where: str) -> tuple[str, int]:
    head, _, n = where.rpartition(" ")
    return head, int(n) if n.isdigit() else 0


def mapped_counts(parsed: pl.LazyFrame) -> list[dict[str, Any]]:
    """How each raw event name of the usable rows was read: ``{"raw", "interaction", "events"}`` rows,
    most events first (``view`` -> click, ``buy`` -> purchase, and a name kept as it is: ``click`` -> click)."""
    df = (
        parsed.filter(pl.col(REASON).is_null())
        .group_by(RAW_EVENT, Col.INTERACTION)
        .len()
        .sort(["len", RAW_EVENT], descending=[True, False])
        .collect()
    )
    return [{"raw": r, "interaction": i, "events": n}
            for r, i, n in zip(df[RAW_EVENT].to_list(), df[Col.INTERACTION].to_list(), df["len"].to_list(),
                               strict=True)]


def unmapped_counts(parsed: pl.LazyFrame, kept: bool, fmt: Format) -> dict[str, int]:
    """How many events of each raw name had no interaction: dropped (default) or kept under their name."""
    if kept:
        canonical = set(Interaction.CANONICAL) | {v for v in fmt.events.values() if v}
        df = (
            parsed.filter(pl.col(REASON).is_null() & ~pl.col(Col.INTERACTION).is_in(list(canonical)))
            .group_by(Col.INTERACTION)
            .len()
            .collect()
        )
        return dict(zip(df[Col.INTERACTION].to_list(), df["len"].to_list(), strict=True))
    df = parsed.filter(pl.col(REASON) == UNMAPPED_EVENT).group_by(DETAIL).len().collect()
    return dict(zip(df[DETAIL].to_list(), df["len"].to_list(), strict=True))
