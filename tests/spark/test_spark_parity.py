"""``--engine spark`` of train-embeddings gives the polars engine's vocabulary, pairs and corpus.

Same input, same TrainConfig: ``tokens.parquet`` equal (values, types, order), the pairs table equal
(p, q, sessions, types, (p, q) order), the corpus files equal byte for byte, so with one training
thread the vectors are equal too. Checked on a planted log slice through the CLI, and on a hand-built
log made to break a careless port: a hive-partitioned directory (``dt=/interaction=/part-N``, the
interaction given only by the path), text item ids that look like integers (``7``, ``07``) or sort by
bytes (``Z``, ``z``, ``é``), 500-event sessions (longer than the tests' per-task chunk and Arrow batch,
so sessions are gathered across batches), events of one session at one second filed in two parts
(the tie is broken by file order), count ties everywhere (top-k and vocabulary tie-breaks), same-item
pairs on and off, min_count 2, k 1 and k 0. Reader errors say the same as ``read_sessions``.
Uses the one session of tests/spark/conftest.py (``spark``, local[2]).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recs.columns import Col
from recs.config import CoocConfig
from recs.embeddings.cooc import regularization_pairs
from recs.embeddings.corpus import PairIterable, SessionIterable, write_pair_corpus, write_session_corpus
from recs.embeddings.tokens import tokenize
from recs.errors import ConfigError, RecsError
from recs.sessions.io import read_sessions
from recs.spark.session import check_java, java_major

from helpers import assert_same_model, one_line_error, planted_split, run_cli

pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]' (and Java 17+)")

from recs.spark import cooc, corpus, read, tokens

TRAIN = ["--dim", "16", "--epochs", "2", "--workers", "1", "--cooc-k", "2"]
CHUNK = 300  # events per task chunk in the hand-log tests: a 500-event session spans chunks and batches
BATCH = "100"  # Arrow batch rows


# ---------------------------------------------------------------- the hand-built log


def hand_log(root: Path) -> None:
    """Write the hand-built log (module doc) under ``root`` as dt=DAY/interaction=NAME/part-N.parquet."""
    rng = np.random.default_rng(12)
    items = np.array(["7", "07", "007", "Z", "z", "é", "a-b", "a"] + [f"sku{i}" for i in range(40)])
    kinds = np.array(["click", "click", "click", "cart", "favorite", "purchase"])
    rows = []
    t0 = 1_767_225_600  # 2026-01-01 00:00:00 UTC, in seconds
    sessions = [(s, 500) for s in range(4)] + [(s, int(rng.integers(1, 12))) for s in range(4, 300)]
    for s, n in sessions:
        # gaps of 0 s (ties) or 40 s; popular items first, so counts tie often
        t = t0 + int(rng.integers(0, 3 * 86_400)) + np.cumsum(rng.choice([0, 0, 40], size=n))
        it = items[np.minimum(rng.geometric(0.15, size=n) - 1, len(items) - 1)]
        rows += [(s, str(i), str(k), int(ts)) for i, k, ts in zip(it, rng.choice(kinds, size=n), t, strict=True)]
    df = pl.DataFrame(rows, schema={Col.SESSION: pl.Int64, Col.ITEM: pl.String, Col.INTERACTION: pl.String,
                                    Col.TIMESTAMP: pl.Int64}, orient="row")
    df = df.with_columns(
        pl.from_epoch(Col.TIMESTAMP).dt.strftime("%Y-%m-%d").alias("dt"),
        pl.Series("part", rng.integers(0, 2, size=df.height)),
    ).sample(fraction=1.0, shuffle=True, seed=4)  # rows of a file in no particular order
    for (dt, inter, part), g in df.group_by("dt", Col.INTERACTION, "part"):
        d = root / f"dt={dt}" / f"{Col.INTERACTION}={inter}"
        d.mkdir(parents=True, exist_ok=True)
        g.drop("dt", "part", Col.INTERACTION).write_parquet(d / f"part-{part}.parquet")
    (root / "_SUCCESS").touch()  # Spark's litter, skipped by both readers
    (root / ".part-0.parquet.crc").touch()


@pytest.fixture(scope="module")
def hand(spark, tmp_path_factory):
    """The hand log on Spark: events, vocabulary and persisted sequences per min_count, small Arrow batches."""
    root = tmp_path_factory.mktemp("hand")
    hand_log(root / "log")
    before = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", BATCH)
    events = read.read_spark_sessions(spark, root / "log", time_unit="s")
    out = {"root": root, "events": events, "polars": read_sessions(root / "log", time_unit="s")}
    yield out
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", before)


def spark_side(hand, min_count: int, work: Path):
    """(vocabulary, persisted sequences) of the hand log on Spark."""
    work.mkdir(parents=True, exist_ok=True)
    vocab = tokens.count_tokens(hand["events"], min_count, work).vocab
    return vocab, tokens.spark_sequences(hand["events"], vocab, work, partitions=3).persist()


def test_hand_log_is_what_it_claims(hand):
    df = hand["polars"]
    lengths = df.group_by(Col.SESSION).len()["len"]
    assert lengths.max() == 500 and (lengths == 500).sum() == 4
    assert df.select(pl.struct(Col.SESSION, Col.TIMESTAMP).is_duplicated().sum()).item() > 500  # time ties
    files = {f for f in (hand["root"] / "log").rglob("*.parquet")}
    assert len(files) > 10 and {Col.INTERACTION} & set(pl.read_parquet_schema(next(iter(files)))) == set()
    assert df[Col.ITEM].dtype == pl.String and {"7", "07", "007"} <= set(df[Col.ITEM].to_list())


@pytest.mark.parametrize("min_count", [1, 2])
def test_hand_log_vocabulary_and_corpus(hand, tmp_path, min_count):
    tok = tokenize(hand["polars"], min_count)
    vocab, seq = spark_side(hand, min_count, tmp_path)
    try:
        assert hand["events"].n_events == hand["polars"].height
        assert hand["events"].n_sessions == hand["polars"][Col.SESSION].n_unique()
        assert vocab.equals(tok.vocab) and vocab.schema == tok.vocab.schema
        assert vocab[Col.COUNT].is_duplicated().any()  # the vocabulary tie-break was exercised

        lines = corpus.part_files(corpus.write_session_lines(seq, tmp_path, chunk_events=CHUNK), ".txt")
        assert len(lines) == 3
        corpus.concatenate(lines, tmp_path / "spark.txt", remove=False)
        write_session_corpus(tok.sequences, tmp_path / "polars.txt")
        assert (tmp_path / "spark.txt").read_bytes() == (tmp_path / "polars.txt").read_bytes()
        assert list(corpus.LinesIterable(lines)) == list(SessionIterable(tok.sequences))  # --corpus-mode iterable
        if min_count == 1:
            check_pairs(tok, vocab, seq, tmp_path)
    finally:
        seq.unpersist()


def check_pairs(tok, vocab: pl.DataFrame, seq, tmp_path: Path) -> None:
    """The pairs of four settings on the same Spark sequences equal the polars engine's."""
    configs = [CoocConfig(k=3), CoocConfig(k=2, horizon=5, same_item=True), CoocConfig(k=1, horizon=50),
               CoocConfig(k=0)]
    for i, cfg in enumerate(configs):
        want = regularization_pairs(tok.sequences, tok.vocab, cfg)
        got_dir = cooc.write_pairs(seq, cfg, vocab.height, tmp_path / f"w{i}", chunk_events=CHUNK)
        got = cooc.read_pairs(got_dir)
        assert got.equals(want) and got.schema == want.schema, cfg
        assert (got_dir is None) == (cfg.k == 0) and (got.height > 0) == (cfg.k > 0)
        if cfg.k:
            n = corpus.write_pair_lines(got_dir, tmp_path / f"p{i}.txt")
            write_pair_corpus(want, tmp_path / f"q{i}.txt")
            assert n == 2 * want.height
            assert (tmp_path / f"p{i}.txt").read_bytes() == (tmp_path / f"q{i}.txt").read_bytes()
            words = SessionIterable(tok.sequences).words
            assert list(corpus.LinesIterable([tmp_path / f"p{i}.txt"])) == list(PairIterable(want, words))
    # the settings made a difference
    pair_sets = [regularization_pairs(tok.sequences, tok.vocab, c) for c in configs[:3]]
    assert len({p.height for p in pair_sets}) == 3


def test_same_item_rule_differs_on_the_hand_log(hand, tmp_path):
    """Not vacuous: on this log keeping same-item pairs changes which pairs are kept."""
    tok = tokenize(hand["polars"])
    off = regularization_pairs(tok.sequences, tok.vocab, CoocConfig(k=2))
    on = regularization_pairs(tok.sequences, tok.vocab, CoocConfig(k=2, same_item=True))
    item = tok.vocab[Col.ITEM].to_numpy()
    assert not (item[off["p"].to_numpy()] == item[off["q"].to_numpy()]).any()
    assert (item[on["p"].to_numpy()] == item[on["q"].to_numpy()]).any()


# ---------------------------------------------------------------- the planted log, end to end


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("spark_train")
    planted_split(d, 20_000, 3)
    assert run_cli("train-embeddings", d / "train.parquet", "--out", d / "polars", "--quiet", *TRAIN).exit_code == 0
    return d


def test_cli_spark_engine_trains_the_polars_model(spark, planted):
    d = planted
    r = run_cli("train-embeddings", d / "train.parquet", "--out", d / "spark", "--engine", "spark", *TRAIN)
    assert r.exit_code == 0, r.output
    # progress per stage, one plain line each (no Spark progress bar, no log lines)
    for stage in ("read sessions: ", "tokens: ", "corpus: ", "co-occurrence: ", "corpus file: ", "training: "):
        assert stage in r.output, r.output
    assert f"spark on {spark.sparkContext.master}" in r.output
    assert_same_model(d / "polars", d / "spark")
    ma, mb = (json.loads((d / m / "manifest.json").read_text()) for m in ("polars", "spark"))
    assert mb["engine"]["name"] == "spark" and mb["engine"]["partitions"] == 4 and "engine" not in ma
    assert sorted(p.name for p in d.iterdir() if p.name.startswith(".")) == []  # the work directory is gone
    assert run_cli("check", d / "spark").exit_code == 0


# ---------------------------------------------------------------- reading: the same errors


def _both_refuse(spark, path: Path, time_unit: str = "s") -> tuple[str, str]:
    with pytest.raises(RecsError) as a:
        read_sessions(path, time_unit=time_unit)
    with pytest.raises(RecsError) as b:
        read.read_spark_sessions(spark, path, time_unit=time_unit)
    return str(a.value), str(b.value)


def test_bad_values_are_named_as_read_sessions_names_them(spark, tmp_path):
    good = {Col.SESSION: [1, 1, 2, 2], Col.ITEM: [5, 6, 5, 7], Col.INTERACTION: ["click", "cart", "click", "click"],
            Col.TIMESTAMP: [1_767_225_600 + i for i in range(4)]}
    cases = {
        "null_item": {**good, Col.ITEM: [5, 6, None, 7]},
        "blank": {**good, Col.INTERACTION: ["click", " \t", "click", "cart"]},
        "range": {**good, Col.TIMESTAMP: [1_767_225_600, 1_767_225_600_000, 1, 2]},
    }
    for name, data in cases.items():
        d = tmp_path / name
        d.mkdir()
        pl.DataFrame(good).write_parquet(d / "part-0.parquet")
        pl.DataFrame(data).write_parquet(d / "part-1.parquet")
        want, got = _both_refuse(spark, d)
        assert got == want and "part-1.parquet" in got, name
    assert "row 2" in want and "--time-unit ms" in want  # the range message names the row and the unit


def test_text_inputs_are_refused_with_the_way_out(spark, tmp_path):
    df = pl.DataFrame({Col.SESSION: [1, 1], Col.ITEM: [5, 6], Col.INTERACTION: ["click", "cart"],
                       Col.TIMESTAMP: ["2026-01-01T00:00:00", "2026-01-01T00:01:00"]})
    df.write_csv(tmp_path / "s.csv")
    df.write_parquet(tmp_path / "s.parquet")
    for path in (tmp_path / "s.csv", tmp_path / "s.parquet"):
        with pytest.raises(RecsError, match="recs prepare"):
            read.read_spark_sessions(spark, path)
    r = run_cli("train-embeddings", tmp_path / "s.csv", "--out", tmp_path / "m", "--engine", "spark")
    assert "recs prepare" in one_line_error(r)


# ---------------------------------------------------------------- session, Java, logs


def test_spark_start_leaves_no_log_lines(spark_startup_stderr):
    """Only the JVM's own notice (``WARNING: Using incubator modules``) may reach stderr while Spark starts."""
    lines = [ln for ln in spark_startup_stderr.splitlines() if ln.strip()]
    assert not [ln for ln in lines if not ln.startswith("WARNING: Using incubator modules")], lines


def tiny_log(path: Path) -> Path:
    pl.DataFrame({Col.SESSION: [1, 1], Col.ITEM: [5, 6], Col.INTERACTION: ["click", "cart"],
                  Col.TIMESTAMP: [1_767_225_600, 1_767_225_660]}).write_parquet(path)
    return path


def test_master_other_than_the_running_one_is_refused(spark, tmp_path):
    tiny_log(tmp_path / "x.parquet")
    r = run_cli("train-embeddings", tmp_path / "x.parquet", "--out", tmp_path / "m", "--engine", "spark",
                "--spark-master", "local[3]")
    line = one_line_error(r)
    assert "local[3]" in line and spark.sparkContext.master in line
    r = run_cli("train-embeddings", tmp_path / "x.parquet", "--out", tmp_path / "m", "--spark-master", "local[3]")
    assert "--engine spark" in one_line_error(r)


def fake_java(tmp_path: Path, version: str) -> Path:
    home = tmp_path / f"jdk-{version}"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f'#!/bin/sh\necho \'openjdk version "{version}" 2021-01-19\' >&2\n')
    java.chmod(0o755)
    return home


def test_java_is_checked_and_named(tmp_path, monkeypatch):
    assert java_major('openjdk version "17.0.15" 2025-04-15') == 17
    assert java_major('java version "1.8.0_292"') == 8
    assert java_major('openjdk version "21" 2023-09-19') == 21
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path, "11.0.2")))
    with pytest.raises(ConfigError, match=r"needs Java 17 or newer; found Java 11 \(.*jdk-11.0.2/bin/java\)"):
        check_java()
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path, "21.0.1")))
    assert check_java() == 21
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="found none"):
        check_java()


def test_cli_says_java_is_too_old_in_one_line(tmp_path):
    """A fresh process (no running session): the Java check comes before any JVM is launched."""
    env = {**os.environ, "JAVA_HOME": str(fake_java(tmp_path, "11.0.2"))}
    cli = ["-c", "from recs.cli.main import main; main()", "train-embeddings"]
    run = subprocess.run([sys.executable, *cli, str(tiny_log(tmp_path / "s.parquet")), "--out", str(tmp_path / "m"),
                          "--engine", "spark"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"Error: --engine spark needs Java 17 or newer; found Java 11 ({tmp_path}/jdk-11.0.2/bin/java)"]
    assert not (tmp_path / "m").exists()


def test_session_chunks_cut_between_sessions_only():
    """A task's batches cut sessions anywhere; the chunks the counting sees hold whole sessions."""
    from recs.spark.chunks import local_sessions, session_chunks

    lengths = [3, 1, 25, 4, 9, 2, 2, 11, 1]
    ids = [f"s{i:02d}" for i, n in enumerate(lengths) for _ in range(n)]
    frame = pl.DataFrame({Col.SESSION: ids, Col.TOKEN_ID: np.arange(len(ids), dtype=np.int32)})
    batches = frame.to_arrow().to_batches(max_chunksize=7)
    assert len(batches) == 9
    chunks = list(session_chunks(batches, chunk_events=10))
    assert pl.concat(chunks).equals(frame)  # nothing lost, nothing reordered
    seen = [set(c[Col.SESSION]) for c in chunks]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1:])  # no session in two chunks
    assert all(c.height >= 10 for c in chunks[:-1]) and any(c.height >= 25 for c in chunks)
    for c in chunks:
        assert local_sessions(c).tolist() == (c[Col.SESSION].rank("dense") - 1).to_list()
    assert local_sessions(chunks[0]).tolist()[:30] == [0, 0, 0, 1] + [2] * 25 + [3]
