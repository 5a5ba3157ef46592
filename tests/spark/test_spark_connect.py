"""``--spark-remote sc://...`` (and ``$SPARK_REMOTE``): the Spark stages through a Spark Connect server.

The server is ``sbin/start-connect-server.sh`` from the pyspark install on loopback (its own local[2]
Spark; tests/spark/cluster.py). The CLI is a client in a subprocess (a Connect client and the test
session's classic JVM do not share a process): ``train-embeddings`` gives the polars engine's tokens
and vectors, ``build-index`` the single machine's lists. What Connect lacks is one ``Error:`` line that
names the API (a URI input needs the driver's JVM for Hadoop's FileSystem API); an unreachable server
is one line within seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cluster
import numpy as np
import polars as pl
import pytest

from recs.candidates.build import build_index, load_candidates
from recs.config import IndexConfig

from helpers import planted_split, run_cli

spark_connect = cluster.spark_connect  # the session's one Connect server (tests/spark/cluster.py)

TRAIN = ["--dim", "16", "--epochs", "2", "--workers", "1", "--cooc-k", "2"]
SETS = ("click_to_cart", "cart_to_cart")


def client(server: cluster.ConnectServer, cwd: Path, *args: object, **env: str) -> subprocess.CompletedProcess:
    cli = ["-c", "from recs.cli.main import main; main()"]
    return subprocess.run([sys.executable, *cli, *(str(a) for a in args)], cwd=cwd, env=server.client_env(**env),
                          capture_output=True, text=True, timeout=600)


def error_line(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 2, (run.returncode, run.stdout[-2000:], run.stderr[-2000:])
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("connect_data")
    planted_split(d, 12_000, 5)
    assert run_cli("train-embeddings", d / "train.parquet", "--out", d / "polars", "--quiet", *TRAIN).exit_code == 0
    return d


def test_train_and_index_through_spark_connect(spark_connect, planted):
    d = planted
    r = client(spark_connect, d, "train-embeddings", "train.parquet", "--out", "connect", "--engine", "spark",
               "--spark-remote", spark_connect.url, *TRAIN)
    assert r.returncode == 0, r.stderr[-4000:]
    assert f"spark on {spark_connect.url}" in r.stdout
    a, b = (pl.read_parquet(d / m / "tokens.parquet") for m in ("polars", "connect"))
    assert a.equals(b)
    for name in ("vectors_in.npy", "vectors_out.npy"):
        assert np.array_equal(np.load(d / "polars" / name), np.load(d / "connect" / name))
    manifest = json.loads((d / "connect" / "manifest.json").read_text())
    assert manifest["engine"]["master"] == spark_connect.url and manifest["engine"]["partitions"] == 4

    # $SPARK_REMOTE, as pyspark reads it, instead of the option
    r = client(spark_connect, d, "build-index", "--model", "polars", "--out", "connect-index", "--k", 20,
               "--threads", 1, "--engine", "spark", "--quiet", SPARK_REMOTE=spark_connect.url)
    assert r.returncode == 0, r.stderr[-4000:]
    build_index(d / "polars", d / "single", IndexConfig(k=20, threads=1))
    for name in SETS:
        assert load_candidates(d / "connect-index", name).equals(load_candidates(d / "single", name))
    assert run_cli("check", d / "connect-index").exit_code == 0


def test_what_connect_lacks_is_named(spark_connect, planted):
    d = planted
    r = client(spark_connect, d, "train-embeddings", (d / "train.parquet").as_uri(), "--out", "m", "--engine",
               "spark", "--spark-remote", spark_connect.url, *TRAIN)
    line = error_line(r)
    assert "spark._jvm" in line and "not available over Spark Connect" in line and "--spark-master" in line
    assert not (d / "m").exists()
    r = client(spark_connect, d, "train-embeddings", "train.parquet", "--out", "m", "--engine", "spark",
               "--spark-remote", spark_connect.url, "--work-dir", (d / "w").as_uri(), *TRAIN)
    line = error_line(r)
    assert f"--work-dir {(d / 'w').as_uri()}" in line and "not available over Spark Connect" in line
    assert not (d / "m").exists() and not (d / "w").exists()


def test_unreachable_server_and_bad_combinations(planted, tmp_path):
    """No server needed: an unreachable one is refused in seconds, before a session is tried."""
    d = planted
    port = cluster.free_port()  # nothing listens there
    server = cluster.ConnectServer(tmp_path)
    t = time.monotonic()
    r = client(server, d, "train-embeddings", "train.parquet", "--out", "m", "--engine", "spark",
               "--spark-remote", f"sc://127.0.0.1:{port}", *TRAIN)
    line = error_line(r)
    assert f"could not reach the Spark Connect server at sc://127.0.0.1:{port}" in line
    assert time.monotonic() - t < 60 and not (d / "m").exists()
    r = run_cli("train-embeddings", d / "train.parquet", "--out", tmp_path / "m", "--engine", "spark",
                "--spark-remote", "sc://127.0.0.1:1", "--spark-master", "local[2]")
    assert "give one of them" in r.output and r.exit_code == 2
    r = run_cli("build-index", "--model", d / "polars", "--out", tmp_path / "i", "--spark-remote", "sc://x:1")
    assert "--spark-remote is for --engine spark" in r.output and r.exit_code == 2
    r = run_cli("train-embeddings", d / "train.parquet", "--out", tmp_path / "m", "--engine", "spark",
                "--spark-remote", "http://127.0.0.1:1")
    assert "starts with sc://" in r.output and r.exit_code == 2
