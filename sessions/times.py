"""The one parser of integer unix times, used by the canonical readers and by ``recs prepare``.

An integer time means nothing without its unit: 1.7e12 is 2023 in milliseconds and the year 55,000
in seconds. Every reader therefore takes the unit as a parameter (``--time-unit``), and refuses a
value that lands outside 1990-01-01 .. 2100-01-01 in that unit instead of reading it as a date
nobody logged. The check is made on the integer *before* it is scaled, so no value can overflow
(2**62 is refused, not wrapped to 1970 or pushed to the year 148,108). The four plausible ranges
(s, ms, us, ns) do not overlap, so a refused value names the unit that would have fitted, if any.
"""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl

# the units and the default are option values, so they are defined with the other choices; readers import them here
from recs.config import AUTO, DEFAULT_TIME_UNIT, TIME_UNITS, check_choice
from recs.instants import parse_instant  # the one parser of ISO instants (--cutoff, --at, served events)

__all__ = ["DEFAULT_TIME_UNIT", "TIME_UNITS", "bounds", "check_unit", "epoch_in_range", "epoch_to_utc",
           "parse_instant", "plausible_range", "range_message", "unit_hint", "unit_that_fits"]

UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)  # exclusive
_LO_S, _HI_S = int(EARLIEST.timestamp()), int(LATEST.timestamp())


def check_unit(unit: str, allowed: tuple[str, ...] = TIME_UNITS) -> None:
    """Raise a ConfigError naming ``--time-unit`` when ``unit`` is not one of ``allowed``."""
    check_choice("--time-unit", unit, allowed)


def bounds(unit: str) -> tuple[int, int]:
    """[low, high) of plausible integer times in ``unit`` (1990-01-01 .. 2100-01-01)."""
    return _LO_S * PER_SECOND[unit], _HI_S * PER_SECOND[unit]


def _units(unit: str) -> tuple[str, ...]:
    """``auto`` tries every unit: their plausible ranges are disjoint, so at most one fits a value."""
    return TIME_UNITS if unit == AUTO else (unit,)


def epoch_in_range(v: pl.Expr, unit: str) -> pl.Expr:
    """True where the Int64 ``v`` is a plausible time in ``unit`` (any unit for ``auto``); null stays null."""
    parts = [(v >= lo) & (v < hi) for lo, hi in map(bounds, _units(unit))]
    return pl.any_horizontal(parts) if len(parts) > 1 else parts[0]


def epoch_to_utc(v: pl.Expr, unit: str) -> pl.Expr:
    """The Int64 ``v`` as Datetime(us, UTC); null where null or out of range (so no value is scaled past Int64)."""
    parts = []
    for u in _units(unit):
        lo, hi = bounds(u)
        safe = pl.when((v >= lo) & (v < hi)).then(v)
        parts.append(pl.from_epoch(safe, time_unit=u).dt.cast_time_unit("us"))
    out = pl.coalesce(parts) if len(parts) > 1 else parts[0]
    return out.dt.replace_time_zone("UTC")


def unit_that_fits(value: int) -> str | None:
    """The unit in which ``value`` is a plausible time, or None when none is."""
    return next((u for u in TIME_UNITS if bounds(u)[0] <= value < bounds(u)[1]), None)


def plausible_range(unit: str) -> str:
    """The plausible range in words, for messages: ``1990-01-01..2100-01-01 in seconds``."""
    return f"{EARLIEST.date()}..{LATEST.date()} in {'any unit' if unit == AUTO else UNIT_NAMES[unit]}"


def unit_hint(value: object, unit: str) -> str:
    """Which ``--time-unit`` would read ``value`` as a plausible time, or that none would."""
    try:
        fits = unit_that_fits(int(str(value).strip()))
    except ValueError:
        fits = None
    if fits is not None and fits != unit:
        return f"read as {UNIT_NAMES[fits]} it is in range: use --time-unit {fits}"
    return "no unit (s, ms, us, ns) puts it in range; check the column"


def range_message(value: object, unit: str) -> str:
    """Why ``value`` was refused and, when one fits, which ``--time-unit`` would read it."""
    return f"{value} is not a unix time in {plausible_range(unit)} ({unit_hint(value, unit)})"


