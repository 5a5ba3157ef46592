"""A failed Spark job as one line that names what failed, where, and why.

When a task fails in an executor (a part it cannot open, a Python worker without recs, a store that
refuses the credentials), pyspark raises its own exception on the driver whose text is Spark's whole
story: "Job aborted due to stage failure: Task 0 in stage 3.0 failed 4 times, most recent failure:
Lost task 0.3 ... (10.0.0.7 executor 2): org.apache.spark.SparkFileNotFoundException: ...", then a
hundred lines of JVM stack, each ``Caused by:`` a level deeper, and for a Python task the executor's
Python traceback in the middle. The CLI's boundary shows RecsError messages only, so such a failure
reached the user as a traceback. ``spark_failures(label)`` turns it into a RecsError whose message is
``label``, the executor (host and id) when Spark names one, and the deepest cause:

    file:///logs/dt=1: Spark failed on executor 1 (10.0.0.7): FileNotFoundException: File
    file:/logs/dt=1/part-0.parquet does not exist

Spark's own retries (``spark.task.maxFailures``, 4 on a cluster) run first; each is a task launch, so
a path no executor can read fails in seconds, not minutes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from recs.errors import InputError, RecsError

_LOST = re.compile(r"Lost task [\d.]+ in stage [\d.]+ \(TID \d+\) \((?P<host>[^ )]+) executor (?P<id>[^)]+)\): "
                   r"(?P<cause>[^\n]*)")
_CAUSED = re.compile(r"^Caused by: (?P<cause>[^\n]*)", re.MULTILINE)
_JAVA_PACKAGE = re.compile(r"^(?:[a-z0-9_$]+\.)+(?=[A-Z])")  # java.io.FileNotFoundException -> FileNotFoundException
_SPARK_CLASS = re.compile(r"^\[[A-Z_.]+\] ")  # [FAILED_READ_FILE.FILE_NOT_EXIST] ...
_SQLSTATE = re.compile(r"\s*SQLSTATE: \w+\.?$")
_READING = re.compile(r"error while reading file (\S+?)\.?(?:\s|$)")  # Spark's FAILED_READ_FILE: names the part
_WRAPPERS = ("SparkException: Exception thrown in awaitResult", "SparkException: Job aborted",
             "ExecutionException:")  # wrappers, not causes: skipped when a deeper line says more


def spark_exceptions() -> tuple[type[BaseException], ...]:
    """The exception types a failed Spark action raises in this process (classic and Connect)."""
    found: list[type[BaseException]] = []
    try:
        from pyspark.errors import PySparkException  # captured JVM errors, PythonException, Connect's errors

        found.append(PySparkException)
    except ImportError:  # pragma: no cover - pyspark is there whenever a Spark action ran
        pass
    try:
        from py4j.protocol import Py4JError  # a JVM error pyspark did not convert (Py4JJavaError), a lost gateway

        found.append(Py4JError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(found)


def _text(e: BaseException) -> str:
    """Spark's whole text of ``e``: description and JVM stack (str() of a captured error asks the JVM)."""
    try:
        return str(e)
    except Exception:  # the gateway is gone: what pyspark kept without the JVM
        return str(getattr(e, "_desc", "") or type(e).__name__)


def _clean(line: str) -> str:
    """``java.io.FileNotFoundException: [CLASS] text SQLSTATE: x`` -> ``FileNotFoundException: text``."""
    line = _SQLSTATE.sub("", _JAVA_PACKAGE.sub("", line.strip()))
    head, sep, rest = line.partition(": ")
    if sep and re.fullmatch(r"[A-Za-z0-9_$.]+", head):  # "ExceptionType: message"
        return f"{head}: {_SPARK_CLASS.sub('', _JAVA_PACKAGE.sub('', rest))}".strip()
    return _SPARK_CLASS.sub("", line).strip()


def _python_error(text: str) -> str | None:
    """The last line of an executor's Python traceback (``ModuleNotFoundError: No module named 'recs'``)."""
    start = text.find("Traceback (most recent call last):")
    if start < 0:
        return None
    last = None
    for line in text[start:].splitlines()[1:]:
        if line.startswith("\tat ") or line.startswith("JVM stacktrace"):
            break
        if line.strip() and not line.startswith((" ", "\t")):
            last = line.strip()
    return last


def spark_cause(e: BaseException) -> str:
    """The deepest cause of a failed Spark action as one line (module doc), with the file Spark was
    reading when its deepest cause does not name it (a decoder's ``TProtocolException`` names none)."""
    text = _text(e)
    cause = _deepest(e, text)
    reading = _READING.search(text)
    if reading and reading[1] not in cause and reading[1].replace("file:///", "file:/") not in cause:
        cause += f" (reading {reading[1]})"
    return cause


def _deepest(e: BaseException, text: str) -> str:
    python = _python_error(text)
    if python:
        return python
    causes = [_clean(m["cause"]) for m in _CAUSED.finditer(text)]
    causes = [c for c in causes if c and not c.startswith(_WRAPPERS)]
    if causes:
        return causes[-1]
    lost = _LOST.search(text)
    if lost:
        return _clean(lost["cause"])
    first = next((ln for ln in text.splitlines() if ln.strip()), type(e).__name__)
    return _clean(first)


def failed_executor(e: BaseException) -> str | None:
    """``executor 1 (10.0.0.7)`` when Spark says a task was lost there; None for a failure on the driver."""
    lost = _LOST.search(_text(e))
    return f"executor {lost['id']} ({lost['host']})" if lost else None


# a cause that says a file or object is not there or not allowed: on the executors, after the driver
# listed it, that is a path or URI the executors do not reach as the driver does
_UNREACHABLE = re.compile(r"FileNotFound|does not exist|AccessDenied|Permission denied|Forbidden|\b403\b")


def failure_message(label: str, e: BaseException, unreachable_hint: str | None = None) -> str:
    """``label: Spark failed[ on executor N (host)]: cause``, and ``unreachable_hint`` when the cause is
    a file that is not there or not allowed."""
    where = failed_executor(e)
    cause = spark_cause(e)
    hint = f"; {unreachable_hint}" if unreachable_hint and _UNREACHABLE.search(cause) else ""
    return f"{label}: Spark failed{' on ' + where if where else ''}: {cause}{hint}"


@contextmanager
def spark_failures(label: str, error: type[RecsError] = InputError,
                   unreachable_hint: str | None = None) -> Iterator[None]:
    """Raise a failed Spark action in the block as ``error`` with one line (``failure_message``);
    RecsErrors pass as they are."""
    try:
        yield
    except RecsError:
        raise
    except spark_exceptions() as e:
        raise error(failure_message(label, e, unreachable_hint)) from None
