"""The one parser of ISO-8601 instants that a user or a client gives: ``--cutoff``, ``--at``, and the
times in a request's events (``recs serve`` imports it from here).

Python's ``datetime`` holds years 1..9999. A time at the edge of that range with an offset
(``0001-01-01T00:00:00+01:00`` is 23:00 on 31 December of year 0 in UTC; ``9999-12-31T23:59:59-01:00``
is in year 10000) parses, and then ``astimezone(UTC)`` raises ``OverflowError``: a traceback from
the CLI and a 500 from a server. Here every failure to read an instant, that one included, is one
``ConfigError`` naming the option (or field) and the text, and the caller decides how to show it
(the CLI: one ``Error:`` line and exit 2; the service: a 422).

Kept free of polars so a light caller (the service's request validation) can import it cheaply.
"""

from __future__ import annotations

from datetime import datetime, timezone

from recs.errors import ConfigError

__all__ = ["EARLIEST_INSTANT", "LATEST_INSTANT", "parse_instant", "range_words"]

# the range a time can take anywhere in recs: what a UTC datetime holds
EARLIEST_INSTANT = datetime.min.replace(tzinfo=timezone.utc)
LATEST_INSTANT = datetime.max.replace(tzinfo=timezone.utc)


def range_words() -> str:
    """The representable range in words, for messages."""
    return "0001-01-01 00:00 .. 9999-12-31 23:59:59 UTC"  # strftime's %Y gives "1", not "0001", on glibc


def parse_instant(text: str, option: str) -> datetime:
    """``text`` (an ISO-8601 date or time) as an aware UTC datetime; a naive one is UTC, as canonical
    timestamps are. Raises ConfigError naming ``option`` when it is not ISO-8601 or lies, once in UTC,
    outside the years 1..9999."""
    if not isinstance(text, str):
        raise ConfigError(f"{option}: {text!r} is not an ISO-8601 date or time (e.g. 2017-12-03)")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option}: {text!r} is not an ISO-8601 date or time (e.g. 2017-12-03)") from None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc)
    except (OverflowError, ValueError):  # the offset moves it past year 1 or 9999
        raise ConfigError(f"{option}: {text!r} is outside the times recs can hold ({range_words()}) once "
                          "its offset is applied") from None
