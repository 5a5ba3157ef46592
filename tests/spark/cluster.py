"""A Spark standalone cluster on loopback for the tests: one master and two workers from the pyspark install.

``local[2]`` runs every task in the driver's JVM, with the driver's working directory and the driver's
files: code that hands a task a path only the driver can see, or a relative path, passes there and
fails on a cluster. Here the executors are other processes, started by the workers in work
directories of their own (``--work-dir``), with their own Python workers, so such code fails in the
tests too. Each worker offers one core and 1 GiB (the machine is small and shared); the daemons get a
small heap of their own.

``StandaloneCluster`` is a context manager (also used by ``bench/spark_cluster.py``); the fixture
``spark_cluster`` holds one for the whole test session (starting the three JVMs costs ~10-20 s). It
binds to 127.0.0.1 only, waits a bounded time for both workers to register (the master's JSON page,
``http://127.0.0.1:<ui>/json``), and always stops what it started: terminate, then kill after a grace
period, process group and all (each daemon is the leader of a group of its own, so its executors and
their Python workers go with it). Skipped with the reason where pyspark or Java 17+ is missing.

A driver for the cluster is a separate process (the CLI in a subprocess): one Python process holds one
SparkContext, and the test session's own (``spark``, local[2]) may be running already.
``driver_env`` is its environment: the executors' Python (this interpreter, which imports recs),
loopback addresses and a ``SPARK_CONF_DIR`` whose ``spark-defaults.conf`` keeps executors small.

A directory only the driver sees (``driver_only``): on one machine every process sees every path, so
code that hands a task a path of the driver's disk (a work directory beside ``--out``, a local input)
passes here and fails on a cluster of several machines. Where the tests may create mount namespaces
(root, or CAP_SYS_ADMIN: ``unshare --mount``), each worker is started in a mount namespace of its own
with an empty tmpfs mounted over ``driver_only``; its executors and their Python workers inherit it,
so a file the driver writes there does not exist for any task, as on another machine. Elsewhere
``driver_only`` is None and the tests that need it skip with the reason (``isolation_missing``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
WORKERS = 2
WORKER_MEMORY = "1g"
EXECUTOR_MEMORY = "768m"  # below the worker's 1g, or the master never places an executor
DAEMON_MEMORY = "256m"  # heap of the master and worker JVMs themselves (Spark's default is 1g each)
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0

# Settings every driver of the test cluster gets (spark-defaults.conf): small executors, few partitions
# for tiny data, no UI ports, the driver reachable on loopback.
DRIVER_DEFAULTS: dict[str, str] = {
    "spark.executor.memory": EXECUTOR_MEMORY,
    "spark.executor.cores": "1",
    "spark.cores.max": str(WORKERS),
    "spark.driver.memory": "1g",
    "spark.driver.host": LOOPBACK,
    "spark.driver.bindAddress": LOOPBACK,
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
}


def spark_home() -> Path:
    """pyspark's package directory: a Spark distribution (bin/, sbin/, jars/) as pip installs it."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    """A TCP port free on loopback now (the OS picks it; a daemon started right after binds it)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen, grace: float = STOP_GRACE_S) -> None:
    """Terminate ``proc`` and its process group (it leads one: ``start_new_session``); kill after ``grace``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):  # what it left: an executor, a Python worker
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(grace)


# the worker's command line inside its own mount namespace: an empty tmpfs over the driver-only directory
# ("$0"), then the daemon itself ("$@"), exec'd so that the process group is still the daemon's
_HIDE = 'mount -t tmpfs -o size=16m recs-driver-only "$0" && exec "$@"'


def isolation_missing() -> str | None:
    """Why worker processes cannot be given a mount namespace of their own here (None: they can)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return "no unshare(1) on PATH (util-linux), so no directory can be hidden from the executors"
    with tempfile.TemporaryDirectory() as d:
        try:
            run = subprocess.run([unshare, "--mount", "--propagation", "private", "sh", "-c", _HIDE, d, "true"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            return f"unshare --mount failed: {e}"
    if run.returncode != 0:
        why = (run.stderr.strip().splitlines() or [f"exit code {run.returncode}"])[-1]
        return f"no mount namespace for the workers (unshare --mount: {why}); needs root or CAP_SYS_ADMIN"
    return None


class ClusterError(RuntimeError):
    """The test cluster did not come up: the message names what was missing and where its logs are."""


class StandaloneCluster:
    """A master and ``workers`` workers on 127.0.0.1 (module doc); ``master`` is the URL drivers use.

    ``hide``: make ``root/driver-only`` a directory the executors do not see (module doc), where this
    machine allows it; ``driver_only`` is then its path, else None."""

    def __init__(self, root: Path, workers: int = WORKERS, conf: Mapping[str, str] | None = None,
                 hide: bool = False) -> None:
        self.root = Path(root)
        self.driver_only: Path | None = None
        self.isolation_missing = isolation_missing() if hide else "not asked for (StandaloneCluster(hide=False))"
        if self.isolation_missing is None:
            self.driver_only = self.root / "driver-only"
        self.workers = workers
        self.conf = {**DRIVER_DEFAULTS, **(conf or {})}
        self.port = free_port()
        self.ui_port = free_port()
        self.master = f"spark://{LOOPBACK}:{self.port}"
        self.conf_dir = self.root / "conf"
        self._procs: list[subprocess.Popen] = []

    # -- environment ----------------------------------------------------------------------------------

    def _daemon_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_"))}
        env.update(SPARK_HOME=str(spark_home()), SPARK_CONF_DIR=str(self.conf_dir), SPARK_LOCAL_IP=LOOPBACK,
                   SPARK_LOG_DIR=str(self.root / "logs"), SPARK_DAEMON_MEMORY=DAEMON_MEMORY,
                   SPARK_NO_DAEMONIZE="1",
                   # executors start Python workers with this interpreter: the one that imports recs
                   PYSPARK_PYTHON=sys.executable)
        return env

    def driver_env(self, **extra: str) -> dict[str, str]:
        """Environment of a driver process for this cluster (the CLI in a subprocess)."""
        env = self._daemon_env()
        env.pop("SPARK_DAEMON_MEMORY")
        env.pop("SPARK_NO_DAEMONIZE")
        env["PYSPARK_DRIVER_PYTHON"] = sys.executable
        env.update(extra)
        return env

    # -- start / stop ---------------------------------------------------------------------------------

    def _spawn(self, name: str, *args: str, hidden: Path | None = None) -> subprocess.Popen:
        log = (self.root / "logs" / f"{name}.out").open("ab")
        argv = [str(spark_home() / "bin" / "spark-class"), *args]
        if hidden is not None:  # in a mount namespace of its own, with an empty tmpfs over ``hidden``
            argv = [str(shutil.which("unshare")), "--mount", "--propagation", "private", "sh", "-c", _HIDE,
                    str(hidden), *argv]
        try:
            proc = subprocess.Popen(argv, env=self._daemon_env(),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, cwd=self.root)
        finally:
            log.close()
        self._procs.append(proc)
        return proc

    def state(self) -> dict:
        """The master's JSON status page (workers, their state, running applications)."""
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.ui_port}/json", timeout=5) as r:
            return json.loads(r.read())

    def alive_workers(self) -> int:
        try:
            return sum(w.get("state") == "ALIVE" for w in self.state().get("workers", []))
        except OSError:
            return 0

    def start(self, timeout: float = START_TIMEOUT_S) -> StandaloneCluster:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        if self.driver_only is not None:
            self.driver_only.mkdir(exist_ok=True)
        (self.conf_dir / "spark-defaults.conf").write_text("".join(f"{k} {v}\n" for k, v in self.conf.items()))
        self._spawn("master", "org.apache.spark.deploy.master.Master", "--host", LOOPBACK, "--port",
                    str(self.port), "--webui-port", str(self.ui_port))
        for i in range(self.workers):
            work = self.root / f"worker-{i}"
            work.mkdir(exist_ok=True)
            self._spawn(f"worker-{i}", "org.apache.spark.deploy.worker.Worker", self.master, "--host", LOOPBACK,
                        "--cores", "1", "--memory", WORKER_MEMORY, "--work-dir", str(work),
                        "--webui-port", str(free_port()), hidden=self.driver_only)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p for p in self._procs if p.poll() is not None]
            if dead:
                raise ClusterError(f"a Spark daemon exited with {dead[0].returncode} while starting; logs in "
                                   f"{self.root / 'logs'}")
            if self.alive_workers() == self.workers:
                return self
            time.sleep(0.5)
        raise ClusterError(f"{self.alive_workers()} of {self.workers} workers registered with {self.master} within "
                           f"{timeout:g} s; logs in {self.root / 'logs'}")

    def stop(self) -> None:
        for proc in reversed(self._procs):  # workers first, so they do not retry a master that is gone
            _stop(proc)
        self._procs.clear()

    def __enter__(self) -> StandaloneCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def executor_dirs(self) -> list[Path]:
        """The executors' working directories (``worker-i/app-*/<executor>``): where their tasks run."""
        return sorted(p for p in self.root.glob("worker-*/app-*/*") if p.is_dir())


def _require_spark() -> None:
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]' (and Java 17+)")
    from recs.errors import ConfigError
    from recs.spark.session import check_java

    try:
        check_java()
    except ConfigError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory) -> Iterator[StandaloneCluster]:
    """One standalone master and two one-core workers on loopback for the whole test session, with a
    directory only the driver sees where this machine allows one (``driver_only``)."""
    _require_spark()
    cluster = StandaloneCluster(tmp_path_factory.mktemp("spark-cluster"), hide=True)
    with cluster:
        yield cluster


# -- Spark Connect --------------------------------------------------------------------------------------

CONNECT_JAR_GLOB = "spark-connect_*.jar"


def connect_missing() -> str | None:
    """Why a Spark Connect server or client cannot run here (None: both can)."""
    if not list((spark_home() / "jars").glob(CONNECT_JAR_GLOB)):
        return f"the pyspark install has no Spark Connect server jar ({spark_home() / 'jars' / CONNECT_JAR_GLOB})"
    from recs.errors import ConfigError
    from recs.spark.session import require_connect_client

    try:
        require_connect_client()
    except ConfigError as e:
        return str(e)
    return None


class ConnectServer:
    """``sbin/start-connect-server.sh --wait`` from the pyspark install on 127.0.0.1 (its own local[2]
    Spark, 1 GiB driver), in the foreground as a process group of its own; ``url`` is its ``sc://``."""

    def __init__(self, root: Path, master: str = "local[2]") -> None:
        self.root = Path(root)
        self.port = free_port()
        self.url = f"sc://{LOOPBACK}:{self.port}"
        self.master = master
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = START_TIMEOUT_S) -> ConnectServer:
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        (self.root / "conf").mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_"))}
        env.update(SPARK_HOME=str(spark_home()), SPARK_CONF_DIR=str(self.root / "conf"), SPARK_LOCAL_IP=LOOPBACK,
                   SPARK_LOG_DIR=str(self.root / "logs"), SPARK_PID_DIR=str(self.root), PYSPARK_PYTHON=sys.executable)
        conf = {"spark.connect.grpc.binding.address": LOOPBACK, "spark.connect.grpc.binding.port": str(self.port),
                "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"}
        args = [a for k, v in conf.items() for a in ("--conf", f"{k}={v}")]
        log = (self.root / "logs" / "connect.out").open("ab")
        try:
            self._proc = subprocess.Popen(
                [str(spark_home() / "sbin" / "start-connect-server.sh"), "--wait", "--master", self.master,
                 "--driver-memory", "1g", *args], env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ClusterError(f"the Spark Connect server exited with {self._proc.returncode}; logs in "
                                   f"{self.root / 'logs'}")
            try:
                socket.create_connection((LOOPBACK, self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.5)
        raise ClusterError(f"the Spark Connect server did not listen on {self.url} within {timeout:g} s; logs in "
                           f"{self.root / 'logs'}")

    def stop(self) -> None:
        if self._proc is not None:
            _stop(self._proc)
            self._proc = None

    def __enter__(self) -> ConnectServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client_env(self, **extra: str) -> dict[str, str]:
        """Environment of a client process (the CLI in a subprocess): no Spark settings of this one."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_"))}
        env.update(extra)
        return env


@pytest.fixture(scope="session")
def spark_connect(tmp_path_factory) -> Iterator[ConnectServer]:
    """One Spark Connect server on loopback for the whole test session (skipped with the reason when the
    pyspark install lacks the server jar or the client packages)."""
    _require_spark()
    why = connect_missing()
    if why:
        pytest.skip(why)
    with ConnectServer(tmp_path_factory.mktemp("spark-connect")) as server:
        yield server
