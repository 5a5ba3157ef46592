"""Read and write canonical session tables, with one clear error for every kind of bad input.

The canonical table has ``session_id, item_id, interaction, timestamp`` and optionally ``user_id,
category, shop_id``. ``item_id`` may be integer or string and keeps its type through every output;
id columns read from CSV follow the rule of ``recs.sessions.ids`` (integers only when every value is
a canonical integer). Timestamps are normalised to UTC microseconds so that every later stage compares
like with like; integer times are read in the caller's ``time_unit`` by ``recs.sessions.times``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recs.atomic import Outputs, writing
from recs.columns import Col
from recs.errors import ConfigError, InputError, SchemaError
from recs.sessions import times
from recs.sessions.ids import ID_COLUMNS, text_ids

TIME_DTYPE = pl.Datetime("us", "UTC")
_READERS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv"}


def _kind(path: Path) -> str:
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unknown file type {path.suffix!r}; sessions are read from .parquet or .csv")
    return kind


def csv_separator(path: str | Path) -> str:
    """The field separator of a CSV-kind sessions file: a tab for ``.tsv``, else a comma."""
    return "\t" if Path(path).suffix.lower() == ".tsv" else ","


def check_input_file(path: Path, expected: str) -> None:
    """Fail early, naming the path, if it is missing, a directory or empty; ``expected`` says what it should be."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected {expected}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")


def _read_raw(path: Path) -> pl.DataFrame:
    check_input_file(path, "a sessions file (.parquet or .csv)")
    kind = _kind(path)
    try:
        if kind == "parquet":
            return pl.read_parquet(path)
        # ids as text, then typed by the canonical-integer rule, so 007 and 7 stay two items
        df = pl.read_csv(path, separator=csv_separator(path), infer_schema_length=100_000, try_parse_dates=False,
                         schema_overrides=dict.fromkeys(ID_COLUMNS, pl.String))
        return text_ids(df)
    except (pl.exceptions.PolarsError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{path}: cannot read as {kind}: {first}") from None


def _found(df: pl.DataFrame) -> str:
    return ", ".join(f"{c} ({t})" for c, t in df.schema.items()) or "none"


def _first_null_row(df: pl.DataFrame, col: str) -> int:
    return int(df.select(pl.col(col).is_null().arg_max()).item())


def _normalise_id(df: pl.DataFrame, col: str, where: str) -> pl.Expr:
    dtype = df.schema[col]
    if dtype.is_integer() or dtype == pl.String:
        return pl.col(col)
    if dtype in (pl.Categorical,) or isinstance(dtype, pl.Enum):
        return pl.col(col).cast(pl.String)
    raise SchemaError(
        f"{where}: column {col!r} has type {dtype}, expected integer or string ids; columns found: {_found(df)}"
    )


def datetime_to_utc(c: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    """A datetime or date column as TIME_DTYPE (naive times are read as UTC); None for other types."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            c = c.dt.replace_time_zone("UTC")
        return c.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if dtype == pl.Date:
        return c.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return None


def _normalise_time(df: pl.DataFrame, where: str, time_unit: str) -> pl.Expr:
    dtype = df.schema[Col.TIMESTAMP]
    c = pl.col(Col.TIMESTAMP)
    as_datetime = datetime_to_utc(c, dtype)
    if as_datetime is not None:
        return as_datetime
    if dtype.is_integer():
        # Unix time in `time_unit`; a value outside 1990..2100 is refused before it is scaled, naming
        # its row and the unit that would fit (a UInt64 beyond Int64 becomes null and is refused too).
        v = c.cast(pl.Int64, strict=False)
        ok = df.select(times.epoch_in_range(v, time_unit).fill_null(False)).to_series()
        if not ok.all():
            row = int((~ok).arg_max())
            raise InputError(
                f"{where}: column {Col.TIMESTAMP!r} row {row + 1}: "
                f"{times.range_message(df[Col.TIMESTAMP][row], time_unit)}"
            )
        return times.epoch_to_utc(v, time_unit)
    if dtype == pl.String:
        parsed = df.select(c.str.to_datetime(time_zone="UTC", strict=False, time_unit="us"))
        bad = parsed.to_series().is_null() & df[Col.TIMESTAMP].is_not_null()
        if bad.any():
            row = int(bad.arg_max())
            raise SchemaError(
                f"{where}: column {Col.TIMESTAMP!r} row {row + 1}: cannot parse {df[Col.TIMESTAMP][row]!r} as a time "
                "(use ISO-8601, a datetime column or integer unix seconds)"
            )
        return c.str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
    raise SchemaError(
        f"{where}: column {Col.TIMESTAMP!r} has type {dtype}, expected a datetime, ISO-8601 strings or integer unix "
        f"times (--time-unit); columns found: {_found(df)}"
    )


def validate_sessions(
    df: pl.DataFrame, where: str = "sessions", time_unit: str = times.DEFAULT_TIME_UNIT
) -> pl.DataFrame:
    """Check and normalise a canonical sessions frame; ``where`` names the source in messages.

    Integer timestamps are unix time in ``time_unit`` (s, ms, us, ns); one outside 1990..2100 is an
    InputError naming its row and the unit that would fit. Id columns keep the frame's types.

    Returns the frame with canonical dtypes, optional columns kept, extra columns dropped, sorted by
    session and time (ties keep the file's order, which is the order the events were logged in).
    """
    times.check_unit(time_unit)
    missing = [c for c in Col.REQUIRED if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{where}: missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; "
            f"columns found: {_found(df)}"
        )
    if df.height == 0:
        raise InputError(f"{where}: has no rows")
    for col in Col.REQUIRED:
        if df[col].null_count():
            raise SchemaError(f"{where}: column {col!r} is empty (null) in row {_first_null_row(df, col) + 1}")
    inter = df.schema[Col.INTERACTION]
    if not (inter == pl.String or inter == pl.Categorical or isinstance(inter, pl.Enum)):
        raise SchemaError(
            f"{where}: column {Col.INTERACTION!r} has type {inter}, expected strings such as click, cart; "
            f"columns found: {_found(df)}"
        )
    exprs = [
        _normalise_id(df, Col.SESSION, where).alias(Col.SESSION),
        _normalise_id(df, Col.ITEM, where).alias(Col.ITEM),
        pl.col(Col.INTERACTION).cast(pl.String).str.strip_chars().alias(Col.INTERACTION),
        _normalise_time(df, where, time_unit).alias(Col.TIMESTAMP),
    ]
    for col in Col.OPTIONAL:
        if col in df.columns:
            dtype = df.schema[col]
            exprs.append(pl.col(col).cast(pl.String) if dtype == pl.Categorical else pl.col(col))
    out = df.select(exprs)
    if (out[Col.INTERACTION] == "").any():
        row = int((out[Col.INTERACTION] == "").arg_max())
        raise SchemaError(f"{where}: column {Col.INTERACTION!r} is blank in row {row + 1}")
    return out.sort([Col.SESSION, Col.TIMESTAMP], maintain_order=True)


def read_sessions(path: str | Path, time_unit: str = times.DEFAULT_TIME_UNIT) -> pl.DataFrame:
    """Read a canonical sessions file (parquet or CSV) and validate it; integer times are in ``time_unit``."""
    path = Path(path)
    times.check_unit(time_unit)  # before reading: a bad option should not wait for a large file
    return validate_sessions(_read_raw(path), where=str(path), time_unit=time_unit)


def sessions_output_kind(path: str | Path, option: str = "--out") -> str:
    """``parquet`` or ``csv`` for an output path, or a ConfigError naming the option, checked before any work."""
    kind = _READERS.get(Path(path).suffix.lower())
    if kind is None:
        raise ConfigError(
            f"{option} {path}: unknown file type {Path(path).suffix!r}; write sessions as .parquet, .csv or .tsv"
        )
    return kind


def write_sessions(df: pl.DataFrame, path: str | Path, outputs: Outputs | None = None) -> Path:
    """Write a sessions frame as parquet, CSV or TSV by the file's suffix.

    Alone it is atomic; with ``outputs`` it is staged there and appears with the command's other
    outputs or not at all.
    """
    path = Path(path)
    kind = sessions_output_kind(path)
    with writing(path, outputs) as tmp:
        if kind == "parquet":
            df.write_parquet(tmp)
        else:
            df.write_csv(tmp, separator=csv_separator(path))
    return path
