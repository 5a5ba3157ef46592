"""Sessions as a directory of parquet parts or a glob, read as one table (issue 12, "Sessions in").

A planted log written as one file, as a hive-partitioned directory in Spark's layout (``dt=.../part-*``
with ``_SUCCESS``, ``.crc`` and ``_temporary/`` beside the parts) and as a glob must give the same
canonical frame and the same results; a part that disagrees is one error naming it; the manifest
fingerprint follows the members; an output inside the input is refused.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from recs.artifacts import fingerprint_file
from recs.candidates.build import load_candidates
from recs.columns import Col
from recs.errors import ConfigError, InputError, SchemaError
from recs.paths import check_paths
from recs.sessions import files as files_mod
from recs.sessions.files import fingerprint_sessions, is_skipped, partition_values, session_files
from recs.sessions.io import read_sessions, validate_sessions

from helpers import one_line_error, planted_split, run_cli, tree

TINY = ["--dim", "8", "--epochs", "1", "--workers", "1", "--seed", "3", "--quiet"]
SPARK_LITTER = ("_SUCCESS", "._SUCCESS.crc", "_committed_8123", "_started_8123")


def write_parts(frame: pl.DataFrame, root: Path, empty_part: bool = True) -> Path:
    """``frame`` as Spark's ``partitionBy("dt")`` writes it: two parts per day (sessions split by
    parity, so a session's same-day events stay in one part), written in reverse name order so the
    creation order is not the sorted one, with Spark's bookkeeping files and a stray temporary part
    holding other rows (read, it would change every count)."""
    day = frame.with_columns(pl.col(Col.TIMESTAMP).dt.date().cast(pl.String).alias("dt"))
    jobs = []
    for (d,), g in day.group_by("dt"):
        for k in range(2):
            jobs.append((root / f"dt={d}" / f"part-{k:05d}-c000.snappy.parquet",
                         g.filter(pl.col(Col.SESSION) % 2 == k).drop("dt")))
    for path, part in sorted(jobs, key=lambda j: str(j[0]), reverse=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_parquet(path)
        (path.parent / f".{path.name}.crc").write_bytes(b"crc")
    if empty_part:  # Spark writes empty parts for empty tasks
        frame.clear().write_parquet(max(j[0] for j in jobs).parent / "part-00009-c000.snappy.parquet")
    for name in SPARK_LITTER:
        (root / name).write_bytes(b"")
    (root / "_temporary" / "0").mkdir(parents=True)
    frame.head(50).write_parquet(root / "_temporary" / "0" / "part-00000.parquet")
    return root


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    """A planted log and its split, each also as a partitioned directory (``*_dir``)."""
    d = tmp_path_factory.mktemp("logs")
    planted_split(d, 3000, 4)
    for name in ("s", "train", "test"):
        write_parts(pl.read_parquet(d / f"{name}.parquet"), d / f"{name}_dir")
    return d


def frame_of(path: object) -> pl.DataFrame:
    return read_sessions(path)


# -- one table, whichever way it is stored -------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["{d}/{n}_dir", "{d}/{n}_dir/", "{d}/{n}_dir/*/*.parquet",
                                      "{d}/{n}_dir/**/*.parquet", "{d}/{n}_dir/dt=*"])
def test_file_directory_and_glob_give_one_frame(logs, spelling):
    for name in ("s", "train", "test"):
        one = frame_of(logs / f"{name}.parquet")
        parts = frame_of(spelling.format(d=logs, n=name))
        assert parts.equals(one), (name, spelling)
        assert parts.columns == one.columns  # dt is not a canonical column: dropped
        assert "dt" not in parts.columns and one.height > 100


def test_members_are_the_parts_only_and_sorted(logs):
    src = session_files(logs / "s_dir")
    rel = [str(src.relative(f)) for f in src.files]
    assert rel == sorted(rel) and len(rel) == 2 * 10 + 1  # ten days, two parts each, one empty part
    assert all(r.startswith("dt=") and r.endswith(".parquet") for r in rel)
    assert src.partitions(src.files[0]) == {"dt": rel[0].split("/")[0][3:]}


def test_listing_order_never_changes_the_table(logs, monkeypatch, tmp_path):
    """Two events of one session at one instant in two parts: ties keep the parts' sorted order,
    whatever order the file system lists them in."""
    t = datetime(2026, 11, 1, 10, tzinfo=timezone.utc)
    row = {Col.SESSION: [1], Col.INTERACTION: ["click"], Col.TIMESTAMP: [t]}
    (tmp_path / "dt=2026-11-01").mkdir()
    pl.DataFrame({**row, Col.ITEM: [11]}).write_parquet(tmp_path / "dt=2026-11-01" / "part-1.parquet")
    pl.DataFrame({**row, Col.ITEM: [10]}).write_parquet(tmp_path / "dt=2026-11-01" / "part-0.parquet")
    before = frame_of(logs / "s_dir"), frame_of(tmp_path), fingerprint_sessions(logs / "s_dir")
    real = os.scandir
    monkeypatch.setattr(files_mod.os, "scandir", lambda p: iter(sorted(real(p), key=lambda e: e.name, reverse=True)))
    after = frame_of(logs / "s_dir"), frame_of(tmp_path), fingerprint_sessions(logs / "s_dir")
    assert after[0].equals(before[0]) and after[2] == before[2]
    assert before[1][Col.ITEM].to_list() == after[1][Col.ITEM].to_list() == [10, 11]


def test_partitions_named_like_canonical_columns_fill_them(tmp_path):
    """Spark's ``partitionBy("interaction", "shop_id")`` moves the columns into the path; they come back,
    shop ids typed by the id rule (integers here), ``%3D`` unescaped, Hive's null marker read as null."""
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    one = pl.DataFrame({
        Col.SESSION: [1, 1, 2, 2, 3], Col.ITEM: [10, 11, 10, 12, 13],
        Col.INTERACTION: ["click", "cart", "click", "a=b", "cart"],
        Col.TIMESTAMP: [t0.replace(hour=h) for h in (1, 2, 3, 4, 5)], Col.SHOP: [7, 7, 8, None, 7]})
    for (inter, shop), g in one.group_by(Col.INTERACTION, Col.SHOP):
        value = "__HIVE_DEFAULT_PARTITION__" if shop is None else shop
        d = tmp_path / "log" / f"interaction={inter.replace('=', '%3D')}" / f"shop_id={value}" / "dt=2026-11-01"
        d.mkdir(parents=True)
        g.drop(Col.INTERACTION, Col.SHOP).write_parquet(d / "part-0.parquet")
    got = frame_of(tmp_path / "log")
    assert got.schema[Col.SHOP] == pl.Int64
    assert got.equals(validate_sessions(one))
    # shop ids that are not all canonical integers stay text, as from a CSV
    clicks = tmp_path / "log" / "interaction=click"
    os.rename(clicks / "shop_id=7", clicks / "shop_id=007")
    assert frame_of(tmp_path / "log").schema[Col.SHOP] == pl.String
    assert partition_values(Path("a=1/b=x%2Fy/c/part.parquet")) == {"a": "1", "b": "x/y"}


def test_spark_rule_for_skipped_names():
    for name in ("_SUCCESS", "_committed_1", "_started_1", "_temporary", "_delta_log", "_metadata",
                 ".part-0.parquet.crc", ".hidden", "part-0.parquet._COPYING_"):
        assert is_skipped(name), name
    for name in ("part-00000-c000.snappy.parquet", "dt=2026-11-01", "_dt=2026-11-01", "x_y.parquet"):
        assert not is_skipped(name), name


# -- every command reads the same rows ------------------------------------------------------------------

def test_commands_give_the_same_results_from_a_directory(logs, tmp_path):
    out = tmp_path
    # train-embeddings: the same tokens (counts included) from the file and from the directory
    for tag, src in (("file", logs / "train.parquet"), ("dir", logs / "train_dir")):
        r = run_cli("train-embeddings", src, "--out", out / f"model_{tag}", *TINY)
        assert r.exit_code == 0, r.output
    tok = [pl.read_parquet(out / f"model_{t}" / "tokens.parquet") for t in ("file", "dir")]
    assert tok[0].equals(tok[1]) and tok[0].height > 100
    manifest = json.loads((out / "model_dir" / "manifest.json").read_text())
    assert manifest["input"]["fingerprint"] == fingerprint_sessions(logs / "train_dir")
    # build-index --method from a glob, eval-hitrate on a directory: same candidates, same hit rates
    for tag, train in (("file", logs / "train.parquet"), ("glob", f"{logs}/train_dir/*/*.parquet")):
        r = run_cli("build-index", "--method", "co-visitation", "--sessions", train, "--out", out / f"ix_{tag}",
                    "--k", 10, "--quiet")
        assert r.exit_code == 0, r.output
    for name in ("click_to_cart", "cart_to_cart"):
        a, b = (load_candidates(out / f"ix_{t}", name) for t in ("file", "glob"))
        assert a.equals(b) and a.height > 0
    for tag, test in (("file", logs / "test.parquet"), ("dir", logs / "test_dir")):
        r = run_cli("eval-hitrate", "--index", out / "ix_file", "--sessions", test, "--json", out / f"e_{tag}.json")
        assert r.exit_code == 0, r.output
    ev = [json.loads((out / f"e_{t}.json").read_text()) for t in ("file", "dir")]
    assert ev[0]["results"] == ev[1]["results"] and any(row["hits"] for row in ev[0]["results"])
    # split of a glob = split of the file; stats of a directory = stats of the file
    for tag, src in (("file", logs / "s.parquet"), ("glob", f"{logs}/s_dir/**/*.parquet")):
        r = run_cli("split", src, "--train", out / f"tr_{tag}.parquet", "--test", out / f"te_{tag}.parquet",
                    "--json", out / f"sp_{tag}.json")
        assert r.exit_code == 0, r.output
        assert run_cli("stats", src, "--json", out / f"st_{tag}.json").exit_code == 0
    for side in ("tr", "te"):
        assert pl.read_parquet(out / f"{side}_file.parquet").equals(pl.read_parquet(out / f"{side}_glob.parquet"))
    assert pl.read_parquet(out / "tr_glob.parquet").equals(pl.read_parquet(logs / "train.parquet"))
    stats = [json.loads((out / f"st_{t}.json").read_text()) for t in ("file", "glob")]
    assert stats[0] == stats[1] and stats[0]["events"] == 3000


def test_compare_reads_two_directories(logs, tmp_path):
    for tag, pair in (("file", ("train.parquet", "test.parquet")), ("dir", ("train_dir", "test_dir"))):
        r = run_cli("compare", *(logs / p for p in pair), "--methods", "co-visitation", "--k", 10,
                    "--json", tmp_path / f"c_{tag}.json", "--quiet")
        assert r.exit_code == 0, r.output
    rows = [[{k: v for k, v in row.items() if not k.endswith("_s")}
             for row in json.loads((tmp_path / f"c_{t}.json").read_text())["table1"]] for t in ("file", "dir")]
    assert rows[0] == rows[1] and rows[0]


# -- parts that disagree, and inputs that are not sessions ----------------------------------------------

def _copy(logs: Path, tmp_path: Path) -> tuple[Path, list[Path]]:
    d = shutil.copytree(logs / "s_dir", tmp_path / "log")
    return d, list(session_files(d).files)


def _missing_column(d, parts):
    pl.read_parquet(parts[3]).drop(Col.ITEM).write_parquet(parts[3])
    return parts[3], ["missing column 'item_id'", "the parts of one input must have the same columns"]


def _missing_optional(d, parts):
    pl.read_parquet(parts[5]).drop(Col.SHOP).write_parquet(parts[5])
    return parts[5], ["missing column 'shop_id'"]


def _other_dtype(d, parts):
    pl.read_parquet(parts[4]).with_columns(pl.col(Col.ITEM).cast(pl.String)).write_parquet(parts[4])
    return parts[4], ["column 'item_id' has type String, but Int64 in", str(parts[0])]


def _both_in_file_and_path(d, parts):
    p = d / "interaction=click" / "part-0.parquet"
    p.parent.mkdir()
    pl.read_parquet(parts[0]).write_parquet(p)
    return p, ["column 'interaction' is both in the file and in its path (interaction=click)"]


def _csv_inside(d, parts):
    p = parts[2].parent / "extra.csv"
    pl.read_parquet(parts[2]).write_csv(p)
    return p, ["CSV in the sessions input", "read as parquet parts"]


def _text_file_inside(d, parts):
    (d / "README.txt").write_text("notes")
    return d / "README.txt", ["not a parquet file"]


def _null_in_a_part(d, parts):
    df = pl.read_parquet(parts[6])
    df.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise(pl.col(Col.ITEM)).alias(Col.ITEM)
                    ).write_parquet(parts[6])
    return parts[6], ["column 'item_id' is empty (null) in row 3"]


def _time_out_of_range(d, parts):
    df = pl.read_parquet(parts[7]).with_columns(pl.col(Col.TIMESTAMP).dt.epoch("s"))
    for p in parts:  # every part integer seconds (one type), one value in milliseconds
        pl.read_parquet(p).with_columns(pl.col(Col.TIMESTAMP).dt.epoch("s")).write_parquet(p)
    df.with_columns(pl.when(pl.int_range(pl.len()) == 1).then(pl.col(Col.TIMESTAMP) * 1000)
                    .otherwise(pl.col(Col.TIMESTAMP)).alias(Col.TIMESTAMP)).write_parquet(parts[7])
    return parts[7], ["column 'timestamp' row 2", "use --time-unit ms"]


def _zero_byte_part(d, parts):
    parts[1].write_bytes(b"")
    return parts[1], ["file is empty"]


def _garbage_part(d, parts):
    parts[1].write_bytes(b"PAR1 not parquet at all")
    return parts[1], ["cannot read as parquet"]


def _no_rows_anywhere(d, parts):
    for p in parts:
        pl.read_parquet(p).clear().write_parquet(p)
    return d, ["has no rows in any of its 21 files"]


def _empty_directory(d, parts):
    shutil.rmtree(d)
    d.mkdir()
    return d, ["no parquet files in this directory"]


def _only_spark_litter(d, parts):
    for p in parts:
        p.unlink()
    return d, ["no parquet files in this directory", "names starting with _ or . are skipped"]


def _glob_matching_nothing(d, parts):
    return Path(f"{d}/*/*.pq"), ["no file matches this pattern"]


BAD = {f.__name__.lstrip("_"): f for f in (
    _missing_column, _missing_optional, _other_dtype, _both_in_file_and_path, _csv_inside, _text_file_inside,
    _null_in_a_part, _time_out_of_range, _zero_byte_part, _garbage_part, _no_rows_anywhere, _empty_directory,
    _only_spark_litter, _glob_matching_nothing)}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_parts_are_one_line_naming_the_file(logs, tmp_path, case):
    d, parts = _copy(logs, tmp_path)
    culprit, words = BAD[case](d, parts)
    given = culprit if case == "glob_matching_nothing" else d
    msg = one_line_error(run_cli("stats", given, "--json", tmp_path / "st.json"))
    assert f"Error: {culprit}:" in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    assert not (tmp_path / "st.json").exists()


SESSION_COMMANDS = {
    "stats": lambda s, o, g: ["stats", s, "--json", o / "st.json"],
    "split": lambda s, o, g: ["split", s, "--train", o / "a.parquet", "--test", o / "b.parquet"],
    "train-embeddings": lambda s, o, g: ["train-embeddings", s, "--out", o / "model", *TINY],
    "build-index": lambda s, o, g: ["build-index", "--method", "co-visitation", "--sessions", s, "--out", o / "ix",
                                    "--quiet"],
    "eval-hitrate": lambda s, o, g: ["eval-hitrate", "--index", g, "--sessions", s, "--json", o / "e.json"],
    "compare": lambda s, o, g: ["compare", s, "--methods", "co-visitation", "--json", o / "c.json", "--quiet"],
}


@pytest.fixture(scope="module")
def index(logs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ix") / "ix"
    r = run_cli("build-index", "--method", "co-visitation", "--sessions", logs / "train_dir", "--out", out,
                "--k", 10, "--quiet")
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.parametrize("command", list(SESSION_COMMANDS))
def test_every_sessions_command_reads_directories(logs, index, tmp_path, command):
    """Every reader goes through one function: a part that disagrees is named by each command alike."""
    d, parts = _copy(logs, tmp_path)
    culprit, _ = _other_dtype(d, parts)
    out = tmp_path / "out"
    out.mkdir()
    msg = one_line_error(run_cli(*SESSION_COMMANDS[command](d, out, index)))
    assert f"Error: {culprit}: column 'item_id'" in msg, msg
    assert tree(out) == set()


def test_library_errors_are_typed(logs, tmp_path):
    d, parts = _copy(logs, tmp_path)
    with pytest.raises(InputError, match="no such file or directory"):
        read_sessions(tmp_path / "nothing")
    _other_dtype(d, parts)
    with pytest.raises(SchemaError, match="column 'item_id' has type String"):
        read_sessions(d)


# -- the fingerprint follows the members ----------------------------------------------------------------

def test_fingerprint_of_a_directory(logs, tmp_path):
    d, parts = _copy(logs, tmp_path)
    fp = fingerprint_sessions(d)
    assert len(fp) == 32 and fingerprint_sessions(d) == fp
    assert fingerprint_sessions(f"{d}/**/*.parquet") == fp  # the same members by a glob
    assert fingerprint_sessions(shutil.copytree(d, tmp_path / "moved")) == fp  # moving the input is no change
    assert fingerprint_sessions(logs / "s.parquet") == fingerprint_file(logs / "s.parquet")  # one file: as before
    # Spark's bookkeeping is not data: touching it changes nothing
    (d / "_SUCCESS").write_text("written again")
    (parts[0].parent / ".new.crc").write_bytes(b"x")
    assert fingerprint_sessions(d) == fp
    # a member changed in place (same size), added, or renamed: a new fingerprint each time
    data = bytearray(parts[2].read_bytes())
    data[len(data) // 2] ^= 0xFF
    parts[2].write_bytes(bytes(data))
    changed = fingerprint_sessions(d)
    assert changed != fp
    shutil.copy(parts[0], parts[0].parent / "part-00007.parquet")
    added = fingerprint_sessions(d)
    assert added not in (fp, changed)
    os.rename(parts[0].parent / "part-00007.parquet", parts[0].parent / "part-00008.parquet")
    assert fingerprint_sessions(d) not in (fp, changed, added)


# -- outputs inside an input ----------------------------------------------------------------------------

def test_output_inside_an_input_directory_is_refused(logs, tmp_path):
    d, _ = _copy(logs, tmp_path)
    before = tree(d)
    msg = one_line_error(run_cli("split", d, "--train", d / "dt=2027-01-01" / "t.parquet",
                                 "--test", tmp_path / "te.parquet"))
    assert "--train" in msg and "lies inside an input (SESSIONS" in msg
    msg = one_line_error(run_cli("train-embeddings", d, "--out", d / "model", *TINY))
    assert "--out" in msg and "lies inside an input" in msg
    assert tree(d) == before and not (tmp_path / "te.parquet").exists()


def test_output_a_glob_would_read_is_refused(logs, tmp_path):
    d, _ = _copy(logs, tmp_path)
    before = tree(d)
    # a file the pattern matches, though it does not exist yet: the next run would read it
    msg = one_line_error(run_cli("split", f"{d}/*/*.parquet", "--train", d / "dt=2027-01-01" / "t.parquet",
                                 "--test", tmp_path / "te.parquet"))
    assert "is matched by the input pattern" in msg and "--train" in msg
    # a model directory whose tokens.parquet the pattern would match
    msg = one_line_error(run_cli("train-embeddings", f"{d}/**/*.parquet", "--out", d / "model", *TINY))
    assert "would hold files read by the input pattern" in msg
    assert tree(d) == before
    # beside the input, where the pattern does not reach: allowed
    check_paths([("SESSIONS", f"{d}/*/*.parquet")], [("--json", d / "summary.json")])
    check_paths([("SESSIONS", f"{d}/dt=*/*.parquet")], [("--out", d / "model")], directories=True)
    with pytest.raises(ConfigError, match="would hold files"):
        check_paths([("SESSIONS", f"{d}/dt=*/*.parquet")], [("--out", d / "dt=x")], directories=True)
