"""``recs prepare``: raw marketplace logs in, canonical sessions out, and an account of every row.

The pipeline runs in three lazy passes over temporary parquet files beside the output, so a log
larger than memory streams through polars instead of being loaded whole:

1. **parse**: scan every input (gzip is unpacked to a temporary file first, which is also where a
   truncated archive is caught), map columns and event names, parse times, and tag each row that
   cannot be used with a reason (``recs.sessions.parse``). Nothing is dropped yet, so every drop
   can be counted and located.
2. **sessionize and dedupe**: sort by (session or user, time); cut users' streams at inactivity
   gaps when the source has no session id; collapse immediate repeats of the same token.
3. **filter and write**: ``--min-item-count``, ``--min-session-len``, ``--paper-filter``; the result
   goes through ``recs.atomic.writing`` so a failed run never leaves a half-written output.

``prepare`` runs one function per step (inputs, then the three passes, then the report), each
handing the next a small record of what it produced.

The returned report says how many rows each step removed and where the first bad row was, because
a sessions file that is silently shorter than its log is worse than an error.
"""

from __future__ import annotations

import gzip
import shutil
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from glob import glob, has_magic
from pathlib import Path
from typing import Any

import polars as pl

from recs.atomic import Outputs, no_space_error, out_of_space, scratch_dir, writing
from recs.columns import Col, Interaction
from recs.config import ON_ERRORS, PrepareConfig  # the options of a run, defined with the other configs
from recs.errors import ConfigError, InputError
from recs.paths import check_paths
from recs.progress import NullProgress, Progress
from recs.sessions.detect import first_message, resolve_format
from recs.sessions.formats import CANONICAL_OF, FILE, ID_FIELDS, LINE, Format
from recs.sessions.ids import apply_id_types
from recs.sessions.ids import id_types as resolve_id_types
from recs.sessions.io import check_input_file, csv_separator, sessions_output_kind, validate_sessions
from recs.sessions.parse import (
    DETAIL,
    ERROR_REASONS,
    RAW_EVENT,
    REASON,
    drop_summary,
    error_message,
    mapped_counts,
    tag_rows,
    unmapped_counts,
)
from recs.sessions.scan import find_bad_text_line, scan
from recs.sessions.sessionize import dedupe_mask, sessionize

__all__ = ["PrepareConfig", "expand_inputs", "parse_mapping", "prepare"]

KEY = "_key"
PAPER_MIN_EVENTS = 4  # "more than 3 item-interaction pairs"


@dataclass(frozen=True)
class _Inputs:
    """The files of a run, readable (gzip unpacked), and the one format they are in."""

    readable: list[Path]
    displays: list[str]  # the paths as given, for messages and the report
    fmts: list[Format]  # one per file, all of the same name
    fmt: Format
    sessionize: bool  # cut users' streams at --gap (else keep the log's session column)


@dataclass(frozen=True)
class _Parsed:
    """Pass 1: every row tagged, and the account of the rows that cannot be used."""

    rows: pl.LazyFrame
    rows_read: int
    dropped: dict[str, dict[str, Any]]
    unmapped: dict[str, int]
    mapped: list[dict[str, Any]]  # raw event name -> interaction, events (usable rows, before dedupe and filters)


@dataclass(frozen=True)
class _Sessions:
    """Pass 2: the usable rows with canonical ids, in sessions, deduplicated."""

    rows: pl.LazyFrame
    id_types: dict[str, str]
    rows_usable: int
    after_dedupe: int


@dataclass(frozen=True)
class _Written:
    """Pass 3: what the filters removed and what the written file holds."""

    after_items: int
    sessions_before: int
    min_len: int
    counts: dict[str, Any]


def parse_mapping(pairs: Sequence[str], option: str) -> dict[str, str]:
    """``["a=b", "c="]`` -> ``{"a": "b", "c": ""}``; a clear ConfigError for a pair without ``=``."""
    out: dict[str, str] = {}
    for pair in pairs:
        left, sep, right = pair.partition("=")
        if not sep or not left.strip():
            raise ConfigError(f"{option} {pair!r}: expected NAME=VALUE")
        out[left.strip()] = right.strip()
    return out


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Existing, non-empty files for the given paths and globs (a quoted glob is expanded here)."""
    paths: list[Path] = []
    for given in inputs:
        text = str(given)
        if not Path(text).exists() and has_magic(text):
            matched = sorted(glob(text, recursive=True))
            if not matched:
                raise InputError(f"{text}: no file matches this pattern")
            paths.extend(Path(m) for m in matched)
        else:
            paths.append(Path(text))
    if not paths:
        raise InputError("no input files given")
    for p in paths:
        check_input_file(p, "a log file")
    return paths


def _gunzip(src: Path, dest: Path) -> Path:
    """Unpack a gzip file in chunks (bounded memory); a truncated or damaged archive is an InputError."""
    try:
        with gzip.open(src, "rb") as fin, open(dest, "wb") as fout:
            shutil.copyfileobj(fin, fout, length=1 << 22)
    except (EOFError, OSError, zlib.error) as e:
        raise InputError(f"{src}: truncated or damaged gzip file ({e}); nothing was written") from None
    if dest.stat().st_size == 0:
        raise InputError(f"{src}: file is empty (after gunzip)")
    return dest


def _locate_scan_failure(paths: list[Path], displays: list[str], fmts: list[Format], err: Exception) -> str:
    for p, d, f in zip(paths, displays, fmts, strict=True):
        if f.layout != "parquet":
            found = find_bad_text_line(p, f)
            if found:
                return f"{d}: {found}"
    return f"{displays[0] if len(displays) == 1 else ', '.join(displays)}: cannot read: {first_message(err)}"


def _sink(lf: pl.LazyFrame, path: Path, kind: str = "parquet") -> None:
    """Stream ``lf`` to ``path`` as parquet or as CSV (tab-separated when ``path`` ends in .tsv)."""
    if kind == "parquet":
        lf.sink_parquet(path, engine="streaming")
    else:
        lf.sink_csv(path, separator=csv_separator(path), engine="streaming")


def prepare(
    inputs: Sequence[str | Path],
    out: str | Path,
    config: PrepareConfig | None = None,
    progress: Progress | None = None,
    outputs: Outputs | None = None,
    also_written: Sequence[tuple[str, str | Path | None]] = (),
) -> dict[str, Any]:
    """Read raw logs, write canonical sessions to ``out`` atomically, and return the report.

    With ``outputs`` the sessions file is staged there, to appear together with the caller's other
    outputs (the CLI's ``--json``) when it commits. ``also_written``: those other outputs, as (option,
    path), checked with ``out`` against the expanded inputs before anything is read.

    Raises InputError for unreadable or malformed input (naming file and line), SchemaError for a
    missing column, ConfigError for inconsistent options; in every case ``out`` is left untouched.
    """
    cfg = config or PrepareConfig()
    cfg.validate()
    progress = progress or NullProgress()
    started = time.perf_counter()
    out = Path(out)
    out_kind = sessions_output_kind(out, "--out")
    paths = expand_inputs(inputs)
    # the expanded inputs: a quoted glob must not hide that an output is one of the files it matches
    check_paths([("INPUT", p) for p in paths], [("--out", out), *also_written])

    try:
        with scratch_dir(out, outputs=outputs) as work:
            src = _resolve_inputs(paths, cfg, work, progress)
            parsed = _parse_and_tag(src, cfg, work, progress)
            sessions = _sessionize_and_dedupe(parsed, src, cfg, work, progress)
            written = _filter_and_write(sessions, cfg, out, out_kind, outputs, progress)
    except (OSError, pl.exceptions.PolarsError) as e:
        # the work files beside `out` are written and read back between the passes: on a full disk a
        # sink fails (or leaves a short file that reads back as "Invalid thrift"); say so, not a traceback
        if out_of_space(e, out.parent):
            raise no_space_error(out) from None
        raise
    return _report(src, parsed, sessions, written, cfg, out, started)


def _resolve_inputs(paths: list[Path], cfg: PrepareConfig, work: Path, progress: Progress) -> _Inputs:
    """Unpack gzip inputs into ``work``, resolve one format for all files, decide how sessions are made."""
    readable: list[Path] = []
    with progress.stage("unpack", total=len(paths), unit="file") as bar:
        for i, p in enumerate(paths):
            if p.name.lower().endswith(".gz"):
                readable.append(_gunzip(p, work / f"{i}-{p.name[:-3]}"))
            else:
                readable.append(p)
            bar.update(1)
    displays = [str(p) for p in paths]
    fmts = [resolve_format(cfg.format, r, cfg.columns, cfg.events, cfg.time_unit) for r in readable]
    names = {f.name for f in fmts}
    if len(names) > 1:
        detail = ", ".join(f"{d} is {f.name}" for d, f in zip(displays, fmts, strict=True))
        raise InputError(f"inputs are in different formats ({detail}); prepare them separately")
    fmt = fmts[0]
    has_session = "session" in fmt.columns
    do_sessionize = (not has_session) if cfg.sessionize is None else cfg.sessionize
    if not do_sessionize and not has_session:
        raise ConfigError(
            f"{displays[0]}: a {fmt.name} log has no session column; drop --keep-sessions (sessions are "
            f"then cut per user at --gap) or map one with --col session=COLUMN"
        )
    return _Inputs(readable, displays, fmts, fmt, do_sessionize)


def _parse_and_tag(src: _Inputs, cfg: PrepareConfig, work: Path, progress: Progress) -> _Parsed:
    """Pass 1: scan every file, tag each row with the reason it cannot be used, count the drops.

    Bad rows stop the run here (naming the first) unless ``--on-error skip``.
    """
    frames = []
    for i, (r, d) in enumerate(zip(src.readable, src.displays, strict=True)):
        lf = scan(r, src.fmt, d).with_columns(pl.lit(i, dtype=pl.UInt32).alias(FILE))
        frames.append(lf)
    raw = pl.concat(frames, how="diagonal_relaxed")
    parsed_path = work / "parsed.parquet"
    with progress.stage("parse", unit="file"):
        try:
            _sink(tag_rows(raw, src.fmt, keep_session=not src.sessionize, keep_unmapped=cfg.keep_unmapped),
                  parsed_path)
        except pl.exceptions.PolarsError as e:
            if out_of_space(e, work):  # the work file could not be written: not the input's fault
                raise no_space_error(parsed_path) from None
            raise InputError(_locate_scan_failure(src.readable, src.displays, src.fmts, e)) from None
    parsed = pl.scan_parquet(parsed_path)
    rows_read = parsed.select(pl.len()).collect().item()
    if rows_read == 0:
        raise InputError(f"{', '.join(src.displays)}: no data rows (only a header, or empty)")

    dropped = drop_summary(parsed, src.displays, src.fmt.layout)
    errors = {r: v for r, v in dropped.items() if r in ERROR_REASONS}
    if errors and cfg.on_error == ON_ERRORS[0]:  # "fail"
        raise InputError(error_message(errors, src.fmt))
    unmapped = unmapped_counts(parsed, cfg.keep_unmapped, src.fmt)
    return _Parsed(parsed, rows_read, dropped, unmapped, mapped_counts(parsed))


def _sessionize_and_dedupe(
    parsed: _Parsed, src: _Inputs, cfg: PrepareConfig, work: Path, progress: Progress
) -> _Sessions:
    """Pass 2: canonical ids and names, sessions (cut at --gap or kept), immediate repeats collapsed."""
    good = parsed.rows.filter(pl.col(REASON).is_null()).drop(REASON, DETAIL, RAW_EVENT)
    # ids from text become Int64 only when every value is a canonical integer; parquet keeps its types
    id_types = resolve_id_types(good, ID_FIELDS, text=src.fmt.layout != "parquet")
    good = apply_id_types(good, id_types).rename({f: CANONICAL_OF[f] for f in id_types})
    rows_ok = parsed.rows_read - sum(v["rows"] for v in parsed.dropped.values())
    tiebreak = (FILE, LINE)
    if src.sessionize:
        key = Col.USER if "user" in id_types else Col.SESSION
        if key == Col.SESSION:
            good = good.rename({Col.SESSION: KEY})
            key = KEY
        elif Col.SESSION in good.collect_schema():
            good = good.drop(Col.SESSION)
    else:
        key = Col.SESSION
    # Sorting needs a partition in memory; cutting the log by a hash of the user (or session) key
    # bounds that to ~partition_rows rows, and no session spans two partitions.
    n_parts = max(1, -(-rows_ok // cfg.partition_rows))
    part_paths = []
    with progress.stage("sessionize", total=n_parts, unit="part") as bar:
        for k in range(n_parts):
            part = good if n_parts == 1 else good.filter(pl.col(key).hash(seed=17) % n_parts == k)
            if src.sessionize:
                staged = sessionize(part, cfg.gap, key=key, tiebreak=tiebreak)
                staged = staged.drop(KEY) if key == KEY else staged
            else:
                staged = part.sort([Col.SESSION, Col.TIMESTAMP, *tiebreak], maintain_order=True)
            if cfg.dedupe:
                staged = staged.filter(~dedupe_mask())
            part_paths.append(work / f"sessions-{k:04d}.parquet")
            _sink(staged, part_paths[-1])
            bar.update(1)
    sessions = pl.scan_parquet(part_paths)
    after_dedupe = sessions.select(pl.len()).collect().item()
    return _Sessions(sessions, id_types, rows_ok, after_dedupe)


def _filter_and_write(
    sessions: _Sessions, cfg: PrepareConfig, out: Path, out_kind: str, outputs: Outputs | None, progress: Progress
) -> _Written:
    """Pass 3: ``--min-item-count``, ``--min-session-len``, ``--paper-filter``, then ``out`` atomically."""
    filtered = sessions.rows
    after_items = sessions.after_dedupe
    if cfg.min_item_count > 1:
        item_n = filtered.group_by(Col.ITEM).agg(pl.len().alias("_n"))
        keep_items = item_n.filter(pl.col("_n") >= cfg.min_item_count)
        filtered = filtered.join(keep_items.select(Col.ITEM), on=Col.ITEM, how="semi", maintain_order="left")
        after_items = filtered.select(pl.len()).collect(engine="streaming").item()
    min_len = max(cfg.min_session_len, PAPER_MIN_EVENTS if cfg.paper_filter else 1)
    if min_len > 1 or cfg.paper_filter:
        per_session = filtered.group_by(Col.SESSION).agg(
            pl.len().alias("_n"), (pl.col(Col.INTERACTION) == Interaction.PURCHASE).any().alias("_buy")
        )
        ok = pl.col("_n") >= min_len
        if cfg.paper_filter:
            ok = ok & pl.col("_buy")
        filtered = filtered.join(
            per_session.filter(ok).select(Col.SESSION), on=Col.SESSION, how="semi", maintain_order="left"
        )
    sessions_before = sessions.rows.select(pl.col(Col.SESSION).n_unique()).collect().item()
    columns = [c for c in (*Col.REQUIRED, *Col.OPTIONAL) if c in filtered.collect_schema()]
    final = filtered.select(columns)
    with progress.stage("write", unit="file"), writing(out, outputs) as tmp:
        _sink(final, tmp, out_kind)
        counts = _final_counts(tmp, out_kind)
        if counts["events"] == 0:
            raise ConfigError(
                f"no events left after filters (min-item-count {cfg.min_item_count}, min-session-len "
                f"{min_len}{', paper filter' if cfg.paper_filter else ''}); nothing written to {out}"
            )
        head = (pl.read_parquet(tmp, n_rows=1000) if out_kind == "parquet"
                else pl.read_csv(tmp, separator=csv_separator(tmp), n_rows=1000))
        validate_sessions(head, where=str(out))
    return _Written(after_items, sessions_before, min_len, counts)


def _report(
    src: _Inputs, parsed: _Parsed, sessions: _Sessions, written: _Written, cfg: PrepareConfig, out: Path,
    started: float,
) -> dict[str, Any]:
    """The account of the run: rows read, what each step removed and why, what was written."""
    fmt, counts = src.fmt, written.counts
    filtered_sessions = written.min_len > 1 or cfg.paper_filter
    return {
        "inputs": src.displays,
        "out": str(out),
        "format": fmt.name,
        "rows_read": parsed.rows_read,
        "dropped": parsed.dropped,
        "unmapped_events": parsed.unmapped,
        "mapped_events": parsed.mapped,
        "keep_unmapped": cfg.keep_unmapped,
        "sessions_from": (
            f"inactivity gap {cfg.gap} per {'user' if 'user' in fmt.columns else 'session'}"
            if src.sessionize
            else f"column {fmt.columns['session']!r}"
        ),
        "rows_usable": sessions.rows_usable,
        "dedupe_removed": sessions.rows_usable - sessions.after_dedupe,
        "item_filter_removed": sessions.after_dedupe - written.after_items,
        "session_filter_removed": {
            "events": written.after_items - counts["events"],
            "sessions": written.sessions_before - counts["sessions"] if filtered_sessions else 0,
        },
        **counts,
        "id_types": {CANONICAL_OF[f]: t for f, t in sessions.id_types.items()},
        "config": {k: v for k, v in asdict(cfg).items()},
        "seconds": round(time.perf_counter() - started, 3),
    }


def _final_counts(path: Path, kind: str) -> dict[str, Any]:
    lf = (pl.scan_parquet(path) if kind == "parquet"
          else pl.scan_csv(path, separator=csv_separator(path), infer_schema=False))
    schema = lf.collect_schema()
    exprs = [
        pl.len().alias("events"),
        pl.col(Col.SESSION).n_unique().alias("sessions"),
        pl.col(Col.ITEM).n_unique().alias("items"),
    ]
    if Col.USER in schema:
        exprs.append(pl.col(Col.USER).n_unique().alias("users"))
    row = lf.select(exprs).collect().row(0, named=True)
    per = lf.group_by(Col.INTERACTION).len().sort("len", descending=True).collect()
    row["interactions"] = dict(zip(per[Col.INTERACTION].to_list(), per["len"].to_list(), strict=True))
    row.setdefault("users", None)
    return row
