"""Read and write canonical session tables, with one clear error for every kind of bad input.

The canonical table has ``session_id, item_id, interaction, timestamp`` and optionally ``user_id,
category, shop_id``. ``item_id`` may be integer or string and keeps its type through every output;
id columns read from CSV follow the rule of ``recs.sessions.ids`` (integers only when every value is
a canonical integer). Timestamps are normalised to UTC microseconds so that every later stage compares
like with like; integer times are read in the caller's ``time_unit`` by ``recs.sessions.times``.

A sessions input may also be a directory of parquet parts or a glob (``recs.sessions.files`` says
which files that is). The parts are read as one table, checked and sorted once as one file is: only
the canonical columns, in one parallel multi-file scan, so the memory is that of the same rows in one
file (a bad row is still named by its part and its row there). Hive partitions (``dt=2026-11-01/``)
are read: one named like a canonical column (``interaction=click/``, ``shop_id=7/``, as Spark's
``partitionBy`` writes them) fills that column, typed by the id rule; any other (``dt``) is an extra
column and dropped, as extra columns of a file are: the event time is ``timestamp``, never the
directory it was filed under.
Every part must have the same canonical columns with the same types; parts with no rows are allowed
(Spark writes them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from recs.atomic import Outputs, writing
from recs.columns import Col
from recs.errors import ConfigError, InputError, SchemaError
from recs.instants import EARLIEST_INSTANT, LATEST_INSTANT, range_words
from recs.sessions import times
from recs.sessions.files import SessionFiles, session_files
from recs.sessions.ids import ID_COLUMNS, text_ids

TIME_DTYPE = pl.Datetime("us", "UTC")
CANONICAL = (*Col.REQUIRED, *Col.OPTIONAL)
Schema = Mapping[str, pl.DataType]
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


def _cannot_read(path: Path, kind: str, e: Exception) -> InputError:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return InputError(f"{path}: cannot read as {kind}: {first}")


def _read_csv(path: Path) -> pl.DataFrame:
    try:
        # ids as text, then typed by the canonical-integer rule, so 007 and 7 stay two items
        df = pl.read_csv(path, separator=csv_separator(path), infer_schema_length=100_000, try_parse_dates=False,
                         schema_overrides=dict.fromkeys(ID_COLUMNS, pl.String))
        return text_ids(df)
    except (pl.exceptions.PolarsError, OSError) as e:
        raise _cannot_read(path, "csv", e) from None


def _parquet_schema(path: Path) -> dict[str, pl.DataType]:
    """A part's columns from its footer, so schemas are compared before any rows are read."""
    check_input_file(path, "a sessions file (.parquet or .csv)")
    try:
        return dict(pl.read_parquet_schema(path))
    except (pl.exceptions.PolarsError, OSError) as e:
        raise _cannot_read(path, "parquet", e) from None


def _found(schema: Schema) -> str:
    return ", ".join(f"{c} ({t})" for c, t in schema.items()) or "none"


def _missing_message(where: object, missing: list[str], schema: Schema) -> str:
    return (f"{where}: missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; "
            f"columns found: {_found(schema)}")


@dataclass(frozen=True)
class _Where:
    """What a message names: the input, its columns (``columns found``) and, for a table read from
    several parts, the part and row there that a row of the table came from."""

    name: str
    schema: Schema
    parts: tuple[Path, ...] = ()

    def at(self, row: int) -> tuple[str, int]:
        """(name, row) of the table's 0-based ``row``: its part and row in that part when there are parts.
        Only called to word an error, so the parts' row counts (footers) are read only then."""
        for part in self.parts:
            n = pl.scan_parquet(part).select(pl.len()).collect().item()
            if row < n:
                return str(part), row
            row -= n
        return self.name, row


def _first_null_row(df: pl.DataFrame, col: str) -> int:
    return int(df.select(pl.col(col).is_null().arg_max()).item())


def _normalise_id(df: pl.DataFrame, col: str, where: str, schema: Schema) -> pl.Expr:
    dtype = df.schema[col]
    if dtype.is_integer() or dtype == pl.String:
        return pl.col(col)
    if dtype in (pl.Categorical,) or isinstance(dtype, pl.Enum):
        return pl.col(col).cast(pl.String)
    raise SchemaError(
        f"{where}: column {col!r} has type {dtype}, expected integer or string ids; columns found: {_found(schema)}"
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


def _normalise_time(df: pl.DataFrame, src: _Where, time_unit: str) -> pl.Expr:
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
            where, at = src.at(row)
            raise InputError(
                f"{where}: column {Col.TIMESTAMP!r} row {at + 1}: "
                f"{times.range_message(df[Col.TIMESTAMP][row], time_unit)}"
            )
        return times.epoch_to_utc(v, time_unit)
    if dtype == pl.String:
        parsed = df.select(c.str.to_datetime(time_zone="UTC", strict=False, time_unit="us"))
        bad = parsed.to_series().is_null() & df[Col.TIMESTAMP].is_not_null()
        if bad.any():
            row = int(bad.arg_max())
            where, at = src.at(row)
            raise SchemaError(
                f"{where}: column {Col.TIMESTAMP!r} row {at + 1}: cannot parse {df[Col.TIMESTAMP][row]!r} as a time "
                "(use ISO-8601, a datetime column or integer unix seconds)"
            )
        return c.str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
    raise SchemaError(
        f"{src.name}: column {Col.TIMESTAMP!r} has type {dtype}, expected a datetime, ISO-8601 strings or integer "
        f"unix times (--time-unit); columns found: {_found(src.schema)}"
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
        raise SchemaError(_missing_message(where, missing, df.schema))
    if df.height == 0:
        raise InputError(f"{where}: has no rows")
    return _sorted(_canonical(df, _Where(where, df.schema), time_unit))


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort([Col.SESSION, Col.TIMESTAMP], maintain_order=True)


def _check_representable(out: pl.DataFrame, df: pl.DataFrame, src: _Where) -> None:
    """Refuse a time that polars holds and Python cannot (years 1..9999 in UTC, ``recs.instants``):
    ``0001-01-01T00:00:00+01:00`` is year 0 in UTC, and every later step that turns a time into a
    Python datetime (stats, split, a summary) would die with a traceback instead."""
    ts = out[Col.TIMESTAMP]
    outside = (ts < EARLIEST_INSTANT) | (ts > LATEST_INSTANT)
    if outside.any():
        row = int(outside.arg_max())
        where, at = src.at(row)
        value = df[Col.TIMESTAMP].slice(row, 1).cast(pl.String)[0]  # as text: Python cannot hold it as a datetime
        raise InputError(f"{where}: column {Col.TIMESTAMP!r} row {at + 1}: {value!r} is outside "
                         f"the times recs can hold ({range_words()}) once in UTC")


def _canonical(df: pl.DataFrame, src: _Where, time_unit: str) -> pl.DataFrame:
    """``validate_sessions`` after the column and row-count checks, without the sort."""
    where, schema = src.name, src.schema
    for col in Col.REQUIRED:
        if df[col].null_count():
            part, row = src.at(_first_null_row(df, col))
            raise SchemaError(f"{part}: column {col!r} is empty (null) in row {row + 1}")
    inter = df.schema[Col.INTERACTION]
    if not (inter == pl.String or inter == pl.Categorical or isinstance(inter, pl.Enum)):
        raise SchemaError(
            f"{where}: column {Col.INTERACTION!r} has type {inter}, expected strings such as click, cart; "
            f"columns found: {_found(schema)}"
        )
    exprs = [
        _normalise_id(df, Col.SESSION, where, schema).alias(Col.SESSION),
        _normalise_id(df, Col.ITEM, where, schema).alias(Col.ITEM),
        pl.col(Col.INTERACTION).cast(pl.String).str.strip_chars().alias(Col.INTERACTION),
        _normalise_time(df, src, time_unit).alias(Col.TIMESTAMP),
    ]
    for col in Col.OPTIONAL:
        if col in df.columns:
            dtype = df.schema[col]
            exprs.append(pl.col(col).cast(pl.String) if dtype == pl.Categorical else pl.col(col))
    out = df.select(exprs)
    _check_representable(out, df, src)
    if (out[Col.INTERACTION] == "").any():
        part, row = src.at(int((out[Col.INTERACTION] == "").arg_max()))
        raise SchemaError(f"{part}: column {Col.INTERACTION!r} is blank in row {row + 1}")
    return out


Value = tuple[object, pl.DataType]


def _partition_columns(src: SessionFiles) -> dict[Path, dict[str, Value]]:
    """Each part's canonical columns given by its partition directories, as (value, type). Values are
    typed as ids read from text are (``recs.sessions.ids``), over all parts at once: Int64 when every
    value is a canonical integer, else text; ``interaction`` is always text."""
    values: dict[str, dict[Path, str | None]] = {}
    for f in src.files:
        for key, value in src.partitions(f).items():
            if key in CANONICAL:
                values.setdefault(key, {})[f] = value
    out: dict[Path, dict[str, Value]] = {f: {} for f in src.files}
    for key, by_file in values.items():
        frame = pl.DataFrame({key: list(by_file.values())}, schema={key: pl.String})
        column = (frame if key == Col.INTERACTION else text_ids(frame, [key]))[key]
        for f, value in zip(by_file, column, strict=True):
            out[f][key] = (value, column.dtype)
    return out


def _agreed_columns(src: SessionFiles, schemas: dict[Path, dict[str, pl.DataType]]) -> list[str]:
    """The canonical columns to read (the required ones, and each optional one any part has), after
    checking the parts agree: one missing from a part, or of another type there, is an error naming it."""
    wanted = [*Col.REQUIRED, *(c for c in Col.OPTIONAL if any(c in s for s in schemas.values()))]
    first: dict[str, Path] = {}
    for f, schema in schemas.items():
        missing = [c for c in wanted if c not in schema]
        if missing:
            has = next((g for g, s in schemas.items() if missing[0] in s), None)
            also = f" ({has} has {missing[0]!r}: the parts of one input must have the same columns)" if has else ""
            raise SchemaError(_missing_message(src.given if src.single else f, missing, schema) + also)
        for c in wanted:
            ref = first.setdefault(c, f)
            if schemas[ref][c] != schema[c]:
                raise SchemaError(f"{f}: column {c!r} has type {schema[c]}, but {schemas[ref][c]} in {ref}; "
                                  "the parts of one input must agree on the types of the canonical columns")
    return wanted


def _runs(src: SessionFiles, partitions: dict[Path, dict[str, Value]]) -> list[tuple[list[Path], dict[str, Value]]]:
    """Consecutive parts that share their partition values: each run is one multi-file scan."""
    runs: list[tuple[list[Path], dict[str, Value]]] = []
    for f in src.files:
        if runs and runs[-1][1] == partitions[f]:
            runs[-1][0].append(f)
        else:
            runs.append(([f], partitions[f]))
    return runs


@dataclass(frozen=True)
class PartsPlan:
    """What reading the parquet parts of an input takes, checked from their footers alone (no rows
    read): each part's schema (its partition columns included), the canonical ``columns`` to read (in
    that order), and the ``runs`` of consecutive parts that share partition values, each run with
    those values as (value, type) per column. Shared with the Spark engine, so both read alike."""

    schemas: dict[Path, dict[str, pl.DataType]]
    columns: list[str]
    runs: list[tuple[list[Path], dict[str, Value]]]


def plan_parts(src: SessionFiles) -> PartsPlan:
    """Read and compare the parts' footers: a part missing a canonical column, holding one of another
    type, or holding one its path also gives is a SchemaError naming it; a broken part an InputError."""
    partitions = _partition_columns(src)
    schemas: dict[Path, dict[str, pl.DataType]] = {}
    for f in src.files:
        schema = _parquet_schema(f)
        for key, (value, dtype) in partitions[f].items():
            if key in schema:
                raise SchemaError(f"{f}: column {key!r} is both in the file and in its path ({key}={value}); "
                                  "keep one of them")
            schema[key] = dtype
        schemas[f] = schema
    return PartsPlan(schemas, _agreed_columns(src, schemas), _runs(src, partitions))


def _read_parts(src: SessionFiles, time_unit: str) -> pl.DataFrame:
    """The parquet member(s) of ``src`` as one canonical table, not yet sorted.

    Schemas are read and compared from the footers first (``plan_parts``), so a mismatch is named
    before any rows are read. Then the canonical columns of all parts are read in one multi-file scan
    per run of parts (polars reads them in parallel, in the parts' order) and checked as one table, as
    one file is: the memory is that of the same rows in one file. A bad row is named by its part and
    its row there.
    """
    plan = plan_parts(src)
    wanted, first = plan.columns, plan.schemas[src.files[0]]
    scans = []
    for files, values in plan.runs:
        stored = {c: first[c] for c in wanted if c not in values}
        lf = pl.scan_parquet(files, schema=stored, extra_columns="ignore", hive_partitioning=False, glob=False)
        scans.append(lf.with_columns(pl.lit(v, dtype=t).alias(k) for k, (v, t) in values.items()).select(wanted))
    try:
        # one chunk per part and row group otherwise: normalising and sorting a table of 1,000 chunks
        # held 10% more memory than one file's (rechunked: within 1% of one file, measured at 5M rows)
        df = (pl.concat(scans) if len(scans) > 1 else scans[0]).collect().rechunk()
    except (pl.exceptions.PolarsError, OSError) as e:
        raise _cannot_read(Path(src.given), "parquet", e) from None
    if df.height == 0:
        raise InputError(f"{src.given}: has no rows" + ("" if src.single else f" in any of its {len(src.files)} files"))
    where = _Where(src.given, first, () if src.single else src.files)
    return _canonical(df, where, time_unit)


def read_sessions(path: str | Path, time_unit: str = times.DEFAULT_TIME_UNIT) -> pl.DataFrame:
    """Read canonical sessions and validate them; integer times are in ``time_unit``.

    ``path`` is a parquet or CSV file, a directory of parquet parts or a glob (``recs.sessions.files``);
    every command that reads sessions comes here. Rows are sorted by session and time; ties keep the
    order they were logged in (within a file, then by the parts' sorted paths), so the same rows give
    the same table whether they come as one file or as parts listed in any order.
    """
    times.check_unit(time_unit)  # before reading: a bad option should not wait for a large file
    src = session_files(path)
    if src.single:
        check_input_file(src.files[0], "a sessions file (.parquet or .csv)")
    if src.single and _kind(src.files[0]) == "csv":
        return validate_sessions(_read_csv(src.files[0]), where=src.given, time_unit=time_unit)
    return _sorted(_read_parts(src, time_unit))


def input_columns(path: str | Path) -> list[str]:
    """The column names of a sessions input, from its footers or CSV header alone (no rows read), each
    once: every part's own columns and its partition directories' keys. For a check that must name
    more than ``read_sessions`` would (a history needs ``user_id`` or ``session_id``); an input that
    cannot be read this way is left to ``read_sessions`` to name."""
    src = session_files(path)
    if src.single:
        check_input_file(src.files[0], "a sessions file (.parquet or .csv)")
    names: dict[str, None] = {}
    for f in src.files:
        if src.single and _kind(f) == "csv":
            try:
                header = pl.scan_csv(f, separator=csv_separator(f), infer_schema=False).collect_schema()
            except (pl.exceptions.PolarsError, OSError) as e:
                raise _cannot_read(f, "csv", e) from None
            names.update(dict.fromkeys(header.names()))
        else:
            names.update(dict.fromkeys(_parquet_schema(f)))
        names.update(dict.fromkeys(src.partitions(f)))
    return list(names)


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
