"""``session_stats`` on hand-built sessions with answers worked out by hand, and on the Taobao sample."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import TAOBAO_HEAD, shared_file

from recs.cli.main import cli
from recs.cli.stats_cmd import bar
from recs.sessions.io import validate_sessions, write_sessions
from recs.sessions.prepare import prepare
from recs.sessions.stats import session_stats

from helpers import sessions_frame

# s1: A is clicked, then carted and bought -> both clicked before.
# s2: C carted before it is clicked, D bought without a click -> neither clicked before.
# s3, s4: single clicks. Items: A x4, C x2, B, D, E once each.
SESSIONS = {
    "s1": [("A", "click"), ("B", "click"), ("A", "cart"), ("A", "purchase")],
    "s2": [("C", "cart"), ("C", "click"), ("D", "purchase")],
    "s3": [("A", "click")],
    "s4": [("E", "click")],
}


@pytest.fixture
def st() -> dict:
    return session_stats(sessions_frame(SESSIONS))


def test_counts(st):
    assert st["events"] == 9 and st["sessions"] == 4 and st["users"] is None
    assert st["interactions"] == {"click": 5, "cart": 2, "purchase": 2}
    assert st["items"] == 5
    assert st["items_seen_once"] == 3 and st["items_seen_once_share"] == pytest.approx(3 / 5)  # B, D, E
    assert st["events_per_session"] == pytest.approx(9 / 4)


def test_session_lengths(st):
    sl = st["session_length"]
    assert (sl["min"], sl["median"], sl["max"], sl["single_event_sessions"]) == (1, 2.0, 4, 2)
    assert sl["mean"] == pytest.approx(2.25)
    assert {h["length"]: h["sessions"] for h in sl["histogram"]} == {
        "1": 2, "2": 0, "3": 1, "4-5": 1, "6-10": 0, "11-20": 0, "21-50": 0, "51-100": 0, "101+": 0,
    }


def test_funnel(st):
    f = st["funnel"]
    assert (f["sessions_with_click"], f["sessions_with_cart"], f["sessions_with_purchase"]) == (4, 2, 2)
    assert f["click_to_cart"] == pytest.approx(2 / 4)
    assert f["cart_to_purchase"] == pytest.approx(2 / 2)
    assert f["click_to_purchase"] == pytest.approx(2 / 4)
    assert f["carts_per_click"] == pytest.approx(2 / 5) and f["purchases_per_cart"] == pytest.approx(1.0)


def test_clicked_before(st):
    assert st["clicked_before"]["cart"] == {"events": 2, "clicked_before": 1, "share": 0.5}
    assert st["clicked_before"]["purchase"] == {"events": 2, "clicked_before": 1, "share": 0.5}


def test_a_click_in_another_session_does_not_count():
    st = session_stats(sessions_frame({"a": [("X", "click")], "b": [("X", "cart"), ("X", "click")]}))
    assert st["clicked_before"]["cart"]["clicked_before"] == 0


def test_no_carts_gives_none_rates_not_zero_division():
    st = session_stats(sessions_frame({"a": [("X", "click"), ("Y", "click")]}))
    assert st["funnel"]["cart_to_purchase"] is None and st["funnel"]["purchases_per_cart"] is None
    assert st["clicked_before"]["cart"] == {"events": 0, "clicked_before": 0, "share": None}
    assert st["funnel"]["click_to_cart"] == 0.0


def test_events_per_day_follow_the_time_zone():
    t = datetime(2017, 11, 25, 15, 30, tzinfo=timezone.utc)  # 23:30 in Shanghai
    df = validate_sessions(pl.DataFrame({
        "session_id": [1, 1, 2], "item_id": [1, 2, 3], "interaction": ["click"] * 3,
        "timestamp": [t, t + timedelta(hours=1), t + timedelta(hours=2)],
    }))
    assert session_stats(df)["events_per_day"] == [{"day": "2017-11-25", "events": 3}]
    assert session_stats(df, tz="Asia/Shanghai")["events_per_day"] == [
        {"day": "2017-11-25", "events": 1}, {"day": "2017-11-26", "events": 2},
    ]


def test_lazy_input_gives_the_same_answer(st):
    assert session_stats(sessions_frame(SESSIONS).lazy()) == st


def test_taobao_head_events_per_day_in_china_time(tmp_path):
    out = tmp_path / "tb.parquet"
    prepare([shared_file(TAOBAO_HEAD)], out)
    st = session_stats(pl.read_parquet(out), tz="Asia/Shanghai")
    days = {d["day"]: d["events"] for d in st["events_per_day"]}
    # SOURCE.md, head chunk, China time; plus 44 stray rows before 11-25
    assert [days[f"2017-11-{d}"] for d in range(25, 31)] == [10_063, 10_400, 9_820, 10_461, 10_588, 10_300]
    assert [days["2017-12-01"], days["2017-12-02"], days["2017-12-03"]] == [11_431, 13_679, 13_215]
    assert sum(n for d, n in days.items() if d < "2017-11-25") == 44
    assert st["users"] == 983 and st["sessions"] == 16_757


def test_stats_cli_prints_histograms_and_writes_the_same_json(tmp_path):
    path, js = tmp_path / "s.parquet", tmp_path / "s.json"
    write_sessions(sessions_frame(SESSIONS), path)
    r = CliRunner().invoke(cli, ["stats", str(path), "--json", str(js)])
    assert r.exit_code == 0, r.output
    assert json.loads(js.read_text()) == json.loads(json.dumps(session_stats(sessions_frame(SESSIONS)), default=str))
    assert "█" in r.output and "click -> cart" in r.output and "50.0%" in r.output


def test_stats_cli_bad_input(tmp_path):
    r = CliRunner().invoke(cli, ["stats", str(tmp_path / "nope.parquet")])
    assert r.exit_code == 2 and "no such file" in r.output
    path = tmp_path / "s.parquet"
    write_sessions(sessions_frame(SESSIONS), path)
    r = CliRunner().invoke(cli, ["stats", str(path), "--tz", "Mars/Olympus"])
    assert r.exit_code == 2 and "unknown time zone" in r.output


def test_bar_scales_to_width():
    assert bar(10, 10, width=5) == "█████"
    assert bar(5, 10, width=5) == "██▌"
    assert bar(0, 10) == "" and bar(1, 10_000, width=5) == "▏"  # non-zero never vanishes
