"""``recs stats``: a pre-training look at a sessions file, in the terminal or as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import RenderableType
from rich.table import Table

from recs.cli.options import json_option, quiet_option, time_unit_option
from recs.cli.render import console, fmt, key_values, titled, write_json
from recs.config import DEFAULT_TIME_ZONE, check_time_zone
from recs.paths import check_paths
from recs.progress import TqdmProgress
from recs.sessions.io import read_sessions
from recs.sessions.stats import session_stats

_BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(value: float, top: float, width: int = 30) -> str:
    """A unicode bar of ``value`` on a scale where ``top`` fills ``width`` cells (eighth-cell resolution)."""
    if top <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / top * width * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + (_BLOCKS[rest] if rest else "")


def histogram(title: str, label: str, rows: Sequence[tuple[str, int]], width: int = 30) -> RenderableType:
    top = max((n for _, n in rows), default=0)
    total = sum(n for _, n in rows) or 1
    t = Table()
    t.add_column(label, overflow="fold")
    t.add_column("count", justify="right")
    t.add_column("share", justify="right")
    t.add_column("", no_wrap=True, style="cyan")
    for name, n in rows:
        t.add_row(name, fmt(n), f"{n / total:.1%}", bar(n, top, width))
    return titled(title, t)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def render_stats(st: dict[str, Any], path: Path) -> None:
    console.print(key_values(f"{path}", {
        "events": st["events"],
        "sessions": st["sessions"],
        "users": st["users"] if st["users"] is not None else "-",
        "items": st["items"],
        "items seen once": f"{st['items_seen_once']:,} ({_pct(st['items_seen_once_share'])})",
        "events per session": st["events_per_session"],
        f"first event ({st['time_zone']})": st["first_event_local"],
        f"last event ({st['time_zone']})": st["last_event_local"],
    }, formats={"events per session": ".2f"}))
    console.print(histogram("events per interaction", "interaction", list(st["interactions"].items())))
    sl = st["session_length"]
    console.print(histogram(
        f"session length (events): median {fmt(sl['median'], 'g')}, mean {fmt(sl['mean'], '.1f')}, "
        f"p90 {fmt(sl['p90'], 'g')}, max {fmt(sl['max'])}",
        "length", [(h["length"], h["sessions"]) for h in sl["histogram"]],
    ))
    days = st["events_per_day"]
    console.print(histogram(f"events per day ({st['time_zone']})", "day", [(d["day"], d["events"]) for d in days]))
    f = st["funnel"]
    console.print(key_values("funnel (share of sessions)", {
        "sessions with click": f["sessions_with_click"],
        "sessions with cart": f["sessions_with_cart"],
        "sessions with purchase": f["sessions_with_purchase"],
        "click -> cart": _pct(f["click_to_cart"]),
        "cart -> purchase": _pct(f["cart_to_purchase"]),
        "click -> purchase": _pct(f["click_to_purchase"]),
        "carts per click (events)": _pct(f["carts_per_click"]),
        "purchases per cart (events)": _pct(f["purchases_per_cart"]),
    }))
    cb = st["clicked_before"]
    console.print(key_values("item clicked earlier in the session", {
        f"{k}s": f"{v['clicked_before']:,} of {v['events']:,} ({_pct(v['share'])})" for k, v in cb.items()
    }))


@click.command("stats")
@click.argument("sessions", type=click.Path(path_type=Path))
@click.option("--tz", default=DEFAULT_TIME_ZONE, show_default=True,
              help="Time zone for the events-per-day buckets, e.g. Asia/Shanghai for Taobao.")
@json_option
@time_unit_option
@quiet_option
def stats_cmd(sessions: Path, tz: str, json_out: Path | None, time_unit: str, quiet: bool) -> None:
    """Describe a sessions file before training on it: events per interaction, sessions, users,
    items and the share seen only once, session lengths, events per day, click -> cart -> purchase
    funnel, and how many carts and purchases were of an item clicked earlier in the session.

    \b
    Example:
      recs stats runs/taobao.parquet --tz Asia/Shanghai --json runs/taobao_stats.json
    """
    check_time_zone(tz)  # session_stats checks it too; here it fails before a large file is read
    check_paths([("SESSIONS", sessions)], [("--json", json_out)])
    with TqdmProgress(not quiet).stage("counting", unit="event") as bar:  # one stage: see synth
        events = read_sessions(sessions, time_unit)
        st = session_stats(events, tz=tz)
        bar.update(events.height)
    render_stats(st, sessions)
    if json_out:
        write_json(json_out, st)


COMMANDS = [stats_cmd]
