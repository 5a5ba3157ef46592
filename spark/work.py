"""Where Spark's executors write what the driver reads back, and read what the driver hands them.

``train-embeddings --engine spark`` has the executors write the token counts, the corpus parts and
the pairs, and read the token code table the driver wrote; ``build-index --engine spark`` has them
write the candidate parts. With ``local[*]`` they are threads of the driver's JVM, so a directory
beside ``--out`` does. On a cluster they are processes on other machines, and a path of the driver's
disk is another, empty directory there: the executors' parts land on their own disks, the driver
finds none, and the run fails later with a message about an empty input, or not at all.

Two ways, one class (``SparkWork``):

- the scratch directory beside ``--out`` (``local``), given to Spark as a ``file://`` URI: right when
  ``--out`` is on storage every node mounts at the same path (NFS, Lustre, a FUSE mount);
- ``--work-dir URI`` (``hdfs://``, ``s3a://``, ``abfs://``, ``gs://``, or a shared mount's ``file://``): the
  executors read and write below ``URI/recs-<kind>-<run>/``; the driver uploads what it hands them and
  copies down what they wrote (Hadoop's FileSystem API, ``recs.spark.uri``) into the local scratch
  directory, where gensim and the index writer read it as before. The run's directory is removed when
  the run ends, failed or not.

Either way, on a master other than ``local`` (and over Spark Connect, whose server is elsewhere)
``check_reach`` first proves the location with two tiny Spark jobs: the executors read a file the
driver wrote there, and the driver finds the files the executors wrote there. Either failing is one
line naming the location, what failed and the way out, before any real work.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from recs.errors import ConfigError
from recs.spark.failures import failed_executor, spark_cause, spark_exceptions
from recs.spark.files import local_uri, part_files
from recs.spark.session import default_parallelism, is_connect, is_local, master_of, require_classic
from recs.spark.uri import delete, download, is_uri, upload

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PROBE_TASKS_MIN = 2  # write-probe tasks at least (one per core of the session otherwise)


def work_uri(given: str | Path) -> str:
    """``--work-dir`` as the text Spark and this module's Hadoop calls are given: a Hadoop URI with its
    percent-escapes decoded (``file:///a%20b``, as ``Path.as_uri`` writes it, is ``file:///a b``: Spark
    takes a path's text as Hadoop's ``Path(String)`` does, which escapes it again, so an escaped
    ``%20`` would name a directory called ``%20``), a local path (a shared mount) as its absolute
    ``file://`` URI."""
    if is_uri(str(given)):
        return unquote(str(given)).rstrip("/")
    return local_uri(given).rstrip("/")


class SparkWork:
    """The scratch directory ``local`` on the driver, and where Spark reads and writes for it (module doc).

    ``base``: ``--work-dir`` (any URI Hadoop reads), or None for ``local`` itself. ``kind`` and a run id
    name the run's own directory below ``base``."""

    def __init__(self, spark: SparkSession, local: Path, base: str | None = None, kind: str = "work") -> None:
        self.spark = spark
        self.local = Path(local)
        self.base = base
        self.uri: str | None = None
        if base is not None:
            require_classic(spark, f"--work-dir {base} (Hadoop's FileSystem API on the driver, spark._jvm)")
            self.uri = f"{work_uri(base)}/recs-{kind}-{uuid.uuid4().hex[:12]}"

    @property
    def remote(self) -> bool:
        return self.uri is not None

    def where(self, local_label: str) -> str:
        """How messages name the location: ``--work-dir URI``, or ``local_label`` and the driver's path."""
        return f"--work-dir {self.base}" if self.remote else f"{local_label} ({self.local.parent})"

    def spark_uri(self, name: str) -> str:
        """What Spark is given for ``name`` in the work location."""
        return f"{self.uri}/{name}" if self.uri is not None else local_uri(self.local / name)

    def put(self, name: str) -> str:
        """Hand the driver's file ``local/name`` to the executors; returns the URI they read it at."""
        if self.uri is not None:
            upload(self.spark, self.local / name, self.spark_uri(name))
        return self.spark_uri(name)

    def fetch(self, name: str) -> Path:
        """What the executors wrote at ``name``, as the driver's directory ``local/name`` (copied down and
        removed from the work location when it is a URI: the store holds each output once, briefly)."""
        if self.uri is not None:
            dest = self.local / name
            if dest.exists():
                shutil.rmtree(dest)
            download(self.spark, self.spark_uri(name), dest)
            delete(self.spark, self.spark_uri(name))
        return self.local / name

    def close(self) -> None:
        """Remove the run's directory at the work URI (the local one is its owner's, ``scratch_dir``)."""
        if self.uri is not None:
            delete(self.spark, self.uri)

    def __enter__(self) -> SparkWork:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        except Exception:
            if exc[0] is None:  # the run succeeded: a directory left behind is worth an error
                raise  # (during a failure the run's own error is the one to show)


def as_work(work: Path | SparkWork, spark: SparkSession) -> SparkWork:
    """``work`` as a SparkWork: a bare path is the local scratch directory itself (``local[*]``, tests)."""
    return work if isinstance(work, SparkWork) else SparkWork(spark, Path(work))


def needs_check(spark: SparkSession) -> bool:
    """Whether the executors may be on other machines: any master but ``local``, and Spark Connect."""
    return is_connect(spark) or not is_local(master_of(spark))


def check_reach(work: SparkWork, where: str, hint: str) -> None:
    """Prove, with two tiny Spark jobs, that the executors read what the driver writes at the work
    location and that what they write there reaches the driver (module doc); a ConfigError naming
    ``where``, what failed and ``hint`` otherwise. Nothing is checked on a local master."""
    spark = work.spark
    if not needs_check(spark):
        return
    name = f"recs-probe-{uuid.uuid4().hex[:8]}"
    nonce = uuid.uuid4().hex
    (work.local / f"{name}.txt").write_text(nonce + "\n")
    tasks = max(PROBE_TASKS_MIN, default_parallelism(spark))
    try:
        try:
            seen = [r[0] for r in spark.read.text(work.put(f"{name}.txt")).collect()]
        except spark_exceptions() as e:
            raise ConfigError(f"{where}: Spark's executors cannot read what this machine writes there "
                              f"({_on(e)}{spark_cause(e)}); {hint}") from None
        if seen != [nonce]:
            raise ConfigError(f"{where}: Spark's executors read another file than this machine wrote there "
                              f"({seen[:1]} for {nonce!r}); {hint}")
        try:
            spark.range(0, tasks, 1, tasks).selectExpr("CAST(id AS STRING) AS value").write.text(
                work.spark_uri(f"{name}-w"))
        except spark_exceptions() as e:
            raise ConfigError(f"{where}: Spark's executors cannot write there ({_on(e)}{spark_cause(e)}); "
                              f"{hint}") from None
        back = work.fetch(f"{name}-w")
        found = len(part_files(back, ".txt")) if back.is_dir() else 0
        if found < tasks:
            raise ConfigError(f"{where}: what Spark's executors write there does not reach this machine "
                              f"({found} of the {tasks} files they wrote); {hint}")
    finally:
        _remove_probe(work, name)


def _on(e: BaseException) -> str:
    where = failed_executor(e)
    return f"on {where}: " if where else ""


def _remove_probe(work: SparkWork, name: str) -> None:
    for path in (work.local / f"{name}.txt", work.local / f"{name}-w"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if work.remote:
        for suffix in (".txt", "-w"):
            with contextlib.suppress(Exception):  # the run's directory goes at close() anyway
                delete(work.spark, work.spark_uri(name + suffix))
