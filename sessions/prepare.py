"""``recs prepare``: raw marketplace logs in, canonical sessions out, and an account of every row.

The pipeline runs in three lazy passes over temporary parquet files beside the output, so a log
larger than memory streams through polars instead of being loaded whole:

1. **parse**: scan every input (gzip is unpacked to a temporary file first, which is also where a
   truncated archive is caught), map columns and event names, parse times, and tag each row that
   cannot be used with a reason. Nothing is dropped yet, so every drop can be counted and located.
2. **sessionize and dedupe**: sort by (session or user, time); cut users' streams at inactivity
   gaps when the source has no session id; collapse immediate repeats of the same token.
3. **filter and write**: ``--min-item-count``, ``--min-session-len``, ``--paper-filter``; the result
   goes through ``atomic_file`` so a failed run never leaves a half-written output.

The returned report says how many rows each step removed and where the first bad row was, because
a sessions file that is silently shorter than its log is worse than an error.
"""

from __future__ import annotations

import gzip
import shutil
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict
from glob import glob, has_magic
from pathlib import Path
from typing import Any

import polars as pl

from recs.atomic import Outputs, scratch_dir, writing
from recs.columns import Col, Interaction
from recs.config import PrepareConfig  # the options of a run, defined with the other configs
from recs.errors import ConfigError, InputError
from recs.paths import check_paths
from recs.progress import NullProgress, Progress
from recs.sessions import formats as fm
from recs.sessions import times
from recs.sessions.ids import apply_id_types
from recs.sessions.ids import id_types as resolve_id_types
from recs.sessions.io import check_input_file, csv_separator, sessions_output_kind, validate_sessions
from recs.sessions.sessionize import dedupe_mask, sessionize

REASON, DETAIL = "_reason", "_detail"
KEY = "_key"

# Reasons a row cannot be used. The first six are errors (``--on-error`` decides); the last two
# are expected in real logs and are always dropped and counted.
MISSING_ITEM = "missing item"
MISSING_TIME = "missing time"
BAD_TIME = "unparsable time"
TIME_RANGE = "time out of range"  # an integer time outside 1990..2100 in --time-unit (recs.sessions.times)
MISSING_KEY = "missing session/user"
UNKNOWN_EVENT = "unknown event"
UNMAPPED_EVENT = "unmapped event"
BLANK_LINE = "blank line"
ERROR_REASONS = (MISSING_ITEM, MISSING_TIME, BAD_TIME, TIME_RANGE, MISSING_KEY, UNKNOWN_EVENT)
_REASON_FIELD = {MISSING_ITEM: "item", MISSING_TIME: "time", BAD_TIME: "time", TIME_RANGE: "time",
                 UNKNOWN_EVENT: "event"}

PAPER_MIN_EVENTS = 4  # "more than 3 item-interaction pairs"
_DROP = ""  # value of a mapping entry that drops the event


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


def _parse_frame(lf: pl.LazyFrame, fmt: fm.Format, cfg: PrepareConfig, keep_session: bool) -> pl.LazyFrame:
    """Tag every row with a reason it cannot be used (null when fine) and parse time and interaction."""
    schema = lf.collect_schema()
    present = [f for f in fm.FIELDS if f in schema]
    events = {k.strip().lower(): (_DROP if v is None or v == "" else v) for k, v in fmt.events.items()}
    raw_event = pl.col("event").cast(pl.String).str.strip_chars().str.to_lowercase()
    known = pl.col("_ev").is_in(list(events))
    # A when/then chain over the (small) event table: replace_strict is not streamed by polars 2.1 and
    # held the whole column in memory (1.6 GiB on 10M events).
    mapped = pl.lit(None, dtype=pl.String)
    if events:
        chain = None
        for raw_name, canon in events.items():
            cond = pl.col("_ev") == raw_name
            chain = pl.when(cond).then(pl.lit(canon)) if chain is None else chain.when(cond).then(pl.lit(canon))
        mapped = chain.otherwise(None)
    ts = fm.time_expr(pl.col("time"), schema["time"], fmt.time_unit)
    time_out_of_range = fm.time_out_of_range(pl.col("time"), schema["time"], fmt.time_unit)
    item = pl.col("item")
    item_missing = item.is_null() | (item.cast(pl.String).str.strip_chars() == "")
    key = "session" if keep_session else ("user" if "user" in schema else "session")
    blank = pl.all_horizontal([pl.col(f).is_null() for f in present])

    ev, tcol = pl.col("_ev"), pl.col("_ts")
    reason = (
        pl.when(blank).then(pl.lit(BLANK_LINE))
        .when(item_missing).then(pl.lit(MISSING_ITEM))
        .when(pl.col("time").is_null()).then(pl.lit(MISSING_TIME))
        .when(time_out_of_range).then(pl.lit(TIME_RANGE))
        .when(tcol.is_null()).then(pl.lit(BAD_TIME))
        .when(pl.col(key).is_null()).then(pl.lit(MISSING_KEY))
    )
    if not cfg.keep_unmapped:
        reason = reason.when(~known).then(pl.lit(UNKNOWN_EVENT)).when(mapped == _DROP).then(pl.lit(UNMAPPED_EVENT))
    detail = (
        pl.when(pl.col(REASON).is_in([BAD_TIME, TIME_RANGE])).then(pl.col("time").cast(pl.String))
        .when(pl.col(REASON).is_in([UNKNOWN_EVENT, UNMAPPED_EVENT])).then(ev)
        .otherwise(None)
    )
    interaction = pl.when(known & (mapped != _DROP)).then(mapped).otherwise(ev)
    others = [pl.col(f) for f in present if f not in ("time", "event")]
    return (
        lf.with_columns(ts.alias("_ts"), raw_event.alias("_ev"))
        .with_columns(reason.otherwise(None).alias(REASON))
        .select(
            pl.col(fm.FILE),
            pl.col(fm.LINE),
            *others,
            interaction.alias(Col.INTERACTION),
            tcol.alias(Col.TIMESTAMP),
            pl.col(REASON),
            detail.alias(DETAIL),
        )
    )


def _where(display: str, layout: str, line: int) -> str:
    return f"{display}: {'row' if layout == 'parquet' else 'line'} {line}"


def _locate_scan_failure(paths: list[Path], displays: list[str], fmts: list[fm.Format], err: Exception) -> str:
    for p, d, f in zip(paths, displays, fmts, strict=True):
        if f.layout != "parquet":
            found = fm.find_bad_text_line(p, f)
            if found:
                return f"{d}: {found}"
    return f"{displays[0] if len(displays) == 1 else ', '.join(displays)}: cannot read: {fm._first(err)}"


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
) -> dict[str, Any]:
    """Read raw logs, write canonical sessions to ``out`` atomically, and return the report.

    With ``outputs`` the sessions file is staged there, to appear together with the caller's other
    outputs (the CLI's ``--json``) when it commits.

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
    check_paths([("INPUT", p) for p in paths], [("--out", out)])

    with scratch_dir(out, outputs=outputs) as work:
        # -- inputs: unpack gzip, resolve one format for all files ------------------------------------
        readable: list[Path] = []
        with progress.stage("unpack", total=len(paths), unit="file") as bar:
            for i, p in enumerate(paths):
                if p.name.lower().endswith(".gz"):
                    readable.append(_gunzip(p, work / f"{i}-{p.name[:-3]}"))
                else:
                    readable.append(p)
                bar.update(1)
        displays = [str(p) for p in paths]
        fmts = [fm.resolve_format(cfg.format, r, cfg.columns, cfg.events, cfg.time_unit) for r in readable]
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
        keep_session = not do_sessionize

        # -- pass 1: parse and tag -------------------------------------------------------------------
        frames = []
        for i, (r, d) in enumerate(zip(readable, displays, strict=True)):
            lf = fm.scan(r, fmt, d).with_columns(pl.lit(i, dtype=pl.UInt32).alias(fm.FILE))
            frames.append(lf)
        raw = pl.concat(frames, how="diagonal_relaxed")
        parsed_path = work / "parsed.parquet"
        with progress.stage("parse", unit="file"):
            try:
                _sink(_parse_frame(raw, fmt, cfg, keep_session), parsed_path)
            except pl.exceptions.PolarsError as e:
                raise InputError(_locate_scan_failure(readable, displays, fmts, e)) from None
        parsed = pl.scan_parquet(parsed_path)
        rows_read = parsed.select(pl.len()).collect().item()
        if rows_read == 0:
            raise InputError(f"{', '.join(displays)}: no data rows (only a header, or empty)")

        bad = (
            parsed.filter(pl.col(REASON).is_not_null())
            .sort(fm.FILE, fm.LINE)
            .group_by(REASON, maintain_order=True)
            .agg(pl.len().alias("rows"), pl.col(fm.FILE).first(), pl.col(fm.LINE).first(), pl.col(DETAIL).first())
            .collect()
        )
        dropped: dict[str, dict[str, Any]] = {}
        for row in bad.iter_rows(named=True):
            where = _where(displays[row[fm.FILE]], fmt.layout, row[fm.LINE])
            dropped[row[REASON]] = {"rows": row["rows"], "first": where, "value": row[DETAIL]}
        errors = {r: v for r, v in dropped.items() if r in ERROR_REASONS}
        if errors and cfg.on_error == "fail":
            raise InputError(_error_message(errors, fmt))
        unmapped = _unmapped_counts(parsed, cfg.keep_unmapped, fmt)

        # -- pass 2: ids, sessions, dedupe -----------------------------------------------------------
        good = parsed.filter(pl.col(REASON).is_null()).drop(REASON, DETAIL)
        # ids from text become Int64 only when every value is a canonical integer; parquet keeps its types
        id_types = resolve_id_types(good, fm.ID_FIELDS, text=fmt.layout != "parquet")
        good = apply_id_types(good, id_types).rename({f: fm.CANONICAL_OF[f] for f in id_types})
        rows_ok = rows_read - sum(v["rows"] for v in dropped.values())
        tiebreak = (fm.FILE, fm.LINE)
        if do_sessionize:
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
                if do_sessionize:
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

        # -- pass 3: filters, write ------------------------------------------------------------------
        filtered = sessions
        after_items = after_dedupe
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
        sessions_before = sessions.select(pl.col(Col.SESSION).n_unique()).collect().item()
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

    report: dict[str, Any] = {
        "inputs": displays,
        "out": str(out),
        "format": fmt.name,
        "rows_read": rows_read,
        "dropped": dropped,
        "unmapped_events": unmapped,
        "keep_unmapped": cfg.keep_unmapped,
        "sessions_from": (
            f"inactivity gap {cfg.gap} per {'user' if 'user' in fmt.columns else 'session'}"
            if do_sessionize
            else f"column {fmt.columns['session']!r}"
        ),
        "rows_usable": rows_ok,
        "dedupe_removed": rows_ok - after_dedupe,
        "item_filter_removed": after_dedupe - after_items,
        "session_filter_removed": {
            "events": after_items - counts["events"],
            "sessions": sessions_before - counts["sessions"] if min_len > 1 or cfg.paper_filter else 0,
        },
        **counts,
        "id_types": {fm.CANONICAL_OF[f]: t for f, t in id_types.items()},
        "config": {k: v for k, v in asdict(cfg).items()},
        "seconds": round(time.perf_counter() - started, 3),
    }
    return report


def _error_message(errors: dict[str, dict[str, Any]], fmt: fm.Format) -> str:
    """One line: where the first bad row is, what is wrong with it, how many more, and what to do."""
    first_reason = min(errors, key=lambda r: _sort_key(errors[r]["first"]))
    e = errors[first_reason]
    fld = _REASON_FIELD.get(first_reason)
    column = f" in column {fmt.columns[fld]!r}" if fld and fld in fmt.columns else ""
    value = f" {e['value']!r}" if e["value"] is not None else ""
    total = sum(v["rows"] for v in errors.values())
    breakdown = ", ".join(f"{v['rows']:,} {r}" for r, v in errors.items())
    hint = ""
    if first_reason == UNKNOWN_EVENT:
        known = sorted(k for k in fmt.events if fmt.events[k])
        shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
        hint = (
            f"; map it with --map {e['value']}=click|favorite|cart|purchase, drop it with --map {e['value']}=, "
            f"or keep it with --keep-unmapped (known events: {shown})"
        )
    elif first_reason == TIME_RANGE:
        hint = f" (range {times.plausible_range(fmt.time_unit)}); {times.unit_hint(e['value'], fmt.time_unit)}"
    return (
        f"{e['first']}: {first_reason}{value}{column}; {total:,} bad row{'s' if total != 1 else ''} in all "
        f"({breakdown}){hint}; use --on-error skip to drop and count them"
    )


def _sort_key(where: str) -> tuple[str, int]:
    head, _, n = where.rpartition(" ")
    return head, int(n) if n.isdigit() else 0


def _unmapped_counts(parsed: pl.LazyFrame, kept: bool, fmt: fm.Format) -> dict[str, int]:
    """How many events of each raw name had no interaction: dropped (default) or kept under their name."""
    if kept:
        canonical = set(Interaction.CANONICAL) | {v for v in fmt.events.values() if v}
        df = (
            parsed.filter(pl.col(REASON).is_null() & ~pl.col(Col.INTERACTION).is_in(list(canonical)))
            .group_by(Col.INTERACTION)
            .len()
            .collect()
        )
        return dict(zip(df[Col.INTERACTION].to_list(), df["len"].to_list(), strict=True))
    df = parsed.filter(pl.col(REASON) == UNMAPPED_EVENT).group_by(DETAIL).len().collect()
    return dict(zip(df[DETAIL].to_list(), df["len"].to_list(), strict=True))


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
