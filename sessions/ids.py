"""The one rule for identifier columns read from text: integer only when every value is a canonical integer.

An id is a name, not a number. Reading ``007``, ``7`` and ``031`` as integers merges ``007`` with
``7`` and renames ``031`` to ``31``, so two items become one without a word. A text source (CSV,
TSV, NDJSON strings) gives ids as strings; an id column becomes Int64 only when *every* value is
written the way an Int64 prints: ``0`` or a non-zero digit followed by digits, no sign, no leading
zero, no whitespace, at most 9223372036854775807. Otherwise the column stays text, verbatim (no
stripping: `` 7`` and ``7`` are then two ids, as the file wrote them). Integer ids are worth keeping
when they are really integers: they join with other tables of the same shop and take half the memory.

Typed sources (parquet, an in-memory frame) keep their types: an Int64 column stays Int64 and a
String column stays String even if its values look like integers, because there the writer chose.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from recs.columns import Col

# session_id, item_id, user_id, category, shop_id: every column that names a thing rather than measures one
ID_COLUMNS: tuple[str, ...] = (Col.SESSION, Col.ITEM, Col.USER, Col.CATEGORY, Col.SHOP)
CANONICAL_INT = r"^(?:0|[1-9][0-9]*)$"
_INT64_MAX = str(2**63 - 1)  # 19 digits


def is_canonical_int(c: pl.Expr) -> pl.Expr:
    """True where the string ``c`` is a canonical non-negative integer that fits Int64; null stays null.

    Among digit strings without a leading zero, a shorter one is smaller, and two of the same length
    compare as numbers when compared as text, so the Int64 bound is checked without parsing.
    """
    n = c.str.len_bytes()
    fits = (n < len(_INT64_MAX)) | ((n == len(_INT64_MAX)) & (c <= _INT64_MAX))
    return c.str.contains(CANONICAL_INT) & fits


def id_types(frame: pl.LazyFrame | pl.DataFrame, columns: Iterable[str], text: bool = True) -> dict[str, str]:
    """``integer`` or ``string`` for each of ``columns`` present in ``frame`` (one pass over the data).

    With ``text`` (the frame was read from CSV/TSV/NDJSON) a String column is ``integer`` when every
    non-null value is a canonical integer (module docstring); without it a String column is ``string``,
    as its typed source wrote it. An integer column is ``integer``; anything else is ``string``.
    """
    lf = frame.lazy()
    schema = lf.collect_schema()
    present = [c for c in columns if c in schema]
    checks = []
    for c in present:
        dtype = schema[c]
        if dtype == pl.String and text:
            checks.append((pl.col(c).is_not_null() & ~is_canonical_int(pl.col(c))).sum().alias(c))
        else:
            checks.append(pl.lit(0 if dtype.is_integer() else 1).alias(c))
    if not checks:
        return {}
    row = lf.select(checks).collect(engine="streaming").row(0, named=True)
    return {c: "integer" if row[c] == 0 else "string" for c in present}


def apply_id_types(frame: pl.LazyFrame | pl.DataFrame, types: dict[str, str]) -> pl.LazyFrame | pl.DataFrame:
    """Cast the String columns that ``id_types`` called ``integer`` to Int64; the others are left as they are."""
    schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    casts = [pl.col(c).cast(pl.Int64) for c, t in types.items() if t == "integer" and schema[c] == pl.String]
    return frame.with_columns(casts) if casts else frame


def text_ids(frame: pl.LazyFrame | pl.DataFrame, columns: Iterable[str] = ID_COLUMNS) -> pl.LazyFrame | pl.DataFrame:
    """A frame read from text with its id columns typed by the rule: ``apply_id_types(id_types(...))``."""
    return apply_id_types(frame, id_types(frame, columns))
