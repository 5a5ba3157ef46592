"""Run ``recs serve``: load the index once, bind the socket, hand it to uvicorn.

A request is about a millisecond of numpy and JSON under the GIL (recs.serve.app runs it inline on
the event loop), so one process serves from one core. ``--workers N`` runs N uvicorn servers in
spawned processes; this process accepts the connections and hands them to the workers in turn
(recs.serve.workers: why not uvicorn's shared socket). The index is still loaded once: this process
reads the tables, writes the arrays to a private temporary directory (recs.serve.shared) and each
worker maps them read-only, so N workers hold one copy in memory. A worker builds its app with
``worker_app``, the factory uvicorn imports by name; the environment variable ``RECS_SERVE_WORKER``
names the small JSON file with the arrays' directory and the settings (no state set at import).
``--workers 1`` serves from this process, without the copy.

The socket is bound here, before uvicorn starts, so a port in use or a host that is not ours is one
``Error:`` line (not uvicorn's log and exit), and ``--port 0`` can report the port the OS chose.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from recs.config import RecommendConfig, ServeConfig
from recs.errors import ConfigError, OutputError

WORKER_ENV = "RECS_SERVE_WORKER"  # the worker's settings file (worker_app)
WORKER_FILE = "worker.json"

EXTRA_HINT = "pip install 'recs[serve]'  (or, in a clone: pip install '.[serve]')"


def require_extra() -> None:
    """The [serve] extra (starlette, uvicorn) is installed, or one ConfigError that says how to get it."""
    missing = []
    for name in ("starlette", "uvicorn"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(f"recs serve needs {' and '.join(missing)} (the [serve] extra): {EXTRA_HINT}")


def load_app(index_dir: str | Path, cfg: ServeConfig, recommend: RecommendConfig | None = None
             ) -> tuple[Any, dict[str, Any]]:
    """The app over INDEX_DIR loaded once, and facts for the start line (items, sets, load time)."""
    cfg.validate()
    require_extra()
    from recs.recommend.recommender import Recommender
    from recs.serve.app import create_app

    t = time.perf_counter()
    recommender = Recommender.open(index_dir, recommend)
    info = {"index": str(index_dir), "items": len(recommender.store.ids), "sets": list(recommender.set_names),
            "load_s": time.perf_counter() - t}
    return create_app(recommender, cfg), info


TEMP_PREFIX = "recs-serve-"  # + HOST-PID-random: the workers' copy of the index (recs.serve.shared)
_TEMP_RE = re.compile(rf"^{TEMP_PREFIX}(?P<host>[0-9a-f]{{6}})-(?P<pid>\d+)-")


def sweep_temps(root: Path | None = None) -> list[Path]:
    """Remove the copies of the index that servers on this host left when they were killed (kill -9
    gives the supervisor no chance to remove its own): directories named ``recs-serve-HOST-PID-*`` in
    the temporary directory whose PID is no running process. Another host's (a shared /tmp) or a
    live server's are never touched. Returns those removed."""
    from recs.temps import _HOST, _pid_alive  # the rule every recs temporary follows (recs.temps)

    root = Path(tempfile.gettempdir()) if root is None else root
    removed = []
    with contextlib.suppress(OSError):
        for path in root.iterdir():
            m = _TEMP_RE.match(path.name)
            if m and m["host"] == _HOST and not _pid_alive(int(m["pid"])) and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def missing_files(directory: Path) -> str | None:
    """What a new worker would lack in ``directory`` (the workers' copy of the index), in words, or
    None: a /tmp cleaner may remove it while the server runs. The running workers keep serving (their
    arrays are mapped: removing the files does not unmap them); a new one cannot start."""
    from recs.serve.shared import META

    try:
        needed = [directory / WORKER_FILE, directory / META]
        if (directory / META).is_file():
            meta = json.loads((directory / META).read_text())
            needed += [directory / meta["ids"], *(directory / f for s in meta["sets"] for f in s["files"].values())]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{directory / META} is unreadable ({e})"
    gone = [p for p in needed if not p.is_file()]
    if not gone:
        return None
    if not directory.is_dir():
        return (f"{directory} (the workers' copy of the index) is gone: removed by a /tmp cleaner? Restart recs "
                "serve to make it again, or set TMPDIR to a directory no cleaner touches")
    shown = ", ".join(map(str, gone[:3])) + (" ..." if len(gone) > 3 else "")
    return f"{shown} missing from the workers' copy of the index"


@contextlib.contextmanager
def prepared(index_dir: str | Path, cfg: ServeConfig, recommend: RecommendConfig | None = None
             ) -> Iterator[tuple[Any, dict[str, Any]]]:
    """What ``serve`` runs, and facts for the start line: the app itself (one worker), or the
    directory the workers map the index from (removed when the block ends; one a killed server left
    is removed at the next start, ``sweep_temps``)."""
    if cfg.workers == 1:
        yield load_app(index_dir, cfg, recommend)
        return
    cfg.validate()
    require_extra()
    from recs.recommend.recommender import Recommender
    from recs.serve.shared import export_store
    from recs.temps import _HOST

    t = time.perf_counter()
    recommender = Recommender.open(index_dir, recommend)
    info = {"index": str(index_dir), "items": len(recommender.store.ids), "sets": list(recommender.set_names)}
    swept = sweep_temps()
    try:
        directory = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{_HOST}-{os.getpid()}-"))
    except OSError as e:
        raise OutputError(f"cannot make a temporary directory for the workers' copy of the index ({e.strerror}); "
                          "set TMPDIR, or use --workers 1") from None
    try:
        try:
            export_store(recommender.store, directory)
        except OSError as e:
            raise OutputError(f"cannot write the workers' copy of the index to {directory} ({e.strerror or e}); "
                              "set TMPDIR to a directory with room for it, or use --workers 1") from None
        del recommender  # this process only supervises: the workers map the arrays
        settings = {"store": str(directory), "serve": asdict(cfg),
                    "recommend": asdict(recommend) if recommend else None}
        (directory / WORKER_FILE).write_text(json.dumps(settings))
        yield directory, {**info, "load_s": time.perf_counter() - t, "swept": [str(p) for p in swept]}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def worker_app() -> Any:
    """The app of one worker (uvicorn's factory): the settings file ``RECS_SERVE_WORKER`` names,
    over the arrays ``prepared`` wrote; its /health adds what the supervisor last said of the workers."""
    from recs.recommend.recommender import Recommender
    from recs.serve.app import create_app
    from recs.serve.shared import open_store
    from recs.serve.workers import health

    path = os.environ.get(WORKER_ENV)
    if not path:
        raise ConfigError(f"{WORKER_ENV} is not set: worker_app is started by recs serve --workers N")
    settings = json.loads(Path(path).read_text())
    recommend = RecommendConfig(**settings["recommend"]) if settings["recommend"] else None
    return create_app(Recommender(open_store(Path(settings["store"])), recommend), ServeConfig(**settings["serve"]),
                      workers=health)


def bind(cfg: ServeConfig) -> socket.socket:
    """The listening TCP socket on cfg.host:cfg.port (port 0: one the OS picks). With several
    workers the supervisor accepts on it and hands the connections out (recs.serve.workers says why)."""
    try:
        infos = socket.getaddrinfo(cfg.host, cfg.port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ConfigError(f"--host {cfg.host!r}: cannot resolve it ({e.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise OutputError(f"cannot listen on {cfg.host}:{cfg.port} ({e.strerror or e})") from None
    return sock


def serve(target: Any, sock: socket.socket, access_log: bool = True, workers: int = 1,
          cfg: ServeConfig | None = None, announce: Callable[[], None] | None = None) -> None:
    """Serve ``target`` (what ``prepared`` gave) on ``sock`` (``bind``'s) until interrupted.

    One worker (the app itself): uvicorn finishes the requests in flight (at most 5 s), then
    re-raises the signal it caught: Ctrl-C is a normal return here (exit 0, not click's "Aborted!");
    SIGTERM ends the process by that signal, as services stopped by a supervisor do. Several (the
    arrays' directory): ``workers`` spawned workers, handed the connections this process accepts
    (recs.serve.workers); Ctrl-C or SIGTERM stops them and returns (exit 0); a worker that cannot
    start stops them all (an OutputError). Either way every connection has ``cfg``'s header timeout
    and every process its connection cap (recs.serve.guard). ``announce`` (the CLI's start line) is
    called first."""
    # Ctrl-C at any moment from the start line on is a quiet stop with exit 0, not click's "Aborted!"
    # (uvicorn and the supervisor install their own handlers only once started; a client that reads
    # the line may send the signal before this process runs its next instruction)
    with contextlib.suppress(KeyboardInterrupt):
        if announce is not None:
            announce()
        _serve(target, sock, access_log, workers, cfg or ServeConfig(workers=workers))


def _serve(target: Any, sock: socket.socket, access_log: bool, workers: int, cfg: ServeConfig) -> None:
    import uvicorn

    from recs.serve.guard import guard_config

    guard = (cfg.header_timeout, cfg.max_connections)
    options: dict[str, Any] = {"lifespan": "off", "access_log": access_log, "timeout_graceful_shutdown": 5}
    if not isinstance(target, Path):
        config = uvicorn.Config(target, workers=1, **options)
        guard_config(config, *guard)
        uvicorn.Server(config).run(sockets=[sock])
        return
    from recs.serve.workers import supervise

    config = uvicorn.Config(f"{__name__}:worker_app", factory=True, **options)
    from recs.serve.metrics import multiprocess_env

    supervise(config, sock, workers, {WORKER_ENV: str(target / WORKER_FILE), **multiprocess_env(target)},
              worker_timeout=cfg.worker_timeout,
              missing=lambda: missing_files(target), guard=guard)


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"
