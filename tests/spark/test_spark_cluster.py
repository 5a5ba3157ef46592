"""``--engine spark`` on a real cluster: a standalone master and two workers on loopback (tests/spark/cluster.py).

The same parity as tests/spark/test_spark_parity.py and test_spark_search.py, now across processes:
the driver is the CLI in a subprocess whose working directory is the data directory (paths given
relative to it), the tasks run in executors the workers started in work directories of their own, so
anything that hands a task a relative path or a file only the driver's process holds fails here.
``train-embeddings`` gives the polars engine's tokens, vectors (one thread), counts and fingerprint;
``build-index --engine spark`` gives the single machine's candidate tables row for row and the same
index file. The master's JSON page shows the applications ran there, on both executors.

Where the machine allows mount namespaces, the workers do not see ``driver_only`` (tests/spark/cluster.py),
as executors on other machines do not see the driver's disk: a URI there is listed by the driver and
unreadable to the executors, an ``--out`` there leaves the executors no shared work directory, and
``--work-dir URI`` is the way through. Each failure is one ``Error:`` line, exit code 2, nothing written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cluster
import polars as pl
import pytest

from recs.artifacts import verify_artifact
from recs.candidates.build import build_index, load_candidates, load_index_manifest
from recs.config import IndexConfig

from helpers import assert_same_model, planted_split, run_cli

TRAIN = ["--dim", "16", "--epochs", "2", "--workers", "1", "--cooc-k", "2"]
SETS = ("click_to_cart", "cart_to_cart")
CFG = IndexConfig(k=20, threads=1)
DRIVER_TIMEOUT_S = 600

spark_cluster = cluster.spark_cluster  # the session's one cluster (tests/spark/cluster.py)
StandaloneCluster = cluster.StandaloneCluster


def recs_on(cluster: StandaloneCluster, cwd: Path, *args: object) -> subprocess.CompletedProcess:
    """The recs CLI as a separate driver process for ``cluster`` (one process holds one SparkContext)."""
    cli = ["-c", "from recs.cli.main import main; main()"]
    return subprocess.run([sys.executable, *cli, *(str(a) for a in args)], cwd=cwd, env=cluster.driver_env(),
                          capture_output=True, text=True, timeout=DRIVER_TIMEOUT_S)


def error_line(run: subprocess.CompletedProcess) -> str:
    """The one ``Error:`` line of a failed driver: exit code 2, no traceback, no Spark log line (the
    stages' progress lines may precede it)."""
    assert run.returncode == 2, (run.returncode, run.stdout[-2000:], run.stderr[-4000:])
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in run.stderr and " ERROR " not in run.stderr, run.stderr[-4000:]
    return lines[0]


def driver_only(cluster: StandaloneCluster) -> Path:
    """The cluster's directory the executors do not see, or skip saying why there is none."""
    if cluster.driver_only is None:
        pytest.skip(f"no directory can be hidden from the executors here: {cluster.isolation_missing}")
    return cluster.driver_only


def apps_on(cluster: StandaloneCluster) -> list[dict]:
    state = cluster.state()
    return state.get("activeapps", []) + state.get("completedapps", [])


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """A 20k-event planted split and the polars engine's model of it (``polars``)."""
    d = tmp_path_factory.mktemp("cluster_data")
    planted_split(d, 20_000, 3)
    assert run_cli("train-embeddings", d / "train.parquet", "--out", d / "polars", "--quiet", *TRAIN).exit_code == 0
    return d


def test_cluster_has_two_one_core_workers(spark_cluster):
    workers = spark_cluster.state()["workers"]
    assert len(workers) == 2 and all(w["state"] == "ALIVE" and w["cores"] == 1 for w in workers)
    assert {w["host"] for w in workers} == {"127.0.0.1"} and all(w["memory"] <= 1024 for w in workers)


def test_train_on_the_cluster_gives_the_polars_model(spark_cluster, planted):
    d = planted
    before = len(apps_on(spark_cluster))
    r = recs_on(spark_cluster, d, "train-embeddings", "train.parquet", "--out", "spark", "--engine", "spark",
                "--spark-master", spark_cluster.master, *TRAIN)
    assert r.returncode == 0, r.stderr[-4000:]
    assert f"spark on {spark_cluster.master}" in r.stdout
    assert_same_model(d / "polars", d / "spark")
    mb = json.loads((d / "spark" / "manifest.json").read_text())
    assert mb["engine"]["master"] == spark_cluster.master and mb["engine"]["partitions"] == 4
    assert sorted(p.name for p in d.iterdir() if p.name.startswith(".")) == []  # the work directory is gone
    assert run_cli("check", d / "spark").exit_code == 0
    apps = apps_on(spark_cluster)
    assert len(apps) == before + 1 and {a["name"] for a in apps} == {"recs"}
    # the tasks ran in executors of both workers, each in its own work directory
    assert {p.parents[1].name for p in spark_cluster.executor_dirs()} == {"worker-0", "worker-1"}


def test_build_index_on_the_cluster_gives_the_single_machine_lists(spark_cluster, planted):
    d = planted
    build_index(d / "polars", d / "single", CFG)
    r = recs_on(spark_cluster, d, "build-index", "--model", "polars", "--out", "spark-index", "--k", 20,
                "--threads", 1, "--engine", "spark", "--spark-master", spark_cluster.master, "--quiet",
                "--spark-conf", "spark.executor.memory=640m", "--spark-conf", "spark.hadoop.fs.s3a.secret.key=hush")
    assert r.returncode == 0, r.stderr[-4000:]
    manifest, single = load_index_manifest(d / "spark-index"), load_index_manifest(d / "single")
    assert manifest["engine"]["master"] == spark_cluster.master
    # a session recs builds gets --spark-conf at start (over spark-defaults.conf); secrets are masked
    settings = manifest["engine"]["spark_conf"]
    assert settings["spark.executor.memory"] == "640m" and settings["spark.hadoop.fs.s3a.secret.key"] == "***"
    assert settings["spark.sql.shuffle.partitions"] == "4"  # from the cluster's spark-defaults.conf
    assert "hush" not in (d / "spark-index" / "manifest.json").read_text()
    executors = [a for a in apps_on(spark_cluster) if a.get("memoryperexecutor") == 640 or
                 a.get("memoryperslave") == 640]
    assert executors, apps_on(spark_cluster)  # the master gave the executors the memory asked for
    for name in SETS:
        want = load_candidates(d / "single", name)
        assert want.height > 10_000
        assert load_candidates(d / "spark-index", name).equals(want)  # same rows, same order, same types
        for key in ("items", "rows", "mean_list_length", "backoff_queries"):
            assert manifest["candidate_sets"][name][key] == single["candidate_sets"][name][key]
        assert manifest["candidate_sets"][name]["parts"] == 2  # one per core of the cluster
    assert manifest["indexes"] == single["indexes"]
    assert (d / "spark-index" / "indexes" / "cart.prob.faiss").read_bytes() == (
        d / "single" / "indexes" / "cart.prob.faiss").read_bytes()
    report = verify_artifact(d / "spark-index")
    assert report["ok"] and {r["status"] for r in report["files"]} == {"ok"}
    assert not [p for p in d.iterdir() if p.name.startswith(".spark.")]  # scratch of shipped files removed
    # the index files reached the executors through Spark (addFile), not through the driver's directory
    shipped = [p for e in spark_cluster.executor_dirs() for p in e.glob("recs-*-cart.prob.faiss")]
    assert shipped, spark_cluster.executor_dirs()


def test_uris_in_and_out_on_the_cluster(spark_cluster, planted, tmp_path):
    """Sessions from a file:// URI of a store directory and an index written to one: the executors read
    and write the store themselves; the driver's working directory is a third place."""
    d = planted
    store_dir = tmp_path / "store"
    log = store_dir / "logs" / "train"
    log.mkdir(parents=True)
    pl.read_parquet(d / "train.parquet").write_parquet(log / "part-0.parquet")
    driver = tmp_path / "driver"
    driver.mkdir()
    r = recs_on(spark_cluster, driver, "train-embeddings", log.as_uri(), "--out", "m", "--engine", "spark",
                "--spark-master", spark_cluster.master, *TRAIN)
    assert r.returncode == 0, r.stderr[-4000:]
    assert pl.read_parquet(driver / "m" / "tokens.parquet").equals(pl.read_parquet(d / "polars" / "tokens.parquet"))
    assert json.loads((driver / "m" / "manifest.json").read_text())["input"]["path"] == log.as_uri()

    out = (store_dir / "indexes" / "ours").as_uri()
    r = recs_on(spark_cluster, driver, "build-index", "--model", d / "polars", "--out", out, "--k", 20,
                "--threads", 1, "--engine", "spark", "--spark-master", spark_cluster.master, "--quiet")
    assert r.returncode == 0, r.stderr[-4000:]
    manifest = json.loads((store_dir / "indexes" / "ours" / "manifest.json").read_text())
    build_index(d / "polars", tmp_path / "single", CFG)
    for name in SETS:
        files = [store_dir / "indexes" / "ours" / f for f in manifest["candidate_sets"][name]["files"]]
        assert pl.concat([pl.read_parquet(f) for f in files]).equals(load_candidates(tmp_path / "single", name))


def test_executors_do_not_see_the_driver_only_directory(spark_cluster):
    """The isolation itself: the directory exists for the driver, and each worker's mount namespace has
    an empty tmpfs over it (the kernel's own record of the worker's mounts)."""
    hidden = driver_only(spark_cluster)
    (hidden / "marker").write_text("driver")
    workers = [p for p in spark_cluster._procs[1:] if p.poll() is None]
    assert len(workers) == 2
    for w in workers:
        mounts = Path(f"/proc/{w.pid}/mounts").read_text()
        assert f" {hidden} tmpfs " in mounts, mounts[-2000:]
        assert f" {hidden} " not in Path("/proc/self/mounts").read_text()
    (hidden / "marker").unlink()


def test_a_uri_the_executors_cannot_read_is_one_line(spark_cluster, planted, tmp_path):
    """A file:// URI the driver lists and checks, whose parts no executor can open: one line naming the
    URI and the missing part, in seconds after the session starts, and nothing written."""
    hidden = driver_only(spark_cluster)
    log = hidden / "unreadable-log"
    log.mkdir()
    shutil.copy(planted / "train.parquet", log / "part-0.parquet")
    t = time.monotonic()
    r = recs_on(spark_cluster, tmp_path, "train-embeddings", log.as_uri(), "--out", "m", "--engine", "spark",
                "--spark-master", spark_cluster.master, *TRAIN)
    line = error_line(r)
    assert line.startswith(f"Error: reading {log.as_uri()}: Spark failed"), line
    assert f"FileNotFoundException: File file:{log}/part-0.parquet does not exist" in line
    assert "executors do not reach the input" in line
    assert time.monotonic() - t < 120  # JVM and executors start, four task attempts: not minutes of retries
    assert list(tmp_path.iterdir()) == []  # no model, no work directory left beside it


def test_an_out_only_the_driver_sees_is_refused_before_any_work(spark_cluster, planted):
    """--out on the driver's own disk: the executors' outputs would land on theirs. Proved with a probe
    before the input is read; the way out (--work-dir, a shared mount, an index URI) is in the line."""
    hidden = driver_only(spark_cluster)
    d = planted
    before = sorted(hidden.iterdir())
    r = recs_on(spark_cluster, d, "train-embeddings", "train.parquet", "--out", hidden / "m", "--engine", "spark",
                "--spark-master", spark_cluster.master, *TRAIN)
    line = error_line(r)
    assert f"the work directory beside --out ({hidden}): Spark's executors cannot read what this machine " \
           "writes there" in line and "give --work-dir URI" in line, line
    r = recs_on(spark_cluster, d, "build-index", "--model", "polars", "--out", hidden / "i", "--k", 20,
                "--threads", 1, "--engine", "spark", "--spark-master", spark_cluster.master, "--quiet")
    line = error_line(r)
    assert f"the index's directory ({hidden})" in line and "--work-dir URI" in line and "--out s3a://" in line
    assert sorted(hidden.iterdir()) == before  # nothing written, no scratch left


def test_work_dir_uri_carries_what_the_executors_write(spark_cluster, planted, tmp_path):
    """--out only the driver sees, --work-dir a file:// URI every node reads and writes: the executors
    write there, the driver copies it down, and the model and lists are the polars engine's and the
    single machine's; the run's directory at the URI is gone afterwards."""
    hidden = driver_only(spark_cluster)
    d = planted
    shared = tmp_path / "shared work"
    shared.mkdir()
    r = recs_on(spark_cluster, d, "train-embeddings", "train.parquet", "--out", hidden / "m", "--engine", "spark",
                "--spark-master", spark_cluster.master, "--work-dir", shared.as_uri(), *TRAIN)
    assert r.returncode == 0, r.stderr[-4000:]
    assert_same_model(d / "polars", hidden / "m")
    engine = json.loads((hidden / "m" / "manifest.json").read_text())["engine"]
    assert engine["work_dir"] == f"file://{shared}"  # unescaped, as Spark is given it
    assert list(shared.iterdir()) == []
    build_index(d / "polars", tmp_path / "single", CFG)
    r = recs_on(spark_cluster, d, "build-index", "--model", "polars", "--out", hidden / "i", "--k", 20,
                "--threads", 1, "--engine", "spark", "--spark-master", spark_cluster.master, "--quiet",
                "--work-dir", shared)  # a shared mount's path, taken as its file:// URI
    assert r.returncode == 0, r.stderr[-4000:]
    for name in SETS:
        assert load_candidates(hidden / "i", name).equals(load_candidates(tmp_path / "single", name))
    assert verify_artifact(hidden / "i")["ok"]
    assert list(shared.iterdir()) == []
    shutil.rmtree(hidden / "m")
    shutil.rmtree(hidden / "i")


def test_cluster_fixture_skips_with_the_reason_without_java(tmp_path, monkeypatch):
    """Where Java 17+ is missing the cluster tests skip, saying what was found (no daemon is started)."""
    home = tmp_path / "jdk-11"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    (home / "bin" / "java").chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(home))
    with pytest.raises(pytest.skip.Exception, match=r"needs Java 17 or newer; found Java 11"):
        cluster._require_spark()
