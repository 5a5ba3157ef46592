"""``recs prepare``: turn raw marketplace logs into a canonical sessions file, with an account of every row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from recs.atomic import Outputs
from recs.cli.options import PREPARE_DEFAULTS, json_option, quiet_option, time_unit_option
from recs.cli.render import SECONDS, console, key_values, table, write_json
from recs.config import ON_ERRORS, PrepareConfig
from recs.progress import TqdmProgress
from recs.sessions.formats import FORMAT_NAMES
from recs.sessions.prepare import parse_mapping, prepare


@click.command("prepare")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Output sessions file (.parquet, .csv or .tsv); written only if the whole run succeeds.")
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), default=PREPARE_DEFAULTS.format, show_default=True,
              help="Log format; auto detects it from the first line (generic when --col is given).")
@click.option("--col", "cols", multiple=True, metavar="FIELD=COLUMN",
              help="Source column of a field: session, user, item, interaction, timestamp, category, shop. "
                   "Repeatable.")
@click.option("--map", "maps", multiple=True, metavar="RAW=INTERACTION",
              help="Map a raw event name to click|favorite|cart|purchase (or any name); RAW= drops it. "
                   "Repeatable; extends the format's own table.")
@click.option("--keep-unmapped", is_flag=True,
              help="Keep events that map to nothing under their own (lower-cased) name instead of dropping them.")
@time_unit_option(auto=True)
@click.option("--sessionize/--keep-sessions", "sessionize", default=None,
              help="Cut each user's events at --gap even if the log has a session column / keep the log's "
                   "sessions. [default: keep them if the log has them, else cut by --gap]")
@click.option("--gap", default=PREPARE_DEFAULTS.gap, show_default=True,
              help="Inactivity gap that starts a new session: 30m, 1h (Etsy's window), 90s, 1h30m.")
@click.option("--dedupe/--no-dedupe", default=PREPARE_DEFAULTS.dedupe, show_default=True,
              help="Collapse immediate repeats of the same (item, interaction) within a session.")
@click.option("--paper-filter", is_flag=True,
              help="Keep only sessions with more than 3 events and at least one purchase (the paper's training set).")
@click.option("--min-session-len", type=int, default=PREPARE_DEFAULTS.min_session_len, show_default=True,
              help="Drop sessions with fewer events than this (after dedupe and --min-item-count).")
@click.option("--min-item-count", type=int, default=PREPARE_DEFAULTS.min_item_count, show_default=True,
              help="Drop events of items seen fewer times than this in the whole log.")
@click.option("--on-error", type=click.Choice(ON_ERRORS), default=PREPARE_DEFAULTS.on_error, show_default=True,
              help="Bad rows (unparsable time, time out of range, missing item, unknown event): stop at the first, "
                   "or drop and count them.")
@json_option(what="the full report (counts, drops with first line)")
@quiet_option
def prepare_cmd(inputs: tuple[str, ...], out: Path, fmt: str, cols: tuple[str, ...], maps: tuple[str, ...],
                keep_unmapped: bool, time_unit: str, sessionize: bool | None, gap: str, dedupe: bool,
                paper_filter: bool, min_session_len: int, min_item_count: int, on_error: str,
                json_out: Path | None, quiet: bool) -> None:
    """Read raw event logs INPUT... and write canonical sessions
    (session_id, item_id, interaction, timestamp [+ user_id, category, shop_id]).

    Built-in formats: otto (JSONL, one session per line), taobao (Tianchi UserBehavior CSV, no
    header), rees46 (multi-category store CSV), retailrocket (events.csv). Anything else: CSV,
    parquet or NDJSON with --col and --map. Several files or a quoted glob are read as one log;
    .gz files are read transparently. Every dropped row is counted in the summary, and bad rows
    stop the run (naming file and line) unless --on-error skip.

    \b
    Examples:
      recs prepare ../shared/data/taobao_userbehavior/*/*.csv --format taobao --out runs/taobao.parquet
      recs prepare 2019-Oct.csv.gz --paper-filter --out runs/rees46.parquet
      recs prepare events.csv --format retailrocket --gap 1h --out runs/rr.parquet
      recs prepare clicks.csv --col user=visitor --col item=product_id --col interaction=action \\
          --col timestamp=time --map view=click --map basket=cart --map checkout=purchase \\
          --map wishlist= --out runs/mine.parquet
    """
    columns = parse_mapping(cols, "--col")
    events: dict[str, str | None] = {k: (v or None) for k, v in parse_mapping(maps, "--map").items()}
    config = PrepareConfig(
        format=fmt, columns=columns, events=events, keep_unmapped=keep_unmapped, time_unit=time_unit,
        sessionize=sessionize, gap=gap, dedupe=dedupe, paper_filter=paper_filter,
        min_session_len=min_session_len, min_item_count=min_item_count, on_error=on_error,
    )
    with Outputs() as outputs:  # the sessions file and --json appear together or not at all
        report = prepare(inputs, out, config, progress=TqdmProgress(enabled=not quiet), outputs=outputs,
                         also_written=[("--json", json_out)])
        if json_out:
            write_json(json_out, report, outputs)
    render_report(report)


def render_report(report: dict[str, Any]) -> None:
    """Print what was read, what was dropped and why, and what was written."""
    console.print(key_values(f"wrote {report['out']} ({report['format']} log)", {
        "rows read": report["rows_read"],
        "sessions from": report["sessions_from"],
        "dedupe removed": report["dedupe_removed"],
        "item filter removed (events)": report["item_filter_removed"],
        "session filters removed (sessions)": report["session_filter_removed"]["sessions"],
        "session filters removed (events)": report["session_filter_removed"]["events"],
        "events written": report["events"],
        "sessions": report["sessions"],
        "users": report["users"] if report["users"] is not None else "-",
        "items": report["items"],
        "seconds": report["seconds"],
    }, formats={"seconds": SECONDS}))
    if report.get("mapped_events"):
        console.print(table("events mapped: raw name -> interaction (before dedupe)", [
            {"raw event": m["raw"], "interaction": m["interaction"], "events": m["events"]}
            for m in report["mapped_events"]
        ]))
    console.print(table("events by interaction", [
        {"interaction": k, "events": v, "share": v / report["events"]} for k, v in report["interactions"].items()
    ]))
    if report["dropped"]:
        console.print(table("rows dropped", [
            {"reason": r, "rows": v["rows"], "value": "" if v["value"] is None else v["value"]}
            for r, v in report["dropped"].items()
        ]))
        # where each reason first occurred, a path and line: on a line of its own, never wrapped or cut
        for r, v in report["dropped"].items():
            console.print(f"{r}: first at {v['first']}", soft_wrap=True, markup=False, highlight=False)
    if report["unmapped_events"]:
        verb = "kept under their own name" if report["keep_unmapped"] else "dropped"
        console.print(table(f"events with no interaction ({verb})", [
            {"raw event": k, "events": v} for k, v in report["unmapped_events"].items()
        ]))


COMMANDS = [prepare_cmd]
