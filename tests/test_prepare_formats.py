"""Each built-in format on its real sample in ../shared/data, against the counts in that folder's SOURCE.md."""

from __future__ import annotations

import gzip
import itertools
import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import OTTO_SAMPLE, REES46_SAMPLE, TAOBAO_HEAD, TAOBAO_TAIL, shared_file

from recs.cli.main import cli
from recs.columns import Col
from recs.sessions.detect import detect_format
from recs.sessions.io import read_sessions
from recs.sessions.prepare import PrepareConfig, prepare


def _run(tmp_path: Path, inputs: list[Path | str], cfg: PrepareConfig | None = None, name: str = "out.parquet"):
    out = tmp_path / name
    report = prepare(inputs, out, cfg or PrepareConfig())
    return report, read_sessions(out)


def _interactions(df: pl.DataFrame) -> dict[str, int]:
    return dict(df[Col.INTERACTION].value_counts().iter_rows())


# -- detection ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [(TAOBAO_HEAD, "taobao"), (TAOBAO_TAIL, "taobao"), (OTTO_SAMPLE, "otto"), (REES46_SAMPLE, "rees46")],
)
def test_detect_format_on_real_samples(path, expected):
    assert detect_format(shared_file(path)) == expected


# -- Taobao ------------------------------------------------------------------------------------------


def test_taobao_head_counts(tmp_path):
    report, df = _run(tmp_path, [shared_file(TAOBAO_HEAD)], PrepareConfig(dedupe=False))
    assert report["format"] == "taobao"
    assert report["rows_read"] == df.height == 100_001
    assert _interactions(df) == {"click": 89_710, "cart": 5_446, "favorite": 2_744, "purchase": 2_101}
    assert df[Col.USER].n_unique() == report["users"] == 983
    assert df[Col.ITEM].n_unique() == report["items"] == 64_467
    assert df[Col.CATEGORY].n_unique() == 3_128
    assert df[Col.SESSION].n_unique() == report["sessions"] == 16_757  # 30-minute gap per user
    assert df.schema[Col.ITEM] == pl.Int64 and df.schema[Col.USER] == pl.Int64  # integer ids stay integers
    first = df.filter(pl.col(Col.USER) == 1).sort(Col.TIMESTAMP).row(0, named=True)
    assert first[Col.ITEM] == 2268318 and first[Col.INTERACTION] == "click"
    assert first[Col.TIMESTAMP] == datetime.fromtimestamp(1511544070, tz=timezone.utc)
    assert first[Col.SESSION] == "1-1"


def test_taobao_head_has_no_immediate_repeats_and_a_1h_gap_gives_fewer_sessions(tmp_path):
    report, df = _run(tmp_path, [shared_file(TAOBAO_HEAD)])
    assert report["dedupe_removed"] == 0 and df.height == 100_001  # SOURCE.md: no duplicate rows
    report_1h, _ = _run(tmp_path, [TAOBAO_HEAD], PrepareConfig(gap="1h"), name="1h.parquet")
    assert 983 <= report_1h["sessions"] < 16_757


def test_taobao_tail_counts(tmp_path):
    report, df = _run(tmp_path, [shared_file(TAOBAO_TAIL)], PrepareConfig(dedupe=False))
    assert df.height == 10_000
    assert _interactions(df) == {"click": 9_046, "cart": 536, "favorite": 212, "purchase": 206}
    assert report["users"] == 114 and report["items"] == 7_623
    assert report["sessions"] == 1_700


def test_both_taobao_files_through_the_cli_with_a_quoted_glob(tmp_path):
    shared_file(TAOBAO_HEAD), shared_file(TAOBAO_TAIL)
    pattern = str(TAOBAO_HEAD.parents[1] / "*" / "*.csv")
    out, report_path = tmp_path / "taobao.parquet", tmp_path / "report.json"
    result = CliRunner().invoke(
        cli, ["prepare", pattern, "--format", "taobao", "--out", str(out), "--json", str(report_path), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["rows_read"] == report["events"] == 110_001
    assert report["interactions"] == {"click": 98_756, "cart": 5_982, "favorite": 2_956, "purchase": 2_307}
    assert (report["users"], report["items"], report["sessions"]) == (1_097, 70_250, 18_457)
    assert "110,001" in result.output and "18,457" in result.output
    assert read_sessions(out).height == 110_001


def test_gzip_is_read_transparently(tmp_path):
    gz = tmp_path / "UserBehavior.csv.gz"
    gz.write_bytes(gzip.compress(shared_file(TAOBAO_TAIL).read_bytes()))
    report, df = _run(tmp_path, [gz])
    assert report["format"] == "taobao"
    assert (df.height, report["sessions"], report["users"]) == (10_000, 1_700, 114)
    assert report["inputs"] == [str(gz)]


def test_csv_output_round_trips(tmp_path):
    _report, df = _run(tmp_path, [shared_file(TAOBAO_TAIL)], name="tail.csv")
    assert df.height == 10_000 and df[Col.SESSION].n_unique() == 1_700
    assert df.schema[Col.ITEM] == pl.Int64


def test_tsv_output_is_tab_separated_and_reads_back_with_the_same_rows(tmp_path):
    src, tsv = shared_file(TAOBAO_TAIL), tmp_path / "tail.tsv"
    result = CliRunner().invoke(cli, ["prepare", str(src), "--out", str(tsv), "--quiet"])
    assert result.exit_code == 0, result.output
    header = tsv.read_text().splitlines()[0]
    assert header.split("\t")[:4] == list(Col.REQUIRED) and "," not in header
    _report, expected = _run(tmp_path, [src], name="tail.parquet")
    got = read_sessions(tsv)
    assert got.height == 10_000
    assert got.to_dicts() == expected.to_dicts()


def test_paper_filter_keeps_long_sessions_with_a_purchase(tmp_path):
    report, df = _run(tmp_path, [shared_file(TAOBAO_HEAD)], PrepareConfig(paper_filter=True))
    per = df.group_by(Col.SESSION).agg(pl.len().alias("n"), (pl.col(Col.INTERACTION) == "purchase").any().alias("b"))
    assert per["n"].min() > 3 and per["b"].all()
    _, full = _run(tmp_path, [TAOBAO_HEAD], name="full.parquet")
    full_per = full.group_by(Col.SESSION).agg(
        pl.len().alias("n"), (pl.col(Col.INTERACTION) == "purchase").any().alias("b")
    )
    expected = full_per.filter((pl.col("n") > 3) & pl.col("b"))
    assert report["sessions"] == expected.height and report["events"] == expected["n"].sum()
    assert report["session_filter_removed"]["sessions"] == 16_757 - expected.height
    assert report["rows_read"] == report["events"] + report["session_filter_removed"]["events"]


def test_min_item_count_and_min_session_len(tmp_path):
    _, full = _run(tmp_path, [shared_file(TAOBAO_TAIL)], name="full.parquet")
    counts = full.group_by(Col.ITEM).len()
    rare_events = counts.filter(pl.col("len") < 3)["len"].sum()
    report, df = _run(tmp_path, [TAOBAO_TAIL], PrepareConfig(min_item_count=3))
    assert report["item_filter_removed"] == rare_events
    assert df.height == 10_000 - rare_events
    assert df.group_by(Col.ITEM).len()["len"].min() >= 3
    report, df = _run(tmp_path, [TAOBAO_TAIL], PrepareConfig(min_session_len=2), name="len2.parquet")
    assert df.group_by(Col.SESSION).len()["len"].min() == 2
    singles = full.group_by(Col.SESSION).len().filter(pl.col("len") == 1).height
    assert report["sessions"] == 1_700 - singles and report["session_filter_removed"]["sessions"] == singles


# -- OTTO --------------------------------------------------------------------------------------------


def test_otto_counts(tmp_path):
    report, df = _run(tmp_path, [shared_file(OTTO_SAMPLE)], PrepareConfig(dedupe=False))
    assert report["format"] == "otto" and report["sessions_from"] == "column 'session'"
    assert df.height == 862
    assert _interactions(df) == {"click": 800, "cart": 52, "purchase": 10}
    # SOURCE.md says ids 0-19; the file holds 0-9 and 12899769-12899778 (the first and last ten sessions)
    assert sorted(df[Col.SESSION].unique().to_list()) == [*range(10), *range(12_899_769, 12_899_779)]
    assert df[Col.ITEM].n_unique() == 510
    assert df[Col.TIMESTAMP].min() == datetime(2022, 7, 31, 22, 0, 0, 25000, tzinfo=timezone.utc)
    # SOURCE.md's 21:59:58 is this, rounded to the second
    assert df[Col.TIMESTAMP].max() == datetime(2022, 8, 28, 21, 59, 57, 885000, tzinfo=timezone.utc)


def test_otto_dedupe_matches_a_plain_python_count(tmp_path):
    """Immediate repeats of (aid, type) within a session in time order, counted independently."""
    repeats = Counter()
    for line in shared_file(OTTO_SAMPLE).read_text().splitlines():
        events = sorted(json.loads(line)["events"], key=lambda e: e["ts"])  # stable: ties keep file order
        for prev, cur in itertools.pairwise(events):
            if (prev["aid"], prev["type"]) == (cur["aid"], cur["type"]):
                repeats[cur["type"]] += 1
    report, df = _run(tmp_path, [OTTO_SAMPLE])
    assert report["dedupe_removed"] == sum(repeats.values()) > 0
    assert df.height == 862 - sum(repeats.values())
    assert _interactions(df)["click"] == 800 - repeats["clicks"]
    assert report["sessions"] == 20


# -- REES46 ------------------------------------------------------------------------------------------


def test_rees46_counts(tmp_path):
    report, df = _run(tmp_path, [shared_file(REES46_SAMPLE)], PrepareConfig(dedupe=False))
    assert report["format"] == "rees46" and report["sessions_from"] == "column 'user_session'"
    assert df.height == 4_999
    assert _interactions(df) == {"click": 4_895, "cart": 50, "purchase": 54}
    assert report["unmapped_events"] == {}  # no remove_from_cart in this sample
    assert report["users"] == 1_747 and report["sessions"] == 1_898 and report["items"] == 2_305
    assert df.schema[Col.SESSION] == pl.String and df.schema[Col.ITEM] == pl.Int64
    assert df[Col.TIMESTAMP].min() == datetime(2019, 10, 1, tzinfo=timezone.utc)
    assert df[Col.TIMESTAMP].max() == datetime(2019, 10, 1, 2, 28, 14, tzinfo=timezone.utc)


def test_rees46_remove_from_cart_is_dropped_and_counted_or_kept(tmp_path):
    lines = shared_file(REES46_SAMPLE).read_text().splitlines()
    edited = [lines[0], *(ln.replace(",cart,", ",remove_from_cart,") for ln in lines[1:])]
    src = tmp_path / "rees.csv"
    src.write_text("\n".join(edited) + "\n")
    report, df = _run(tmp_path, [src], PrepareConfig(dedupe=False))
    assert report["unmapped_events"] == {"remove_from_cart": 50}
    assert report["dropped"]["unmapped event"]["rows"] == 50
    assert df.height == 4_949 and "cart" not in _interactions(df)
    kept, df = _run(tmp_path, [src], PrepareConfig(dedupe=False, keep_unmapped=True), name="kept.parquet")
    assert _interactions(df)["remove_from_cart"] == 50 and df.height == 4_999
    assert kept["unmapped_events"] == {"remove_from_cart": 50}


def test_rees46_sessionize_by_user_instead_of_user_session(tmp_path):
    report, df = _run(tmp_path, [shared_file(REES46_SAMPLE)], PrepareConfig(dedupe=False, sessionize=True))
    assert report["sessions_from"] == "inactivity gap 30m per user"
    # a 2.5-hour cut with a 30-minute gap: every user has at least one session, and each session one user
    assert report["sessions"] >= report["users"] == 1_747
    assert df.group_by(Col.SESSION).agg(pl.col(Col.USER).n_unique())[Col.USER].max() == 1


def test_generic_mapping_reads_rees46_like_the_builtin(tmp_path):
    cfg = PrepareConfig(
        format="generic",
        columns={"session": "user_session", "user": "user_id", "item": "product_id",
                 "interaction": "event_type", "timestamp": "event_time"},
        events={"view": "click"},
        dedupe=False,
    )
    report, df = _run(tmp_path, [shared_file(REES46_SAMPLE)], cfg)
    assert report["format"] == "generic"
    assert _interactions(df) == {"click": 4_895, "cart": 50, "purchase": 54}
    assert (report["sessions"], report["users"], report["items"]) == (1_898, 1_747, 2_305)


# -- RetailRocket (no public sample in ../shared/data: a hand-written events.csv) --------------------

RETAILROCKET = """timestamp,visitorid,event,itemid,transactionid
1433221332117,257597,view,355908,
1433221332200,257597,view,355908,
1433221400000,257597,addtocart,355908,
1433221500000,257597,transaction,355908,4000
1433230000000,257597,view,248676,
1433224214164,992329,view,248676,
1433221999827,111016,view,318965,
"""


def test_retailrocket(tmp_path):
    src = tmp_path / "events.csv"
    src.write_text(RETAILROCKET)
    assert detect_format(src) == "retailrocket"
    report, df = _run(tmp_path, [src], PrepareConfig(dedupe=False))
    assert report["format"] == "retailrocket"
    assert _interactions(df) == {"click": 5, "cart": 1, "purchase": 1}
    # visitor 257597: four events within 3 minutes, then one 2h20m later -> two sessions
    assert sorted(df[Col.SESSION].unique().to_list()) == ["111016-1", "257597-1", "257597-2", "992329-1"]
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert df[Col.TIMESTAMP].min() == epoch + timedelta(milliseconds=1433221332117)  # ms, not s
    deduped, df = _run(tmp_path, [src], name="dd.parquet")
    assert deduped["dedupe_removed"] == 1 and df.height == 6


@pytest.mark.parametrize("path", [TAOBAO_HEAD, OTTO_SAMPLE])
def test_partitioned_sort_gives_the_same_sessions(tmp_path, path):
    """Big logs are sessionized in hash partitions of the user/session key; the result must not change."""
    whole, a = _run(tmp_path, [shared_file(path)], name="whole.parquet")
    parts, b = _run(tmp_path, [path], PrepareConfig(partition_rows=7_000), name="parts.parquet")
    assert a.equals(b)  # read_sessions orders by session and time
    assert (whole["sessions"], whole["dedupe_removed"]) == (parts["sessions"], parts["dedupe_removed"])
