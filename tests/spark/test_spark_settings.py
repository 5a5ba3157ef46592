"""``--spark-conf KEY=VALUE`` on the Spark commands: parsed, applied, recorded with secrets masked.

On the test session (already running, local[2]) a runtime setting applies to the one command and is
restored after; a setting fixed at start that differs is one ``Error:`` line naming it. The manifest's
``engine.spark_conf`` holds the effective settings, and a secret given on the command line appears
nowhere in it. (A session recs builds itself with them: tests/spark/test_spark_cluster.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recs.config import mask_secrets, parse_spark_conf
from recs.errors import ConfigError

from helpers import one_line_error, planted_split, run_cli

pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]' (and Java 17+)")

TRAIN = ["--dim", "16", "--epochs", "1", "--workers", "1", "--cooc-k", "2", "--quiet"]
SECRET = "hush-4f1c"


def test_parse_and_mask():
    assert parse_spark_conf(["a.b=1", "c=x=y", "a.b=2"]) == {"a.b": "2", "c": "x=y"}  # last wins; first = splits
    for bad, said in (("novalue", "expected KEY=VALUE"), ("=v", "expected KEY=VALUE"),
                      ("spark.master=local", "give it as --spark-master")):
        with pytest.raises(ConfigError, match=said):
            parse_spark_conf([bad])
    masked = mask_secrets({"spark.hadoop.fs.s3a.secret.key": "s", "spark.hadoop.fs.s3a.access.key": "a",
                           "x.password": "p", "x.Token": "t", "spark.executor.memory": "4g"})
    assert masked == {"spark.executor.memory": "4g", "spark.hadoop.fs.s3a.access.key": "***",
                      "spark.hadoop.fs.s3a.secret.key": "***", "x.Token": "***", "x.password": "***"}


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("settings")
    planted_split(d, 6_000, 8)
    return d


def test_runtime_settings_apply_to_the_command_and_are_recorded_masked(spark, planted, tmp_path):
    before = spark.conf.get("spark.sql.shuffle.partitions")
    r = run_cli("train-embeddings", planted / "train.parquet", "--out", tmp_path / "m", "--engine", "spark", *TRAIN,
                "--spark-conf", "spark.sql.shuffle.partitions=3",
                "--spark-conf", f"spark.hadoop.fs.s3a.secret.key={SECRET}")
    assert r.exit_code == 0, r.output
    text = (tmp_path / "m" / "manifest.json").read_text()
    engine = json.loads(text)["engine"]
    assert engine["partitions"] == 3 and engine["spark_conf"]["spark.sql.shuffle.partitions"] == "3"
    assert engine["spark_conf"]["spark.hadoop.fs.s3a.secret.key"] == "***"
    assert engine["spark_conf"]["spark.master"] == spark.sparkContext.master
    assert engine["config"]["spark_conf"] == {"spark.hadoop.fs.s3a.secret.key": "***",
                                              "spark.sql.shuffle.partitions": "3"}
    assert SECRET not in text
    assert spark.conf.get("spark.sql.shuffle.partitions") == before  # restored for the next command
    assert spark.conf.get("spark.hadoop.fs.s3a.secret.key", None) is None

    r = run_cli("build-index", "--model", tmp_path / "m", "--out", tmp_path / "i", "--k", 5, "--threads", 1,
                "--engine", "spark", "--quiet", "--spark-conf", f"spark.hadoop.fs.s3a.access.key={SECRET}")
    assert r.exit_code == 0, r.output
    text = (tmp_path / "i" / "manifest.json").read_text()
    assert json.loads(text)["engine"]["spark_conf"]["spark.hadoop.fs.s3a.access.key"] == "***"
    assert SECRET not in text


def test_bad_settings_are_one_line(spark, planted, tmp_path):
    args = ("train-embeddings", planted / "train.parquet", "--out", tmp_path / "m", *TRAIN)
    line = one_line_error(run_cli(*args, "--engine", "spark", "--spark-conf", "spark.executor.memory=3g"))
    assert "spark.executor.memory=3g" in line and "cannot change once the session started" in line
    assert "expected KEY=VALUE" in one_line_error(run_cli(*args, "--engine", "spark", "--spark-conf", "oops"))
    assert "--spark-conf is for --engine spark" in one_line_error(run_cli(*args, "--spark-conf", "a=b"))
    assert not (tmp_path / "m").exists()
