"""Bad input to ``recs prepare``: one line naming file and line or column, exit code 2, no output left behind."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REES46_SAMPLE, TAOBAO_TAIL, shared_file

from recs.cli.main import cli
from recs.errors import ConfigError
from recs.sessions.prepare import PrepareConfig, prepare


def run(*args: object):
    return CliRunner().invoke(cli, ["prepare", "--quiet", *map(str, args)])


def assert_fails(result, out: Path, *fragments: str) -> str:
    """Exit 2, one ``Error:`` line containing every fragment, and neither the output nor any temp file left."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
    return lines[0]


def taobao_lines(n: int = 3) -> list[str]:
    return shared_file(TAOBAO_TAIL).read_text().splitlines()[:n]


# -- wrong format guess -------------------------------------------------------------------------------


def test_taobao_format_on_a_rees46_file(tmp_path):
    out = tmp_path / "o.parquet"
    msg = assert_fails(run(shared_file(REES46_SAMPLE), "--format", "taobao", "--out", out), out,
                       str(REES46_SAMPLE), "line 1", "9 fields", "taobao log has 5")
    assert "looks like a rees46 log" in msg


def test_otto_format_on_a_csv(tmp_path):
    out = tmp_path / "o.parquet"
    assert_fails(run(shared_file(TAOBAO_TAIL), "--format", "otto", "--out", out), out,
                 "line 1", "not an OTTO session line", "looks like a taobao log")


def test_rees46_format_on_a_headerless_taobao_file(tmp_path):
    out = tmp_path / "o.parquet"
    assert_fails(run(shared_file(TAOBAO_TAIL), "--format", "rees46", "--out", out), out,
                 "missing column 'user_session'", "looks like a taobao log")


def test_undetectable_format(tmp_path):
    src, out = tmp_path / "x.csv", tmp_path / "o.parquet"
    src.write_text("a,b,c\n1,2,3\n")
    assert_fails(run(src, "--out", out), out, f"{src}: line 1: cannot tell the log format", "--format")


# -- unmapped interactions ---------------------------------------------------------------------------

GENERIC = (
    "visitor,product,action,time\n"
    "1,10,view,2020-01-01T00:00:00\n"
    "1,11,view,2020-01-01T00:01:00\n"
    "1,11,wishlist_add,2020-01-01T00:02:00\n"
    "2,12,basket,2020-01-01 00:03:00 UTC\n"
    "2,12,wishlist_add,2020-01-01T00:04:00Z\n"
)
GENERIC_COLS = ("--col", "user=visitor", "--col", "item=product", "--col", "interaction=action",
                "--col", "timestamp=time")


def test_unknown_interaction_fails_with_line_column_and_remedies(tmp_path):
    src, out = tmp_path / "log.csv", tmp_path / "o.parquet"
    src.write_text(GENERIC)
    msg = assert_fails(run(src, *GENERIC_COLS, "--map", "basket=cart", "--out", out), out,
                       f"{src}: line 4: unknown event 'wishlist_add' in column 'action'", "2 bad rows")
    assert "--map wishlist_add=" in msg and "--keep-unmapped" in msg and "--on-error skip" in msg


def test_unknown_interaction_skip_keep_or_map(tmp_path):
    src = tmp_path / "log.csv"
    src.write_text(GENERIC)
    out, rep = tmp_path / "skip.parquet", tmp_path / "skip.json"
    r = run(src, *GENERIC_COLS, "--map", "basket=cart", "--on-error", "skip", "--out", out, "--json", rep)
    assert r.exit_code == 0, r.output
    report = json.loads(rep.read_text())
    assert report["dropped"]["unknown event"] == {"rows": 2, "first": f"{src}: line 4", "value": "wishlist_add"}
    assert report["events"] == 3 and report["interactions"] == {"click": 2, "cart": 1}
    assert "line 4" in r.output  # the summary table shows where

    out, rep = tmp_path / "keep.parquet", tmp_path / "keep.json"
    r = run(src, *GENERIC_COLS, "--map", "basket=cart", "--keep-unmapped", "--out", out, "--json", rep)
    assert r.exit_code == 0, r.output
    report = json.loads(rep.read_text())
    assert report["interactions"]["wishlist_add"] == 2 and report["unmapped_events"] == {"wishlist_add": 2}

    out, rep = tmp_path / "drop.parquet", tmp_path / "drop.json"
    r = run(src, *GENERIC_COLS, "--map", "basket=cart", "--map", "wishlist_add=", "--out", out, "--json", rep)
    assert r.exit_code == 0, r.output
    report = json.loads(rep.read_text())
    assert report["dropped"]["unmapped event"]["rows"] == 2 and report["events"] == 3


# -- truncated gzip ----------------------------------------------------------------------------------


def test_truncated_gzip(tmp_path):
    whole = gzip.compress(shared_file(TAOBAO_TAIL).read_bytes())
    src, out = tmp_path / "UserBehavior.csv.gz", tmp_path / "o.parquet"
    src.write_bytes(whole[: len(whole) // 2])
    assert_fails(run(src, "--out", out), out, f"{src}: truncated or damaged gzip file")


def test_not_a_gzip(tmp_path):
    src, out = tmp_path / "log.csv.gz", tmp_path / "o.parquet"
    src.write_bytes(b"user,item\n1,2\n")
    assert_fails(run(src, "--out", out), out, f"{src}: truncated or damaged gzip file")


# -- missing column ----------------------------------------------------------------------------------


def test_csv_with_a_missing_column(tmp_path):
    lines = shared_file(REES46_SAMPLE).read_text().splitlines()[:20]
    src, out = tmp_path / "rees.csv", tmp_path / "o.parquet"
    src.write_text("\n".join(",".join(ln.split(",")[:-1]) for ln in lines) + "\n")  # drop user_session
    assert_fails(run(src, "--format", "rees46", "--out", out), out,
                 f"{src}: missing column 'user_session'", "columns found: event_time")


def test_generic_mapping_to_an_absent_column(tmp_path):
    src, out = tmp_path / "log.csv", tmp_path / "o.parquet"
    src.write_text(GENERIC)
    cols = [a.replace("timestamp=time", "timestamp=ts") for a in GENERIC_COLS]
    assert_fails(run(src, *cols, "--out", out), out, f"{src}: missing column 'ts'", "columns found: visitor")


# -- empty input -------------------------------------------------------------------------------------


def test_empty_file(tmp_path):
    src, out = tmp_path / "empty.csv", tmp_path / "o.parquet"
    src.touch()
    assert_fails(run(src, "--out", out), out, f"{src}: file is empty")


def test_header_only(tmp_path):
    src, out = tmp_path / "head.csv", tmp_path / "o.parquet"
    src.write_text(shared_file(REES46_SAMPLE).read_text().splitlines()[0] + "\n")
    assert_fails(run(src, "--out", out), out, f"{src}: no data rows")


def test_empty_gzip(tmp_path):
    src, out = tmp_path / "empty.csv.gz", tmp_path / "o.parquet"
    src.write_bytes(gzip.compress(b""))
    assert_fails(run(src, "--out", out), out, f"{src}: file is empty")


# -- bad rows ----------------------------------------------------------------------------------------


def test_bad_rows_fail_at_the_first_with_its_physical_line(tmp_path):
    lines = taobao_lines()
    src, out = tmp_path / "tb.csv", tmp_path / "o.parquet"
    src.write_text("\n".join([*lines, "1,2,3,pv,yesterday", "1,,3,pv,1511544070", "1,2,3,zz,1511544070"]) + "\n")
    assert_fails(run(src, "--out", out), out,
                 f"{src}: line 4: unparsable time 'yesterday' in column 'timestamp'",
                 "3 bad rows in all (1 unparsable time, 1 missing item, 1 unknown event)")


def test_bad_rows_skipped_are_counted_with_their_first_line(tmp_path):
    lines = taobao_lines()
    src = tmp_path / "tb.csv"
    src.write_text("\n".join([*lines, "1,,3,pv,1511544070", *lines, "1,2,3,pv,x", "1,,3,pv,1"]) + "\n")
    report = prepare([src], tmp_path / "o.parquet", PrepareConfig(on_error="skip", dedupe=False))
    assert report["rows_read"] == 9 and report["events"] == 6
    assert report["dropped"]["missing item"] == {"rows": 2, "first": f"{src}: line 4", "value": None}
    assert report["dropped"]["unparsable time"] == {"rows": 1, "first": f"{src}: line 8", "value": "x"}


def test_line_numbers_count_the_header(tmp_path):
    src, out = tmp_path / "log.csv", tmp_path / "o.parquet"
    src.write_text(GENERIC.replace("2020-01-01T00:01:00", "soon"))
    assert_fails(run(src, *GENERIC_COLS, "--map", "basket=cart", "--out", out), out,
                 f"{src}: line 3: unparsable time 'soon' in column 'time'")


def test_ragged_csv_line(tmp_path):
    src, out = tmp_path / "tb.csv", tmp_path / "o.parquet"
    src.write_text("\n".join([*taobao_lines(), "1,2,3,pv,1511544070,extra"]) + "\n")
    assert_fails(run(src, "--out", out), out, f"{src}: line 4: 6 fields, expected 5")


def test_broken_json_line(tmp_path):
    src, out = tmp_path / "otto.jsonl", tmp_path / "o.parquet"
    good = '{"session": 1, "events": [{"aid": 5, "ts": 1659304800025, "type": "clicks"}]}'
    src.write_text(f"{good}\n{good}\n" + '{"session": 2, "events": [{"aid": 1\n')
    assert_fails(run(src, "--out", out), out, f"{src}: line 3: invalid JSON")


def test_other_inputs_in_a_failed_run_are_left_alone_and_an_old_output_survives(tmp_path):
    good, out = tmp_path / "good.csv", tmp_path / "o.parquet"
    good.write_text("\n".join(taobao_lines()) + "\n")
    assert run(good, "--out", out).exit_code == 0
    before = out.read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3,pv,1511544070\n1,2,3,pv,never\n")
    r = run(good, bad, "--out", out)
    assert r.exit_code == 2 and f"{bad}: line 2: unparsable time 'never'" in r.output
    assert out.read_bytes() == before and good.exists()


# -- options -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--gap", "soon"], "--gap 'soon': not a duration"),
        (["--gap", "0m"], "must be longer than zero"),
        (["--min-session-len", "0"], "--min-session-len must be at least 1 (got 0)"),
        (["--col", "colour=x"], "unknown field 'colour'"),
        (["--map", "view"], "expected NAME=VALUE"),
        (["--keep-sessions"], "has no session column"),
        (["--min-item-count", "1000000"], "no events left after filters"),
    ],
)
def test_bad_options(tmp_path, args, fragment):
    src, out = tmp_path / "tb.csv", tmp_path / "o.parquet"
    src.write_text("\n".join(taobao_lines()) + "\n")
    if args[0] == "--col":
        args = [*args, "--format", "taobao"]
    assert_fails(run(src, *args, "--out", out), out, fragment)


def test_out_must_not_be_an_input(tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("\n".join(taobao_lines()) + "\n")
    with pytest.raises(ConfigError, match="is also an input"):
        prepare([src], src)
