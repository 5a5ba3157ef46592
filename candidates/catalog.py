"""The catalogue: which listings exist and which shop and category each belongs to.

Cold start needs it because most listings of a one-of-a-kind marketplace have no events yet: an
item the model never saw can only be given candidates (and be one) through its group. The
catalogue is a parquet or CSV file with ``item_id`` and ``shop_id`` and/or ``category``; an optional
``listed_at`` (a time or a number; larger = newer) orders listings that share one group vector. Other
columns are ignored. Without a catalogue the training sessions' own ``shop_id``/``category`` columns
serve (the model directory's ``items.parquet``, ``recs.embeddings.items``).

A catalogue is a table of facts about items, so one item has one row: a repeated row, or two rows
that disagree on the shop, is refused naming the item and the rows, because either could be the
stale one and guessing would file a listing under the wrong shop without a word.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recs.columns import Col, Level
from recs.errors import InputError
from recs.sessions.ids import is_canonical_int, text_ids
from recs.sessions.io import check_input_file

GROUP_COLUMNS: tuple[str, ...] = tuple(Level.GROUP_COLUMNS.values())  # shop_id, category: the chain's order
_ROW = "_row"
_TEXT_ID_COLUMNS = (Col.ITEM, *GROUP_COLUMNS)


def read_catalog(path: str | Path) -> pl.DataFrame:
    """The catalogue file, checked: ``item_id`` + the group columns it has (+ ``listed_at``), one row
    per item, in file order. A CSV's ids are typed as the sessions' are (``recs.sessions.ids``)."""
    path = Path(path)
    check_input_file(path, "a catalogue file (.parquet or .csv)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif suffix in (".csv", ".tsv"):
            frame = pl.read_csv(path, separator="\t" if suffix == ".tsv" else ",", infer_schema_length=100_000,
                                try_parse_dates=True, schema_overrides=dict.fromkeys(_TEXT_ID_COLUMNS, pl.String))
            frame = text_ids(frame, [c for c in _TEXT_ID_COLUMNS if c in frame.columns])
        else:
            raise InputError(f"{path}: unknown file type {path.suffix!r}; a catalogue is .parquet, .csv or .tsv")
    except (pl.exceptions.PolarsError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{path}: cannot read as a catalogue: {first}") from None
    # a CSV's first data row is line 2 (after the header); a parquet's is row 1
    return check_catalog(frame, str(path), first_row=2 if suffix != ".parquet" else 1,
                         row_word="line" if suffix != ".parquet" else "row")


def check_catalog(frame: pl.DataFrame, where: str, first_row: int = 1, row_word: str = "row") -> pl.DataFrame:
    """``frame`` as a catalogue (see the module docstring), or an InputError naming ``where``, the
    column, and the row (``row_word`` n, counted from ``first_row``) or item at fault."""
    found = ", ".join(f"{c} ({t})" for c, t in frame.schema.items()) or "none"
    if Col.ITEM not in frame.columns:
        raise InputError(f"{where}: missing column {Col.ITEM!r}; columns found: {found}")
    groups = [c for c in GROUP_COLUMNS if c in frame.columns]
    if not groups:
        raise InputError(f"{where}: a catalogue needs {Col.SHOP!r} and/or {Col.CATEGORY!r} to roll new items up "
                         f"to; columns found: {found}")
    keep = [Col.ITEM, *groups] + ([Col.LISTED_AT] if Col.LISTED_AT in frame.columns else [])
    for col in (Col.ITEM, *groups):
        dtype = frame.schema[col]
        if not (dtype.is_integer() or dtype == pl.String):
            raise InputError(f"{where}: column {col!r} has type {dtype}, expected integer or string ids")
    if Col.LISTED_AT in keep:
        dtype = frame.schema[Col.LISTED_AT]
        if not (dtype.is_temporal() or dtype.is_numeric()):
            raise InputError(f"{where}: column {Col.LISTED_AT!r} has type {dtype}, expected a time or a number "
                             "(larger = listed later)")
    frame = frame.select(keep).with_row_index(_ROW, offset=first_row)
    null = frame.filter(pl.col(Col.ITEM).is_null())
    if null.height:
        raise InputError(f"{where}: {row_word} {null[_ROW][0]}: empty {Col.ITEM!r}"
                         + (f" (and {null.height - 1} more rows)" if null.height > 1 else ""))
    _check_one_row_per_item(frame, where, row_word)
    return frame.drop(_ROW)


def _check_one_row_per_item(frame: pl.DataFrame, where: str, row_word: str) -> None:
    repeated = (
        frame.filter(pl.col(Col.ITEM).is_duplicated())
        .group_by(Col.ITEM, maintain_order=True)
        .agg(pl.all())
    )
    if repeated.height == 0:
        return
    first = repeated.row(0, named=True)
    rows = first[_ROW]
    item = first[Col.ITEM]
    more = f" ({repeated.height - 1} more items have more than one row)" if repeated.height > 1 else ""
    differ = [c for c in frame.columns if c not in (Col.ITEM, _ROW) and len(set(map(repr, first[c]))) > 1]
    at = f"{row_word}s {', '.join(map(str, rows[:5]))}" + (", ..." if len(rows) > 5 else "")
    if differ:
        col = differ[0]
        values = " vs ".join(repr(v) for v in dict.fromkeys(first[col]))
        raise InputError(f"{where}: item {item!r} has conflicting rows ({at}): {col} {values}; "
                         f"a catalogue has one row per item{more}")
    raise InputError(f"{where}: item {item!r} is listed more than once ({at}); a catalogue has one row per item{more}")


def catalog_for(model_items: pl.DataFrame | None, catalog: pl.DataFrame | None, item_dtype: pl.DataType,
                where: str) -> pl.DataFrame | None:
    """The catalogue a roll-up uses: the given one (its ids cast to the model's item type), with the
    training sessions' items (``model_items``) that it does not list added; None if neither has a
    group column. The given catalogue wins where both know an item: it is the shop's own record."""
    if catalog is not None:
        catalog = _cast_items(catalog, item_dtype, where)
    if model_items is not None:
        cols = [c for c in (Col.ITEM, *GROUP_COLUMNS) if c in model_items.columns]
        model_items = model_items.select(cols) if len(cols) > 1 else None
    if catalog is None:
        return model_items
    if model_items is None:
        return catalog
    extra = model_items.join(catalog.select(Col.ITEM), on=Col.ITEM, how="anti")
    for col in catalog.columns:  # the model's group columns take the catalogue's types, or are dropped
        if col in extra.columns and col != Col.ITEM and extra.schema[col] != catalog.schema[col]:
            extra = extra.drop(col)
    return pl.concat([catalog, extra], how="diagonal_relaxed")


def _cast_items(catalog: pl.DataFrame, item_dtype: pl.DataType, where: str) -> pl.DataFrame:
    """The catalogue's ``item_id`` in the model's id type, or an InputError naming a value that has none:
    a catalogue of text ids for a model of integer ids would otherwise match no item at all."""
    have = catalog.schema[Col.ITEM]
    if have == item_dtype:
        return catalog
    if item_dtype == pl.String:
        return catalog.with_columns(pl.col(Col.ITEM).cast(pl.String))
    cast = catalog[Col.ITEM].cast(item_dtype, strict=False)
    bad = cast.is_null() & catalog[Col.ITEM].is_not_null()
    if have == pl.String:  # "07" is not item 7 (recs.sessions.ids), and would give item 7 a second row
        bad |= ~catalog.select(is_canonical_int(pl.col(Col.ITEM)).fill_null(True)).to_series()
    bad = catalog.filter(bad)
    if bad.height:
        raise InputError(f"{where}: item_id {bad[Col.ITEM][0]!r} is not an integer, but the model's item ids are "
                         f"integers ({item_dtype}); the catalogue must name items as the sessions did")
    return catalog.with_columns(cast.alias(Col.ITEM))


__all__ = ["GROUP_COLUMNS", "catalog_for", "check_catalog", "read_catalog"]
