"""Readers for raw marketplace logs: the built-in formats, format detection and the generic mapping.

Every reader returns a lazy frame with the same internal fields (``session, user, item, event,
time, category, shop``, whichever the source has) plus ``_line``, the 1-based physical line (or
row, for parquet) each event came from, so that a bad row can be reported where the user can find
it. Reading is lazy (``scan_csv``/``scan_ndjson``/``scan_parquet``) so a log larger than memory is
never loaded whole; values stay as the source wrote them and are parsed in ``recs.sessions.prepare``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from recs.columns import Col, Interaction
from recs.errors import ConfigError, InputError, SchemaError
from recs.sessions import times
from recs.sessions.io import datetime_to_utc

# Internal field names, also the left-hand side of ``--col FIELD=SOURCE_COLUMN``.
FIELDS = ("session", "user", "item", "event", "time", "category", "shop")
FIELD_ALIASES = {
    "session_id": "session",
    "user_id": "user",
    "item_id": "item",
    "interaction": "event",
    "event_type": "event",
    "timestamp": "time",
    "category_id": "category",
    "shop_id": "shop",
}
ID_FIELDS = ("session", "user", "item", "category", "shop")
CANONICAL_OF = {
    "session": Col.SESSION,
    "user": Col.USER,
    "item": Col.ITEM,
    "event": Col.INTERACTION,
    "time": Col.TIMESTAMP,
    "category": Col.CATEGORY,
    "shop": Col.SHOP,
}
LINE = "_line"
FILE = "_file"

# Raw event names seen in public logs, lower-cased, and what they mean. ``None``: a known event that
# is not an interaction with an item we learn from (dropped and counted, or kept with a flag).
EVENT_SYNONYMS: dict[str, str | None] = {
    "click": Interaction.CLICK,
    "clicks": Interaction.CLICK,
    "pv": Interaction.CLICK,
    "view": Interaction.CLICK,
    "views": Interaction.CLICK,
    "detail": Interaction.CLICK,
    "favorite": Interaction.FAVORITE,
    "favourite": Interaction.FAVORITE,
    "fav": Interaction.FAVORITE,
    "wishlist": Interaction.FAVORITE,
    "cart": Interaction.CART,
    "carts": Interaction.CART,
    "addtocart": Interaction.CART,
    "add_to_cart": Interaction.CART,
    "purchase": Interaction.PURCHASE,
    "purchases": Interaction.PURCHASE,
    "buy": Interaction.PURCHASE,
    "order": Interaction.PURCHASE,
    "orders": Interaction.PURCHASE,
    "transaction": Interaction.PURCHASE,
    "remove_from_cart": None,
}

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


@dataclass(frozen=True)
class Format:
    """How to read one kind of log: file layout, which source column is which field, event names."""

    name: str
    layout: str  # "csv", "otto" (session-per-line JSON), "ndjson", "parquet"
    columns: dict[str, str]  # field -> source column
    events: dict[str, str | None]  # raw event (lower case) -> canonical interaction, None = drop
    time_unit: str = "auto"  # unit of integer timestamps
    header: bool = True
    names: tuple[str, ...] = ()  # column names of a headerless CSV
    separator: str = ","
    describe: str = ""
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def has_session(self) -> bool:
        return "session" in self.columns


BUILTINS: dict[str, Format] = {
    "otto": Format(
        name="otto",
        layout="otto",
        columns={"session": "session", "item": "aid", "time": "ts", "event": "type"},
        events={"clicks": Interaction.CLICK, "carts": Interaction.CART, "orders": Interaction.PURCHASE},
        time_unit="ms",
        describe="OTTO JSONL: one session per line, events aid/ts (ms)/type clicks|carts|orders",
    ),
    "taobao": Format(
        name="taobao",
        layout="csv",
        columns={"user": "user_id", "item": "item_id", "category": "category_id", "event": "behavior_type",
                 "time": "timestamp"},
        events={"pv": Interaction.CLICK, "fav": Interaction.FAVORITE, "cart": Interaction.CART,
                "buy": Interaction.PURCHASE},
        time_unit="s",
        header=False,
        names=("user_id", "item_id", "category_id", "behavior_type", "timestamp"),
        describe="Taobao/Tianchi UserBehavior CSV without header: user_id,item_id,category_id,pv|fav|cart|buy,unix s",
    ),
    "rees46": Format(
        name="rees46",
        layout="csv",
        columns={"session": "user_session", "user": "user_id", "item": "product_id", "category": "category_id",
                 "event": "event_type", "time": "event_time"},
        events={"view": Interaction.CLICK, "cart": Interaction.CART, "purchase": Interaction.PURCHASE,
                "remove_from_cart": None},
        describe="REES46 multi-category store CSV: event_time,event_type,product_id,...,user_id,user_session",
    ),
    "retailrocket": Format(
        name="retailrocket",
        layout="csv",
        columns={"user": "visitorid", "item": "itemid", "event": "event", "time": "timestamp"},
        events={"view": Interaction.CLICK, "addtocart": Interaction.CART, "transaction": Interaction.PURCHASE},
        time_unit="ms",
        describe="RetailRocket events.csv: timestamp (ms),visitorid,event view|addtocart|transaction,itemid,...",
    ),
}
FORMAT_NAMES = ("auto", *BUILTINS, "generic")


def _open_text(path: Path):
    import gzip

    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def first_line(path: Path) -> str:
    """The first non-empty line of a text file (gzip read transparently), without its line ending."""
    try:
        with _open_text(path) as f:
            for line in f:
                if line.strip():
                    return line.rstrip("\r\n")
    except (OSError, EOFError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    return ""


def layout_of(path: Path) -> str:
    """File layout by extension (a trailing ``.gz`` is looked through)."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "ndjson"
    return "csv"


def _split_csv_line(line: str, separator: str = ",") -> list[str]:
    return next(csv.reader([line], delimiter=separator), [])


def _is_int(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def _canonical_header(cols: set[str]) -> bool:
    return {Col.ITEM, Col.INTERACTION, Col.TIMESTAMP} <= cols and bool({Col.SESSION, Col.USER} & cols)


def _detect_columns(cols: set[str]) -> str | None:
    if {"event_time", "event_type", "product_id", "user_session"} <= cols:
        return "rees46"
    if {"timestamp", "visitorid", "event", "itemid"} <= cols:
        return "retailrocket"
    if _canonical_header(cols):
        return "generic"
    return None


def detect_format(path: str | Path) -> str:
    """Name the built-in format of a log from its first line (or parquet schema).

    Returns ``otto``, ``taobao``, ``rees46``, ``retailrocket`` or ``generic`` (a file that already has
    canonical column names). Raises InputError when the file matches none, so that a user is asked
    to name the format instead of getting a confident wrong guess.
    """
    path = Path(path)
    layout = layout_of(path)
    if layout == "parquet":
        try:
            cols = set(pl.read_parquet_schema(path))
        except Exception as e:  # polars and pyarrow raise several types for a damaged file
            raise InputError(f"{path}: cannot read as parquet ({_first(e)})") from None
        found = _detect_columns(cols)
        if found in BUILTINS or found == "generic":
            return found
        raise InputError(
            f"{path}: cannot tell the log format from its columns ({', '.join(sorted(cols))}); "
            "map them with --col item=... --col interaction=... --col timestamp=... --col session=...|user=..."
        )
    line = first_line(path)
    if not line:
        raise InputError(f"{path}: file is empty")
    if line.lstrip().startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            raise InputError(f"{path}: line 1: starts like JSON but is not valid JSON") from None
        if isinstance(obj, dict) and "session" in obj and isinstance(obj.get("events"), list):
            return "otto"
        if isinstance(obj, dict) and _canonical_header(set(obj)):
            return "generic"
        keys = ", ".join(obj) if isinstance(obj, dict) else type(obj).__name__
        raise InputError(
            f"{path}: line 1: JSON with keys {keys} is not a known log format; "
            "use --format generic with --col item=... --col interaction=... --col timestamp=..."
        )
    fields = [f.strip() for f in _split_csv_line(line)]
    found = _detect_columns(set(fields))
    if found in BUILTINS or found == "generic":
        return found
    taobao = BUILTINS["taobao"]
    if len(fields) == len(taobao.names) and _is_int(fields[0]) and _is_int(fields[4]) and fields[3] in taobao.events:
        return "taobao"
    raise InputError(
        f"{path}: line 1: cannot tell the log format from {line[:80]!r}; name it with --format "
        f"({', '.join(FORMAT_NAMES[1:])}) or map columns with --col"
    )


def guess_hint(path: Path) -> str:
    """' (it looks like a <fmt> log)' when detection recognises the file, else ''; for error messages."""
    try:
        return f" (it looks like a {detect_format(path)} log; try --format auto)"
    except InputError:
        return ""


def normalise_field(name: str) -> str:
    key = name.strip().lower()
    key = FIELD_ALIASES.get(key, key)
    if key not in FIELDS:
        raise ConfigError(
            f"--col {name}=...: unknown field {name!r}; fields are {', '.join(FIELDS)} (or {', '.join(FIELD_ALIASES)})"
        )
    return key


def resolve_format(
    name: str,
    path: Path,
    columns: dict[str, str] | None = None,
    events: dict[str, str | None] | None = None,
    time_unit: str | None = None,
) -> Format:
    """The Format to read ``path`` with: ``name`` (or detected when ``auto``), overridden by user options.

    ``columns`` (field -> source column) replace the format's own; with ``auto`` they make the
    format ``generic``. ``events`` extend and override the format's event table.
    """
    columns = {normalise_field(k): v for k, v in (columns or {}).items()}
    if name == "auto":
        name = "generic" if columns else detect_format(path)
    if name not in BUILTINS and name != "generic":
        raise ConfigError(f"--format {name!r}: unknown; choose one of {', '.join(FORMAT_NAMES)}")
    if name == "generic":
        fmt = Format(name="generic", layout=layout_of(path), columns={}, events=dict(EVENT_SYNONYMS),
                     describe="any CSV/parquet/NDJSON by column mapping")
        if not columns:
            columns = {f: CANONICAL_OF[f] for f in FIELDS}  # a file already in canonical column names
            fmt = replace(fmt, notes={"columns": "canonical names"})
    else:
        fmt = BUILTINS[name]
    merged = {**fmt.columns, **columns}
    fmt = replace(fmt, columns=merged, events={**fmt.events, **(events or {})})
    if time_unit and time_unit != "auto":
        fmt = replace(fmt, time_unit=time_unit)
    return fmt


def _first(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def check_layout(path: Path, fmt: Format, display: str) -> None:
    """Cheap sniff of the first line before a full scan, so a wrong ``--format`` fails with a clear message."""
    if fmt.layout == "parquet":
        return
    line = first_line(path)
    if not line:
        raise InputError(f"{display}: file is empty")
    if fmt.layout == "otto":
        try:
            obj = json.loads(line)
            ok = isinstance(obj, dict) and "session" in obj and isinstance(obj.get("events"), list)
        except ValueError:
            ok = False
        if not ok:
            raise InputError(
                f"{display}: line 1: not an OTTO session line (expected JSON with 'session' and 'events')"
                f"{guess_hint(path)}"
            )
        return
    if fmt.layout == "csv" and not fmt.header:
        fields = _split_csv_line(line, fmt.separator)
        if len(fields) != len(fmt.names):
            raise InputError(
                f"{display}: line 1: {len(fields)} fields, a {fmt.name} log has {len(fmt.names)} "
                f"({','.join(fmt.names)}) and no header{guess_hint(path)}"
            )
        if not _is_int(fields[-1]):
            raise InputError(
                f"{display}: line 1: column {fmt.names[-1]!r} is {fields[-1]!r}, expected unix seconds; "
                f"a {fmt.name} log has no header row{guess_hint(path)}"
            )
    elif fmt.layout == "csv" and line.lstrip().startswith("{"):
        raise InputError(f"{display}: line 1: is JSON, not CSV{guess_hint(path)}")


def scan(path: Path, fmt: Format, display: str) -> pl.LazyFrame:
    """Lazily read one file as ``fmt``: internal field names, source values and a ``_line`` column.

    Text formats are read with every column as a string so a stray value never aborts the scan; it
    becomes a counted bad row with its line number instead.
    """
    check_layout(path, fmt, display)
    try:
        if fmt.layout == "otto":
            schema = {
                "session": pl.Int64,
                "events": pl.List(pl.Struct({"aid": pl.Int64, "ts": pl.Int64, "type": pl.String})),
            }
            lf = (
                pl.scan_ndjson(path, schema=schema, row_index_name=LINE, row_index_offset=1)
                .explode("events")
                .unnest("events")
            )
        elif fmt.layout == "csv":
            lf = pl.scan_csv(
                path,
                has_header=fmt.header,
                new_columns=list(fmt.names) or None,
                separator=fmt.separator,
                infer_schema=False,
                row_index_name=LINE,
                row_index_offset=2 if fmt.header else 1,
                raise_if_empty=False,
                empty_string_is_null=True,
            )
        elif fmt.layout == "ndjson":
            lf = pl.scan_ndjson(path, infer_schema_length=10_000, row_index_name=LINE, row_index_offset=1)
        else:
            lf = pl.scan_parquet(path, row_index_name=LINE, row_index_offset=1)
        found = lf.collect_schema()
    except pl.exceptions.PolarsError as e:
        raise InputError(f"{display}: cannot read as {fmt.name} ({fmt.layout}): {_first(e)}") from None
    missing = {f: c for f, c in fmt.columns.items() if c not in found}
    required = {"item", "event", "time"}
    absent_required = [f for f in missing if f in required]
    if fmt.name == "generic" and fmt.notes.get("columns") == "canonical names":
        # columns defaulted to canonical names: only those present are used
        if absent_required or ("session" in missing and "user" in missing):
            names = [CANONICAL_OF[f] for f in (*absent_required, *(("session",) if "session" in missing else ()))]
            raise SchemaError(
                f"{display}: missing column{'s' if len(names) > 1 else ''} {', '.join(map(repr, names))}; "
                f"columns found: {', '.join(c for c in found if c != LINE)}. Map your columns with "
                "--col item=... --col interaction=... --col timestamp=... --col session=...|user=..."
            )
        cols = {f: c for f, c in fmt.columns.items() if c in found}
    else:
        if missing:
            f, c = next(iter(missing.items()))
            raise SchemaError(
                f"{display}: missing column {c!r} (the {f} column of a {fmt.name} log); columns found: "
                f"{', '.join(c for c in found if c != LINE)}{guess_hint(path)}"
            )
        absent = [f for f in required if f not in fmt.columns]
        if absent or not ({"session", "user"} & set(fmt.columns)):
            need = absent or ["session or user"]
            raise ConfigError(
                f"{display}: no column mapped to {', '.join(need)}; add --col {need[0].split()[0]}=SOURCE_COLUMN"
            )
        cols = dict(fmt.columns)
    return lf.select(pl.col(LINE).cast(pl.UInt64), *(pl.col(c).alias(f) for f, c in cols.items()))


def find_bad_text_line(path: Path, fmt: Format) -> str | None:
    """Locate the first line a text reader choked on (run only after a scan failed, so speed is secondary).

    polars reports *that* a CSV row has too many fields or a JSON line is broken, not *where*; this
    walks the file once with the standard library to name the line.
    """
    try:
        with _open_text(path) as f:
            if fmt.layout in ("otto", "ndjson"):
                for n, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        json.loads(line.rstrip("\r\n"))
                    except ValueError as e:
                        return f"line {n}: invalid JSON ({e.msg} at character {e.colno})"
                return None
            reader = csv.reader(f, delimiter=fmt.separator)
            width = None
            for row in reader:
                n = reader.line_num
                if not row:
                    continue
                if width is None:
                    width = len(fmt.names) if fmt.names else len(row)
                if len(row) != width:
                    return f"line {n}: {len(row)} fields, expected {width}"
    except (OSError, EOFError, csv.Error) as e:
        return f"{e}"
    return None


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
        return as_datetime
    as_int = _as_int(c, dtype)
    if as_int is None:
        return pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    if dtype.is_numeric():
        return times.epoch_to_utc(as_int, unit)
    text = c.str.strip_chars().str.replace(r"\s*(?:UTC|GMT|Z)$", "")
    parsed = [text.str.to_datetime(f, strict=False, time_zone="UTC", time_unit="us") for f in _DATETIME_FORMATS]
    return pl.when(as_int.is_not_null()).then(times.epoch_to_utc(as_int, unit)).otherwise(pl.coalesce(parsed))


def time_out_of_range(c: pl.Expr, dtype: pl.DataType, unit: str) -> pl.Expr:
    """True where a time value is an integer outside 1990..2100 in ``unit`` (a bad row of its own kind)."""
    as_int = _as_int(c, dtype)
    if as_int is None:
        return pl.lit(False)
    return (as_int.is_not_null() & ~times.epoch_in_range(as_int, unit)).fill_null(False)
