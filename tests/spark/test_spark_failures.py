"""recs.spark.failures: Spark's story of a failed job as one line (no Spark needed: the texts are Spark's own)."""

from __future__ import annotations

import pytest

from recs.errors import InputError
from recs.spark import failures

JVM = """An error occurred while calling o37.count.
: org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 2.0 failed 4 times, most \
recent failure: Lost task 0.3 in stage 2.0 (TID 8) (10.0.0.7 executor 3): org.apache.spark.SparkException: \
[FAILED_READ_FILE.NO_HINT] Encountered error while reading file s3a://logs/dt=1/part-0.parquet.  SQLSTATE: KD001
\tat org.apache.spark.sql.errors.QueryExecutionErrors$.cannotReadFilesError(QueryExecutionErrors.scala:1)
Caused by: org.apache.spark.SparkException: Exception thrown in awaitResult
\tat org.apache.spark.util.SparkThreadUtils$.awaitResult(SparkThreadUtils.scala:66)
Caused by: java.nio.file.AccessDeniedException: s3a://logs/dt=1/part-0.parquet: getFileStatus on \
s3a://logs/dt=1/part-0.parquet: 403 Forbidden
\tat org.apache.hadoop.fs.s3a.S3AUtils.translateException(S3AUtils.java:1)
"""

PYTHON = """An exception was thrown from the Python worker. Please see the stack trace below.
Traceback (most recent call last):
  File "/opt/spark/python/pyspark/worker.py", line 1, in main
    func, profiler, deserializer, serializer = read_command(pickleSer, infile)
ModuleNotFoundError: No module named 'recs'

\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException(PythonRunner.scala:1)
"""


class FakeSparkError(Exception):
    """Stands in for pyspark's exceptions, whose str() is Spark's text."""


@pytest.fixture(autouse=True)
def fake_spark_errors(monkeypatch):
    monkeypatch.setattr(failures, "spark_exceptions", lambda: (FakeSparkError,))


def test_the_deepest_jvm_cause_the_executor_and_the_file():
    e = FakeSparkError(JVM)
    assert failures.failed_executor(e) == "executor 3 (10.0.0.7)"
    assert failures.spark_cause(e) == ("AccessDeniedException: s3a://logs/dt=1/part-0.parquet: getFileStatus on "
                                       "s3a://logs/dt=1/part-0.parquet: 403 Forbidden")
    with pytest.raises(InputError) as raised, failures.spark_failures("reading s3a://logs/", unreachable_hint="HINT"):
        raise e
    assert str(raised.value).startswith("reading s3a://logs/: Spark failed on executor 3 (10.0.0.7): AccessDenied")
    assert str(raised.value).endswith("403 Forbidden; HINT") and "\n" not in str(raised.value)


def test_an_executor_python_error_is_its_last_traceback_line():
    e = FakeSparkError(PYTHON)
    assert failures.spark_cause(e) == "ModuleNotFoundError: No module named 'recs'"
    with pytest.raises(InputError, match=r"^counting: Spark failed: ModuleNotFoundError: No module named 'recs'$"), \
            failures.spark_failures("counting", unreachable_hint="HINT"):  # not a missing file: no hint
        raise e


def test_a_decoder_cause_gets_the_file_spark_was_reading():
    e = FakeSparkError("org.apache.spark.SparkException: [FAILED_READ_FILE.NO_HINT] Encountered error while "
                       "reading file file:///logs/part-0.parquet. SQLSTATE: KD001\n"
                       "Caused by: shaded.parquet.org.apache.thrift.protocol.TProtocolException: don't know what "
                       "type: 15\n")
    assert failures.spark_cause(e) == "TProtocolException: don't know what type: 15 (reading file:///logs/part-0.parquet)"


def test_other_errors_pass_as_they_are():
    with pytest.raises(KeyError), failures.spark_failures("x"):
        raise KeyError("not Spark's")
