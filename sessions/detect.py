"""Which format a log is in: detection from its first line or parquet schema, and the user's overrides.

A file that matches no known format is an error that asks the user to name it, rather than a
confident wrong guess.
"""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import replace
from pathlib import Path

import polars as pl

from recs.columns import Col
from recs.config import AUTO
from recs.errors import ConfigError, InputError
from recs.sessions.formats import BUILTINS, CANONICAL_OF, EVENT_SYNONYMS, FIELDS, FORMAT_NAMES, Format, normalise_field


def open_text(path: Path):
    """A text file (gzip unpacked on the fly) for reading; undecodable bytes are replaced."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def first_line(path: Path) -> str:
    """The first non-empty line of a text file (gzip read transparently), without its line ending."""
    try:
        with open_text(path) as f:
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


def split_csv_line(line: str, separator: str = ",") -> list[str]:
    return next(csv.reader([line], delimiter=separator), [])


def is_int(text: str) -> bool:
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
            raise InputError(f"{path}: cannot read as parquet ({first_message(e)})") from None
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
    fields = [f.strip() for f in split_csv_line(line)]
    found = _detect_columns(set(fields))
    if found in BUILTINS or found == "generic":
        return found
    taobao = BUILTINS["taobao"]
    if len(fields) == len(taobao.names) and is_int(fields[0]) and is_int(fields[4]) and fields[3] in taobao.events:
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
    if name == AUTO:
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
    if time_unit and time_unit != AUTO:
        fmt = replace(fmt, time_unit=time_unit)
    return fmt


def first_message(e: BaseException) -> str:
    """The first line of an exception's message (polars packs a whole report into one), else its type."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
