"""Reading a log as a format, lazily: internal field names, the source's values and the line of each row.

Every reader returns a lazy frame with the same internal fields (``session, user, item, event,
time, category, shop``, whichever the source has) plus ``_line``, the 1-based physical line (or
row, for parquet) each event came from, so that a bad row can be reported where the user can find
it. Reading is lazy (``scan_csv``/``scan_ndjson``/``scan_parquet``) so a log larger than memory is
never loaded whole; values stay as the source wrote them and are parsed in ``recs.sessions.parse``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl

from recs.errors import ConfigError, InputError, SchemaError
from recs.sessions.detect import first_line, first_message, guess_hint, is_int, open_text, split_csv_line
from recs.sessions.formats import CANONICAL_OF, LINE, Format


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
        fields = split_csv_line(line, fmt.separator)
        if len(fields) != len(fmt.names):
            raise InputError(
                f"{display}: line 1: {len(fields)} fields, a {fmt.name} log has {len(fmt.names)} "
                f"({','.join(fmt.names)}) and no header{guess_hint(path)}"
            )
        if not is_int(fields[-1]):
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
        raise InputError(f"{display}: cannot read as {fmt.name} ({fmt.layout}): {first_message(e)}") from None
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
        with open_text(path) as f:
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
