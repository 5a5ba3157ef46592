"""Sessions at a Hadoop URI (recs.spark.uri): listed and checked through the driver's Hadoop client.

The log sits in a "store" directory that is not the working directory and is named only by a
``file://`` URI; the Spark engine reads it to the same vocabulary and model as the polars engine reads
the same parts from a local path, the manifest's fingerprint comes from the listing (path, size,
modification time) and says so, and each bad input is one ``Error:`` line naming the URI: no such
path, no parts, a part that is not parquet, parts that disagree, a scheme with no file system.
Uses the one session of tests/spark_fixtures.py (``spark``, local[2]).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from recs.columns import Col
from recs.errors import RecsError
from recs.sessions.files import session_files
from recs.sessions.io import read_sessions

from helpers import one_line_error, planted_split, run_cli

pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]' (and Java 17+)")

from recs.spark import read, uri

TRAIN = ["--dim", "16", "--epochs", "2", "--workers", "1", "--cooc-k", "2", "--quiet"]


def store_log(store: Path, train: Path) -> Path:
    """``train`` as a hive-partitioned directory of parts in ``store`` (``interaction=`` in the path), with litter."""
    log = store / "logs" / "clicks and carts"  # a space: Hadoop escapes it in URIs, the listing must not care
    df = pl.read_parquet(train).with_row_index("_n")
    for (inter, part), g in df.with_columns((pl.col("_n") % 3).alias("_p")).group_by(Col.INTERACTION, "_p"):
        d = log / f"{Col.INTERACTION}={inter}"
        d.mkdir(parents=True, exist_ok=True)
        g.drop(Col.INTERACTION, "_p", "_n").write_parquet(d / f"part-{part}.parquet")
    (log / "_SUCCESS").touch()
    (log / "_temporary").mkdir()
    (log / "_temporary" / "part-9.parquet").write_bytes(b"half-written")  # skipped: a name starting with _
    return log


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("uri_data")
    planted_split(d, 12_000, 4)
    store_log(d / "store", d / "train.parquet")
    return d


def test_uri_listing_follows_the_local_rule(spark, planted):
    log = planted / "store" / "logs" / "clicks and carts"
    listed = uri.list_uri(spark, log.as_uri())
    local = session_files(log)
    assert [m.path for m in listed.members] == list(local.files) and len(local.files) == 12  # _temporary skipped
    assert listed.source.root == local.root
    assert all(m.uri.startswith("file:") and m.size == m.path.stat().st_size for m in listed.members)
    globbed = uri.list_uri(spark, log.as_uri() + "/interaction=c*")  # cart and click only
    assert {m.path.parent.name for m in globbed.members} == {"interaction=cart", "interaction=click"}
    assert uri.is_uri("file:///x") and uri.is_uri("s3a://bucket/x") and not uri.is_uri("C:/x")
    assert not uri.is_uri("logs/x.parquet")


def test_uri_input_reads_the_same_events(spark, planted):
    log = planted / "store" / "logs" / "clicks and carts"
    plan = read.plan_read_uri(spark, log.as_uri(), "s")
    events = read.read_spark_sessions(spark, plan)
    local = read_sessions(log)
    assert events.n_events == local.height and events.n_sessions == local[Col.SESSION].n_unique()
    assert events.frame.count() == local.height  # every event matched a listed member (none refused, none lost)


def test_cli_trains_from_a_file_uri_in_another_directory(spark, planted, tmp_path, monkeypatch):
    d = planted
    log = d / "store" / "logs" / "clicks and carts"
    monkeypatch.chdir(tmp_path)  # the driver's working directory is neither the store nor the output's
    assert run_cli("train-embeddings", log, "--out", d / "polars", *TRAIN).exit_code == 0
    r = run_cli("train-embeddings", log.as_uri(), "--out", "m", "--engine", "spark", *TRAIN)
    assert r.exit_code == 0, r.output
    a, b = (pl.read_parquet(p / "tokens.parquet") for p in (d / "polars", tmp_path / "m"))
    assert a.equals(b)
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["input"]["path"] == log.as_uri()
    assert manifest["input"]["fingerprint_of"] == uri.FINGERPRINT_OF
    before = manifest["input"]["fingerprint"]
    assert before == uri.list_uri(spark, log.as_uri()).fingerprint()
    part = next(log.glob("interaction=cart/part-*.parquet"))
    os.utime(part, (part.stat().st_atime, part.stat().st_mtime + 60))  # a rewritten part: a new time
    assert uri.list_uri(spark, log.as_uri()).fingerprint() != before
    assert run_cli("check", tmp_path / "m").exit_code == 0


def test_polars_engine_refuses_a_uri(planted, tmp_path):
    r = run_cli("train-embeddings", "file:///nowhere/logs", "--out", tmp_path / "m", *TRAIN)
    assert "give --engine spark" in one_line_error(r)


def test_bad_uri_inputs_are_one_line_each(spark, tmp_path):
    empty = tmp_path / "empty"
    (empty / "_temporary").mkdir(parents=True)
    (empty / "_SUCCESS").touch()
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "part-0.parquet").write_bytes(b"not parquet at all, just text")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pl.DataFrame({Col.SESSION: [1], Col.ITEM: [2], Col.INTERACTION: ["click"], Col.TIMESTAMP: [1_767_225_600]}
                 ).write_parquet(mixed / "part-0.parquet")
    pl.DataFrame({Col.SESSION: [1], Col.ITEM: ["x"], Col.INTERACTION: ["click"], Col.TIMESTAMP: [1_767_225_600]}
                 ).write_parquet(mixed / "part-1.parquet")
    cases = {
        (tmp_path / "missing").as_uri(): "cannot list it (FileNotFoundException",
        empty.as_uri(): "no parquet files below this URI",
        junk.as_uri(): "part-0.parquet: cannot read it as parquet",
        mixed.as_uri(): "column 'item_id' has type String, but Int64 in file:",
        "nosuchfs://host/logs": "cannot open its file system (UnsupportedFileSystemException",
    }
    for given, want in cases.items():
        with pytest.raises(RecsError, match=None) as e:
            read.plan_read_uri(spark, given)
        assert want in str(e.value) and "\n" not in str(e.value), (given, str(e.value))
        r = run_cli("train-embeddings", given, "--out", tmp_path / "m", "--engine", "spark", *TRAIN)
        assert want in one_line_error(r)
        assert not (tmp_path / "m").exists()  # nothing written


def test_a_part_spark_cannot_decode_is_one_line(spark, tmp_path):
    """Footers fine (the driver's checks pass), a page header damaged: the executors' read fails, and that
    is one line naming the input, the cause and the part, with nothing written (not Spark's traceback)."""
    log = tmp_path / "log"
    log.mkdir()
    frame = pl.DataFrame({Col.SESSION: [1, 2] * 50, Col.ITEM: list(range(100)),
                          Col.INTERACTION: ["click", "cart"] * 50, Col.TIMESTAMP: [1_767_225_600] * 100})
    frame.write_parquet(log / "part-0.parquet", compression="uncompressed")
    data = bytearray((log / "part-0.parquet").read_bytes())
    data[4:40] = b"\xff" * 36  # the first page header, right after the leading PAR1
    (log / "part-0.parquet").write_bytes(bytes(data))
    r = run_cli("train-embeddings", log.as_uri(), "--out", tmp_path / "m", "--engine", "spark", *TRAIN)
    line = one_line_error(r)
    assert line.startswith(f"Error: reading {log.as_uri()}: Spark failed: ") and "part-0.parquet" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log"]


def test_work_dir_uri_in_local_mode(spark, planted, tmp_path):
    """--work-dir on a local master: the executors write below the URI, the driver copies it down (the
    code path of a cluster without a shared mount), the same tokens, and nothing is left at the URI."""
    d = planted
    if not (d / "polars").exists():
        assert run_cli("train-embeddings", d / "train.parquet", "--out", d / "polars", *TRAIN).exit_code == 0
    work = tmp_path / "store work"
    work.mkdir()
    r = run_cli("train-embeddings", d / "train.parquet", "--out", tmp_path / "m", "--engine", "spark",
                "--work-dir", work.as_uri(), *TRAIN)
    assert r.exit_code == 0, r.output
    assert pl.read_parquet(tmp_path / "m" / "tokens.parquet").equals(pl.read_parquet(d / "polars" / "tokens.parquet"))
    assert list(work.iterdir()) == []
    r = run_cli("build-index", "--model", tmp_path / "m", "--out", tmp_path / "i", "--k", 10, "--threads", 1,
                "--engine", "spark", "--work-dir", work, "--quiet")
    assert r.exit_code == 0, r.output
    assert run_cli("check", tmp_path / "i").exit_code == 0 and list(work.iterdir()) == []


def test_work_dir_needs_spark(planted, tmp_path):
    d = planted
    r = run_cli("train-embeddings", d / "train.parquet", "--out", tmp_path / "m", "--work-dir", tmp_path, *TRAIN)
    assert "--work-dir" in one_line_error(r) and "is for --engine spark" in one_line_error(r)
    r = run_cli("build-index", "--model", d / "polars", "--out", "file:///nowhere/index", "--engine", "spark",
                "--work-dir", tmp_path)
    assert "the executors write the index at the URI itself; drop --work-dir" in one_line_error(r)
    assert not (tmp_path / "m").exists()


def test_relative_paths_after_the_driver_changed_directory(spark, planted, tmp_path, monkeypatch):
    """The JVM keeps the working directory it started in; recs hands Spark absolute file:// URIs, so a
    process that changed directory since (a notebook, this test) still reads and writes its own paths."""
    d = planted
    assert run_cli("train-embeddings", d / "train.parquet", "--out", d / "small", *TRAIN).exit_code == 0
    monkeypatch.chdir(tmp_path)
    r = run_cli("build-index", "--model", d / "small", "--out", "idx", "--k", 10, "--threads", 1,
                "--engine", "spark", "--quiet")  # shipped files and staged parts under a relative --out
    assert r.exit_code == 0, r.output
    assert run_cli("check", tmp_path / "idx").exit_code == 0
    r = run_cli("train-embeddings", "../" + os.path.relpath(d / "train.parquet", tmp_path.parent), "--out", "m2",
                "--engine", "spark", *TRAIN)
    assert r.exit_code == 0, r.output
    assert pl.read_parquet(tmp_path / "m2" / "tokens.parquet").equals(pl.read_parquet(d / "small" / "tokens.parquet"))
