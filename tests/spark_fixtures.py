"""One SparkSession for every Spark test: starting a JVM costs 15-60 s, so it is started once.

local[2] (CI's two cores), few shuffle partitions for tiny data, no UI (no port to bind), a modest
driver. The session is built by ``recs.spark.session.spark_session``, so it is also the active session
that the library and the CLI pick up (``--engine spark`` without ``--spark-master``). Spark tests skip
with the reason when pyspark or Java 17+ is missing.

(Imported by tests/conftest.py, so every test directory sees these fixtures.)

The JVM writes its own stderr (log4j, the launcher) to the file descriptor it inherits at launch, so
the session is started with fd 2 pointing at a file: ``spark_startup_stderr`` is what the JVM wrote
while starting (a test checks that recs' quiet logging left nothing there but the JVM's own notice),
and anything the JVM writes later goes to that file, not between pytest's dots.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SPARK_TEST_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.driver.memory": "1g",
}
_STARTUP: dict[str, str] = {}


@contextmanager
def _fd2_to(path: Path) -> Iterator[None]:
    """Point file descriptor 2 at ``path`` while the block runs (a child started here keeps it)."""
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]' (and Java 17+)")
    from recs.errors import ConfigError
    from recs.spark.session import active_session, check_java, spark_session

    try:
        check_java()
    except ConfigError as e:
        pytest.skip(str(e))
    log = tmp_path_factory.mktemp("spark") / "jvm-stderr.txt"
    fresh = active_session() is None
    with _fd2_to(log):
        session = spark_session("local[2]", SPARK_TEST_CONF)
        session.range(1).count()  # the first job: its executor start-up logs belong to the start too
    if fresh:
        _STARTUP["stderr"] = log.read_text(errors="replace")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_startup_stderr(spark) -> str:
    """What the JVM wrote to stderr while the test session's Spark started (skips if it was not started here)."""
    if "stderr" not in _STARTUP:
        pytest.skip("the SparkSession was already running when the tests started")
    return _STARTUP["stderr"]
