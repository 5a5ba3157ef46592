"""Item ids of test sessions and of candidate tables must be of one kind to be compared.

Sessions keep item ids as they were read: integers or strings. Scoring string ids against integer
candidates (or the reverse) matches nothing, and casting one side to the other silently turns ids into
nulls, so a hit rate of 0 would be reported for what is a mismatch of files. Integers of different
widths are one kind: they compare by value.
"""

from __future__ import annotations

import polars as pl

from recs.errors import SchemaError


def id_kind(dtype: pl.DataType) -> str:
    """``integer``, ``string`` or the dtype's own name, as a message says it."""
    return "integer" if dtype.is_integer() else "string" if dtype == pl.String else str(dtype)


def require_same_id_kind(sessions: pl.DataType, *others: pl.DataType, what: str = "the candidate set",
                         where: str = "") -> None:
    """Raise a SchemaError, before any scoring, if ``others`` (candidate id dtypes) differ in kind from
    the sessions' item ids. ``what`` names the candidates' origin, ``where`` prefixes the message."""
    mine = id_kind(sessions)
    other = next((k for k in map(id_kind, others) if k != mine), None)
    if other is None:
        return
    prefix = f"{where}: " if where else ""
    raise SchemaError(
        f"{prefix}test sessions have {mine} item ids, {what} has {other} item ids; ids of different types never "
        f"match, so every target would be a miss: score sessions whose item_id is stored like the training "
        f"sessions' (e.g. both from one recs split)"
    )
