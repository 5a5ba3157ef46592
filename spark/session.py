"""The one way recs gets a SparkSession: the caller's, or a quiet one it builds (``--engine spark``).

Order of choice: a session already active in this process (a notebook's) is used as it is, logging
and all, since it is the caller's; else one is built for ``master``, else ``$RECS_SPARK_MASTER``,
else ``local[*]``; under ``spark-submit`` (``recs.spark.submit``) without ``master``, for the master
and settings given to spark-submit. A session recs builds logs errors only (its own log4j2
file, passed to the driver JVM at launch, so even the start-up warnings go) and shows no console
progress bar: recs reports progress per stage itself.

Java is checked before pyspark launches the JVM, because pyspark's own failure is a traceback
ending in "Java gateway process exited before sending its port number", which names no cause.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from recs.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MASTER_ENV = "RECS_SPARK_MASTER"
SUBMITTED_ENV = "PYSPARK_GATEWAY_PORT"  # set by spark-submit for the Python driver it starts
DEFAULT_MASTER = "local[*]"
MIN_JAVA = 17  # Spark 4 runs on 17 and 21 only; 3.5 also on 8 and 11, but one rule is simpler to state
LOG4J2_FILE = Path(__file__).with_name("log4j2.properties")
APP_NAME = "recs"

# Settings of a session recs builds. The time zone is fixed so that timestamps read from parquet
# mean the same instant in every executor; Arrow is what mapInArrow and toPandas run on.
SESSION_DEFAULTS: dict[str, str] = {
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # package data; without it (an install that dropped it) the level is still set once the context runs
    **({"spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG4J2_FILE}"}
       if LOG4J2_FILE.exists() else {}),
}

# The defaults above a Spark Connect session can take: runtime SQL settings of the client's own session
# (the UI and the driver's JVM options are the server's).
CONNECT_SESSION_SETTINGS = ("spark.sql.session.timeZone", "spark.sql.execution.arrow.pyspark.enabled")

_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?[^"]*"')


def require_pyspark() -> None:
    """Raise a ConfigError saying how to install pyspark when it is missing (it is the extra ``[spark]``)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ConfigError("--engine spark needs pyspark: pip install 'recs[spark]' (and Java 17+)") from None


def find_java() -> str | None:
    """The java that ``spark-submit`` will run: ``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def java_major(version_output: str) -> int | None:
    """The major version in ``java -version`` output: ``"17.0.15"`` -> 17, the old ``"1.8.0_292"`` -> 8."""
    m = _VERSION.search(version_output)
    if m is None:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def check_java(minimum: int = MIN_JAVA) -> int:
    """Return the major Java version Spark will run on; raise a ConfigError naming what was found if unusable."""
    java = find_java()
    where = "JAVA_HOME is unset and there is no java on PATH" if java is None else java
    if java is None or not Path(java).exists():
        raise ConfigError(f"--engine spark needs Java {minimum} or newer; found none ({where})")
    try:
        run = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise ConfigError(f"--engine spark needs Java {minimum} or newer; {java} -version failed: {e}") from None
    text = run.stderr + run.stdout  # java prints its version on stderr
    major = java_major(text)
    if major is None:
        first = text.strip().splitlines()[0] if text.strip() else "no output"
        raise ConfigError(f"--engine spark needs Java {minimum} or newer; {java} -version said: {first}")
    if major < minimum:
        raise ConfigError(f"--engine spark needs Java {minimum} or newer; found Java {major} ({java})")
    return major


def resolve_master(master: str | None) -> str:
    """``master``, else ``$RECS_SPARK_MASTER``, else ``local[*]``."""
    return master or os.environ.get(MASTER_ENV) or DEFAULT_MASTER


STANDALONE = "spark://"
STANDALONE_PORT = 7077  # a standalone master's port when the URL gives none
REACH_TIMEOUT_S = 3.0  # per master address: a master that answers does so in milliseconds


def check_reachable(master: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """Raise a ConfigError naming the cause when no master of a standalone URL (``spark://h:p``, or
    ``spark://h1:p1,h2:p2`` for standby masters) accepts a TCP connection within ``timeout`` seconds.

    Spark itself retries an unreachable master for over a minute, then fails with a gateway error
    whose cause ("All masters are unresponsive") is only in a log line; a socket connect names a
    wrong host, a closed port or a firewall in seconds. Other masters (local, yarn, k8s://) are
    left to Spark: their addresses come from configuration this process does not read."""
    if not master.startswith(STANDALONE):
        return
    causes = []
    for address in master[len(STANDALONE):].split(","):
        host, _, port = address.strip().rpartition(":") if ":" in address else (address.strip(), "", "")
        host = host.strip("[]")  # an IPv6 literal: spark://[::1]:7077
        if not host or (port and not port.isdigit()):
            raise ConfigError(f"Spark master {master}: {address!r} is not HOST:PORT")
        try:
            with socket.create_connection((host, int(port) if port else STANDALONE_PORT), timeout=timeout):
                return  # one master answers: Spark finds the active one among them
        except TimeoutError:
            causes.append(f"{address}: no answer within {timeout:g} s")
        except OSError as e:  # refused, no such host, no route
            causes.append(f"{address}: {e.strerror or e}")
    raise ConfigError(f"could not start Spark on {master}: no master is reachable ({'; '.join(causes)}); is the "
                      "master running, and are its host and port right?")


def is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[") or master.startswith("local-cluster[")


def active_session() -> SparkSession | None:
    """The SparkSession active in this process, if any (without starting one)."""
    require_pyspark()
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()


REMOTE_ENV = "SPARK_REMOTE"  # pyspark's own: set, every SparkSession.builder goes to that Connect server
CONNECT_PORT = 15002  # a Spark Connect server's port when the URL gives none
CONNECT_PARALLELISM = 2  # tasks per stage over Connect when the server does not say (no defaultParallelism)
_CONNECT_CLIENT = (("grpc", "grpcio"), ("grpc_status", "grpcio-status"), ("google.rpc", "googleapis-common-protos"),
                   ("zstandard", "zstandard"))
_REMOTES: dict[int, str] = {}  # id(session) -> the sc:// URL it was opened with, for the manifest


def resolve_remote(remote: str | None) -> str | None:
    """``remote``, else ``$SPARK_REMOTE`` (as pyspark reads it), else None (a classic session)."""
    return remote or os.environ.get(REMOTE_ENV) or None


def check_connect_reachable(url: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """Raise a ConfigError within ``timeout`` seconds when nothing listens at a ``sc://host:port`` URL
    (pyspark would retry the gRPC channel for minutes, then name no cause)."""
    if not url.startswith("sc://"):
        raise ConfigError(f"--spark-remote {url}: a Spark Connect URL starts with sc:// (sc://host:{CONNECT_PORT})")
    address = url[len("sc://"):].split("/", 1)[0].split(";", 1)[0]
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "")
    host = host.strip("[]")
    if not host or (port and not port.isdigit()):
        raise ConfigError(f"--spark-remote {url}: {address!r} is not HOST:PORT")
    try:
        with socket.create_connection((host, int(port) if port else CONNECT_PORT), timeout=timeout):
            return
    except TimeoutError:
        why = f"no answer within {timeout:g} s"
    except OSError as e:
        why = e.strerror or str(e)
    raise ConfigError(f"could not reach the Spark Connect server at {url} ({why}); is it running "
                      "(sbin/start-connect-server.sh), and are its host and port right?")


def require_connect_client() -> None:
    """The Spark Connect client's packages (pyspark's ``connect`` extra), named when one is missing."""
    import importlib

    missing = []
    for module, package in _CONNECT_CLIENT:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise ConfigError(f"--spark-remote needs the Spark Connect client: pip install 'pyspark[connect]' "
                          f"(missing: {', '.join(missing)})")


def connect_session(remote: str, master: str | None) -> SparkSession:
    """A Spark Connect session to ``remote``: the stages run on the server's Spark, this process is a client."""
    if master is not None:
        raise ConfigError(f"--spark-master {master} and --spark-remote {remote} (or ${REMOTE_ENV}) both given: "
                          "a Spark Connect server runs on a master of its own; give one of them")
    require_connect_client()
    check_connect_reachable(remote)
    from pyspark import SparkContext

    if SparkContext._active_spark_context is not None:  # a classic session's JVM in this process
        raise ConfigError(f"--spark-remote {remote}: a classic SparkSession is running in this process; Spark "
                          "Connect needs a process of its own (or run without --spark-remote on that session)")
    from pyspark.sql import SparkSession

    try:
        session = SparkSession.builder.remote(remote).getOrCreate()
        session.version  # noqa: B018  (the first call that reaches the server: a refused session fails here)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"could not start Spark Connect at {remote}: {first}") from e
    for key in CONNECT_SESSION_SETTINGS:  # this client's session on the server: ours to set
        session.conf.set(key, SESSION_DEFAULTS[key])
    _REMOTES[id(session)] = remote
    return session


def spark_session(master: str | None = None, conf: Mapping[str, str] | None = None,
                  remote: str | None = None) -> SparkSession:
    """The active SparkSession if there is one, else a new quiet one for ``master`` (see module doc);
    with ``remote`` (or ``$SPARK_REMOTE``) a Spark Connect session to that server instead.

    ``conf`` adds or overrides settings of a session built here (shuffle partitions, driver memory);
    it is ignored for an active session, which is the caller's to configure. A ``master`` that
    differs from the active session's is refused: one process holds one SparkContext, and silently
    running somewhere else than asked would be worse than stopping.
    """
    # pyspark 4 warns on import of a module of its own that recs does not use (pandas >= 3 is newer than
    # it was tested with); recs' Spark code goes through Arrow, not pandas
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    require_pyspark()
    remote = resolve_remote(remote)
    if remote is not None:  # Spark Connect: conf is applied as runtime settings (session_settings)
        return connect_session(remote, master)
    active = active_session()
    if active is not None:
        running = master_of(active)
        if master is not None and master != running:
            raise ConfigError(f"--spark-master {master}: a SparkSession on {running} is already running in "
                              "this process; use it (no --spark-master) or stop it first")
        return active
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(APP_NAME)
    if master is None and SUBMITTED_ENV in os.environ:
        # run by spark-submit: its JVM and its --master/--conf are already there; setting a master here
        # would override them (recs.spark.submit is the file to submit)
        resolved = "spark-submit's --master"
    else:
        resolved = resolve_master(master)
        check_reachable(resolved)  # seconds, where Spark would retry for over a minute
        check_java()
        if is_local(resolved) and "PYSPARK_PYTHON" not in os.environ:
            # local workers are this interpreter (pyspark's default is whatever python3 is on PATH, which
            # may lack polars and recs); on a cluster the executors' Python is the cluster's to set
            os.environ["PYSPARK_PYTHON"] = sys.executable
        builder = builder.master(resolved)
    for key, value in {**SESSION_DEFAULTS, **(conf or {})}.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as e:  # py4j / pyspark raise their own types; the message is what a user needs
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"could not start Spark on {resolved}: {first}") from e
    session.sparkContext.setLogLevel("ERROR")  # in case a spark-defaults.conf replaced our driver options
    return session


def is_connect(spark: object) -> bool:
    """True for a Spark Connect session (``pyspark.sql.connect``): a client with no JVM, no SparkContext."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def require_classic(spark: object, what: str) -> None:
    """Raise a ConfigError naming ``what`` when ``spark`` is a Spark Connect session, which lacks it.

    Connect clients have no SparkContext (``addFile``, job groups, RDDs) and no driver JVM
    (``spark._jvm``); pyspark's own failure there is an attribute or PySparkNotImplementedError traceback
    that names the method, not the stage or the way out."""
    if is_connect(spark):
        raise ConfigError(f"{what} is not available over Spark Connect (--spark-remote / $SPARK_REMOTE); run this "
                          "command with --spark-master on a classic Spark session")


def _changeable(spark: SparkSession, key: str) -> bool:
    """Whether ``key`` can be set on a running session: Spark SQL's runtime settings, and Hadoop's
    (``spark.hadoop.*``: a session's own Hadoop configuration is built from them for each read and write)."""
    return key.startswith("spark.hadoop.") or bool(spark.conf.isModifiable(key))


@contextmanager
def session_settings(spark: SparkSession, conf: Mapping[str, str]) -> Iterator[None]:
    """``--spark-conf`` on a session: what it already has is fine; a runtime setting it lacks is set for
    the block and restored after (a notebook's session is the caller's, and the next command may want
    another value); a setting fixed when the session started (executor memory, cores) is refused with
    the way out, since silently running with another value than asked would be worse than stopping.
    A session recs builds got ``conf`` from the builder, so for it this changes nothing."""
    unset = object()
    before: dict[str, object] = {}
    try:
        for key, value in conf.items():
            current = spark.conf.get(key, None)
            if current == value:
                continue
            if not _changeable(spark, key):
                raise ConfigError(f"--spark-conf {key}={value}: the running SparkSession has {key}={current} and it "
                                  "cannot change once the session started; set it where that session is built, "
                                  "or run recs without one running")
            before[key] = unset if current is None else current
            spark.conf.set(key, value)
        yield
    finally:
        for key, old in before.items():
            if old is unset:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def effective_settings(spark: SparkSession, given: Mapping[str, str]) -> dict[str, str]:
    """The settings a run had, secrets masked (``recs.config.mask_secrets``): the context's own
    (master, memory, cores, ``spark-defaults.conf``, spark-submit's ``--conf``), then the ``--spark-conf``
    values as the session reports them. For the manifest: what an artifact was made with."""
    from recs.config import mask_secrets

    conf = {} if is_connect(spark) else {str(k): str(v) for k, v in spark.sparkContext.getConf().getAll()}
    for key in given:
        value = spark.conf.get(key, None)
        if value is not None:
            conf[key] = str(value)
    return mask_secrets(conf)


def master_of(spark: SparkSession) -> str:
    """Where a session runs: its master URL, or for Spark Connect the ``sc://`` URL it was opened with."""
    if is_connect(spark):
        return _REMOTES.get(id(spark), "spark connect")
    return str(spark.sparkContext.master)


def default_parallelism(spark: SparkSession) -> int:
    """Spark's default parallelism (the cores it was given); over Connect, which has no SparkContext to
    ask, the server's ``spark.default.parallelism`` if it says, else ``CONNECT_PARALLELISM``."""
    if is_connect(spark):
        return int(spark.conf.get("spark.default.parallelism", None) or CONNECT_PARALLELISM)
    return int(spark.sparkContext.defaultParallelism)


def setting_given(spark: SparkSession, key: str) -> bool:
    """Whether ``key`` was set for the session rather than left at Spark's default. Classic: the
    context's configuration holds it. Connect (no context to ask): the session reports a value and it
    differs from Spark's default."""
    if not is_connect(spark):
        return bool(spark.sparkContext.getConf().contains(key))
    default = {"spark.sql.shuffle.partitions": "200"}.get(key)
    value = spark.conf.get(key, None)
    return value is not None and value != default


def task_cpus(spark: SparkSession) -> int:
    """Cores per task (``spark.task.cpus``): the threads each search task gives faiss."""
    if is_connect(spark):
        return int(spark.conf.get("spark.task.cpus", None) or 1)
    return int(spark.sparkContext.getConf().get("spark.task.cpus", "1"))


def ship_file(spark: SparkSession, path: Path) -> None:
    """Send a local file to every executor, fetched there with ``SparkFiles.get(path.name)``: classic
    ``SparkContext.addFile``; over Connect the session's file artifacts (``addArtifacts(file=True)``)."""
    if is_connect(spark):
        spark.addArtifacts(str(Path(path).resolve()), file=True)
    else:
        spark.sparkContext.addFile("file://" + os.path.abspath(path))  # absolute: the JVM's cwd may not be ours


_GROUP, _DESCRIPTION = "spark.jobGroup.id", "spark.job.description"


@contextmanager
def job_group(spark: SparkSession, name: str) -> Iterator[None]:
    """Spark's jobs started in the block are grouped as ``recs: NAME`` (the UI's and REST API's job
    group and description), so a stage's jobs, times and shuffle bytes can be found; restored after.
    Over Spark Connect (no SparkContext) the jobs are tagged ``recs-NAME`` instead."""
    if is_connect(spark):
        tag = "recs-" + re.sub(r"[^A-Za-z0-9-]+", "-", name)
        spark.addTag(tag)
        try:
            yield
        finally:
            spark.removeTag(tag)
        return
    sc = spark.sparkContext
    before = sc.getLocalProperty(_GROUP), sc.getLocalProperty(_DESCRIPTION)
    sc.setJobGroup(f"recs: {name}", f"recs: {name}")
    try:
        yield
    finally:
        sc.setLocalProperty(_GROUP, before[0])  # None removes the property
        sc.setLocalProperty(_DESCRIPTION, before[1])
