"""Sessions as a Spark DataFrame, read by the rules of ``recs.sessions.io.read_sessions``.

Both engines must see the same events in the same order, or the vocabulary and the pairs differ.
So the members of the input come from ``recs.sessions.files.session_files`` (a file, a directory of
parquet parts, hive partitions, a glob; Spark's skip rule), their footers are checked on this machine
by the same functions ``read_sessions`` uses (missing columns, parts that disagree on types), and
Spark reads exactly those files. Values get the canonical rules in Spark expressions:

- ids keep their parquet types (integer or string); a canonical-named partition (``interaction=click/``)
  fills its column, typed by the id rule over all parts, as ``read_sessions`` does; other partitions
  (``dt=``) are dropped;
- ``interaction`` is stripped of Unicode white space; a blank one, or a null in a required column, is
  an error naming the file and row;
- integer times are unix times in ``--time-unit``, refused outside 1990..2100 (naming file and row),
  and scaled to microseconds as ``recs.sessions.times`` scales them (so nanoseconds that tie at the
  microsecond tie here too); datetimes and dates order as they are.

Events are ordered by (session, time, file, row in file): the order ``read_sessions`` gives (ties in
time keep the file's order, files in their sorted order). Decided and said in the error: the Spark
engine reads parquet only. CSV ids and ISO-8601 text times are typed by polars' parsers, which
Spark's would not match; ``recs prepare`` turns them into parquet once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from recs.columns import Col
from recs.errors import InputError, SchemaError
from recs.sessions import times
from recs.sessions.files import SessionFiles, is_parquet_name, session_files
from recs.sessions.io import _agreed_columns, _partition_columns, _runs, check_input_file, plan_parts
from recs.spark.files import local_uri
from recs.spark.uri import FINGERPRINT_OF, UriFiles, list_uri, uri_schema

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

# internal columns of the events frame: ordering time, file rank, row within the file
TIME, FILE, ROW = "_t", "_f", "_r"
_PATH = "_path"
PREPARE_HINT = "convert it once with recs prepare INPUT --out sessions.parquet"


@dataclass(frozen=True)
class SparkEvents:
    """The canonical events on Spark: session_id, item_id, interaction, _t, _f, _r.

    ``item_dtype`` is the polars type ``read_sessions`` gives item_id, so the vocabulary the driver
    builds from Spark's counts has the type the polars engine's has (Spark has no unsigned integers).
    """

    frame: DataFrame
    source: SessionFiles
    item_dtype: pl.DataType
    n_events: int
    n_sessions: int


def _spark_type(dtype: pl.DataType) -> str:
    return "bigint" if dtype.is_integer() else "string"


def _is_text(dtype: pl.DataType) -> bool:
    """String, or dictionary-encoded strings (polars reads them as Categorical; read_sessions makes them text)."""
    return dtype == pl.String or dtype == pl.Categorical or isinstance(dtype, pl.Enum)


def _check_types(schema: dict[str, pl.DataType], where: str) -> None:
    """The column types read_sessions accepts and Spark reads to the same values; else one message."""
    found = ", ".join(f"{c} ({t})" for c, t in schema.items())
    for col in (Col.SESSION, Col.ITEM):
        dtype = schema[col]
        if not (dtype.is_integer() or _is_text(dtype)):
            raise SchemaError(f"{where}: column {col!r} has type {dtype}, expected integer or string ids; "
                              f"columns found: {found}")
    if not _is_text(schema[Col.INTERACTION]):
        raise SchemaError(f"{where}: column {Col.INTERACTION!r} has type {schema[Col.INTERACTION]}, expected "
                          f"strings such as click, cart; columns found: {found}")
    ts = schema[Col.TIMESTAMP]
    if ts == pl.String:
        raise InputError(f"{where}: column {Col.TIMESTAMP!r} holds text; --engine spark reads parquet datetimes, "
                         f"dates or integer unix times: {PREPARE_HINT}")
    if isinstance(ts, pl.Datetime) and ts.time_unit == "ns":
        raise InputError(f"{where}: column {Col.TIMESTAMP!r} is in nanoseconds, which Spark does not read; "
                         f"{PREPARE_HINT}")
    if not (isinstance(ts, pl.Datetime) or ts == pl.Date or ts.is_integer()):
        raise SchemaError(f"{where}: column {Col.TIMESTAMP!r} has type {ts}, expected a datetime or integer "
                          f"unix times (--time-unit); columns found: {found}")


def _file_ranks(spark: SparkSession, src: SessionFiles) -> DataFrame:
    """(local path, rank in ``src.files``): the join that puts Spark's rows in the input's file order."""
    rows = [(os.path.abspath(f), i) for i, f in enumerate(src.files)]
    return spark.createDataFrame(rows, f"{_PATH} string, {FILE} int")


def _spark_path() -> Column:
    """``_metadata.file_path`` (``file:/tmp/a%20b/x.parquet``, ``s3a://bucket/a%20b/x.parquet``: Hadoop's
    URI) as the path part it names: the local path, or the URI's path, which is what ``_file_ranks`` holds
    for a URI input's members (``recs.spark.uri``). A literal ``+`` is protected first: Java's URL decoder
    would read it as a space, Hadoop never writes it for one."""
    from pyspark.sql import functions as F

    bare = F.regexp_replace(F.col("_metadata.file_path"), r"^[A-Za-z][A-Za-z0-9+.\-]+:(//[^/]*)?", "")
    return F.url_decode(F.regexp_replace(bare, r"\+", "%2B"))


def _time(dtype: pl.DataType, time_unit: str) -> Column:
    """The ordering time: integer times in microseconds, as read_sessions scales them (``ns`` truncated,
    so nanoseconds that tie at the microsecond tie here too); datetimes and dates as they are. Only
    evaluated on checked rows, so no in-range value overflows."""
    from pyspark.sql import functions as F

    if not dtype.is_integer():
        return F.col(Col.TIMESTAMP)
    v = f"CAST(`{Col.TIMESTAMP}` AS BIGINT)"
    us = {"s": f"{v} * 1000000", "ms": f"{v} * 1000", "us": v, "ns": f"{v} div 1000"}[time_unit]
    return F.expr(us)


@dataclass(frozen=True)
class ReadPlan:
    """What this machine learnt from the listing and the footers, before Spark is started."""

    source: SessionFiles
    partitions: dict[Path, dict[str, tuple[object, pl.DataType]]]
    schema: dict[str, pl.DataType]  # of the first part (all parts agree on the canonical columns)
    time_unit: str
    uris: UriFiles | None = None  # an input given as a Hadoop URI: its members' URIs (recs.spark.uri)

    def name(self, path: Path) -> str:
        """What Spark reads for a member and what messages name: its URI, or its local path."""
        return self.uris.uri(path) if self.uris is not None else str(path)

    def spark_uri(self, path: Path) -> str:
        """What Spark is given for a member: its URI, or a local one (``recs.spark.files.local_uri``)."""
        return self.uris.uri(path) if self.uris is not None else local_uri(path)

    def fingerprint(self) -> dict[str, str] | None:
        """The fingerprint of a URI input, from its listing (None for a local one: the caller hashes content)."""
        if self.uris is None:
            return None
        return {"fingerprint": self.uris.fingerprint(), "fingerprint_of": FINGERPRINT_OF}


def plan_read(path: str | Path, time_unit: str = times.DEFAULT_TIME_UNIT) -> ReadPlan:
    """List the input's members and check their footers (no Spark): a CSV, text times or a part that
    disagrees are refused before a JVM is started."""
    times.check_unit(time_unit)
    src = session_files(path)
    if src.single:
        check_input_file(src.files[0], "a sessions file (.parquet)")
        if src.files[0].suffix.lower() not in (".parquet", ".pq"):
            raise InputError(f"{src.given}: --engine spark reads parquet (a file, a directory of parts or a glob); "
                             f"{PREPARE_HINT}")
    first = plan_parts(src).schemas[src.files[0]]  # read_sessions' footer rules, one implementation
    partitions = _partition_columns(src)
    _check_types(first, src.given)
    return ReadPlan(src, partitions, first, time_unit)


def plan_read_uri(spark: SparkSession, uri: str, time_unit: str = times.DEFAULT_TIME_UNIT) -> ReadPlan:
    """``plan_read`` for a Hadoop URI: members listed and footers read through the driver's Hadoop client
    (``recs.spark.uri``), checked by the same rules and with the same messages as local parts."""
    times.check_unit(time_unit)
    listed = list_uri(spark, uri)
    src = listed.source
    if src.single and not is_parquet_name(src.files[0]):
        raise InputError(f"{uri}: --engine spark reads parquet (a file, a directory of parts or a glob); "
                         f"{PREPARE_HINT}")
    partitions = _partition_columns(src)
    schemas: dict[Path, dict[str, pl.DataType]] = {}
    for member in listed.members:  # plan_parts' loop, with footers read through Hadoop
        schema = uri_schema(spark, member)
        for key, (value, dtype) in partitions[member.path].items():
            if key in schema:
                raise SchemaError(f"{member.uri}: column {key!r} is both in the file and in its path ({key}={value}); "
                                  "keep one of them")
            schema[key] = dtype
        schemas[member.path] = schema
    try:
        _agreed_columns(src, schemas)
    except SchemaError as e:  # the parts' messages name their path parts: name the URIs instead
        text = str(e)
        for member in listed.members:
            text = text.replace(str(member.path), member.uri)
        raise SchemaError(text) from None
    first = schemas[src.files[0]]
    _check_types(first, uri)
    return ReadPlan(src, partitions, first, time_unit, listed)


def read_spark_sessions(spark: SparkSession, path: str | Path | ReadPlan,
                        time_unit: str = times.DEFAULT_TIME_UNIT) -> SparkEvents:
    """Read and check a sessions input on Spark (module doc); the checks run before any counting.
    ``path`` may be the plan ``plan_read`` made of it (then ``time_unit`` is the plan's)."""
    from pyspark.sql import functions as F

    plan = path if isinstance(path, ReadPlan) else plan_read(path, time_unit)
    src, partitions, first, time_unit = plan.source, plan.partitions, plan.schema, plan.time_unit
    runs = _runs(src, partitions)
    frames = [spark.read.parquet(*(plan.spark_uri(f) for f in files)) for files, _values in runs]
    ranks = _file_ranks(spark, src)
    parts = []
    for frame, (_files, values) in zip(frames, runs, strict=True):
        stored = [F.col(c) for c in Col.REQUIRED if c not in values]
        filled = [F.lit(v).cast(_spark_type(t)).alias(k) for k, (v, t) in values.items() if k in Col.REQUIRED]
        parts.append(frame.select(*stored, *filled, _spark_path().alias(_PATH),
                                  F.col("_metadata.row_index").alias(ROW)).select(*Col.REQUIRED, _PATH, ROW))
    raw = parts[0]
    for p in parts[1:]:
        raw = raw.unionByName(p)
    raw = raw.join(F.broadcast(ranks), _PATH, "left")
    interaction = F.regexp_replace(F.col(Col.INTERACTION), r"(?U)^\s+|\s+$", "")
    events = raw.select(
        Col.SESSION, Col.ITEM, interaction.alias(Col.INTERACTION), Col.TIMESTAMP,
        _time(first[Col.TIMESTAMP], time_unit).alias(TIME), FILE, ROW, _PATH,
    )
    n_events, n_sessions = _validate(events, plan, first[Col.TIMESTAMP], time_unit)
    item = pl.String if _is_text(first[Col.ITEM]) else first[Col.ITEM]
    return SparkEvents(events.drop(Col.TIMESTAMP, _PATH), src, item, n_events, n_sessions)


def _validate(events: DataFrame, plan: ReadPlan, ts: pl.DataType, time_unit: str) -> tuple[int, int]:
    """One pass: the first (file, row) of each kind of bad value, the event count and the session count."""
    from pyspark.sql import functions as F

    src = plan.source
    where = F.struct(F.col(FILE), F.col(ROW))
    checks = {f"null:{c}": F.col(c).isNull() for c in Col.REQUIRED}
    checks["blank"] = F.col(Col.INTERACTION) == ""
    if ts.is_integer():
        lo, hi = times.bounds(time_unit)
        v = F.col(Col.TIMESTAMP)  # compared uncast: a UInt64 beyond Int64 is refused, not an overflow
        checks["range"] = v.isNotNull() & ((v < F.lit(lo)) | (v >= F.lit(hi)))
    aggs = [F.min(F.when(bad, where)).alias(name) for name, bad in checks.items()]
    unmatched = F.min(F.when(F.col(FILE).isNull(), F.col(_PATH))).alias("unmatched")
    row = events.agg(F.count(F.lit(1)).alias("n"), F.count_distinct(Col.SESSION).alias("s"), unmatched,
                     *aggs).first()
    if row["unmatched"] is not None:  # a path Spark names differently from the listing: refuse, never drop
        raise InputError(f"{src.given}: Spark read {row['unmatched']}, which is not one of the input's files")
    if row["n"] == 0:
        raise InputError(f"{src.given}: has no rows" + ("" if src.single else f" in any of its {len(src.files)} files"))

    def at(name: str) -> tuple[str, int] | None:
        hit = row[name]
        if hit is None:
            return None
        return (src.given if src.single else plan.name(src.files[hit[0]])), int(hit[1])

    for col in Col.REQUIRED:
        if (hit := at(f"null:{col}")) is not None:
            raise SchemaError(f"{hit[0]}: column {col!r} is empty (null) in row {hit[1] + 1}")
    if "range" in checks and (hit := at("range")) is not None:
        f, r = row["range"]
        value = events.filter((F.col(FILE) == f) & (F.col(ROW) == r)).select(Col.TIMESTAMP).first()[0]
        why = times.range_message(value, time_unit)
        raise InputError(f"{hit[0]}: column {Col.TIMESTAMP!r} row {hit[1] + 1}: {why}")
    if (hit := at("blank")) is not None:
        raise SchemaError(f"{hit[0]}: column {Col.INTERACTION!r} is blank in row {hit[1] + 1}")
    return int(row["n"]), int(row["s"])
