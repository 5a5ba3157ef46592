"""Item ids of test sessions and of candidate tables are compared as what they are: names.

Sessions keep item ids as they were read: integers or strings (``recs.sessions.ids``). Two files of
one log can still differ in kind: a CSV split whose training days hold ``007`` is read as text, while
its test day, all canonical integers, is read as integers. Casting the text side to integers would
turn ``007`` into null (or 7) and report misses for what is a difference of storage. Since an integer
id read from text is always canonical, its decimal text *is* the id as the file wrote it, so ids of
different kinds are compared as text, and the report says so. Integers of different widths compare
by value.
"""

from __future__ import annotations

import polars as pl

from recs.errors import SchemaError


def id_kind(dtype: pl.DataType) -> str:
    """``integer``, ``string`` or the dtype's own name, as a message says it."""
    return "integer" if dtype.is_integer() else "string" if dtype == pl.String else str(dtype)


def comparison_dtype(sessions: pl.DataType, *others: pl.DataType, where: str = "") -> pl.DataType | None:
    """The dtype both sides are compared in, or None when they compare as they are.

    Integers of other widths: the sessions' dtype. Integer against string: ``pl.String`` (module
    docstring). Anything else (floats, dates) is not an id: a SchemaError naming ``where``.
    """
    kinds = {id_kind(d) for d in (sessions, *others)}
    if not kinds <= {"integer", "string"}:
        odd = next(k for k in kinds if k not in ("integer", "string"))
        raise SchemaError(f"{where + ': ' if where else ''}item ids of type {odd} cannot be compared; ids are "
                          "integers or strings")
    if len(kinds) > 1:
        return pl.String
    return sessions if any(d != sessions for d in others) else None


def mixed_kinds_note(sessions: pl.DataType, *others: pl.DataType, what: str = "the candidate set") -> str | None:
    """The note a report carries when ids of two kinds were compared as text, else None."""
    mine = id_kind(sessions)
    other = next((k for k in map(id_kind, others) if k != mine), None)
    if other is None:
        return None
    return (f"test sessions have {mine} item ids, {what} has {other} item ids: compared as text (an integer id "
            "read from a file is the text it was written as; store both as parquet to keep one type)")
