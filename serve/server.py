"""Run ``recs serve``: load the index once, bind the socket, hand both to uvicorn.

One process, one event loop, no worker threads for the routes (recs.serve.app says why): the index
is loaded once into this process and only read. To use more cores, run one ``recs serve`` per core
behind a load balancer; each loads its own copy (uvicorn's ``--workers`` would too, and re-import
the app by name, which an app built from a loaded index is not).

The socket is bound here, before uvicorn starts, so a port in use or a host that is not ours is one
``Error:`` line (not uvicorn's log and exit), and ``--port 0`` can report the port the OS chose.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path
from typing import Any

from recs.config import RecommendConfig, ServeConfig
from recs.errors import ConfigError, OutputError

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


def bind(cfg: ServeConfig) -> socket.socket:
    """A listening TCP socket on cfg.host:cfg.port (port 0: one the OS picks)."""
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
    sock.set_inheritable(True)
    return sock


def serve(app: Any, sock: socket.socket, access_log: bool = True) -> None:
    """Serve ``app`` on ``sock`` until interrupted. uvicorn finishes the requests in flight (at most
    5 s), then re-raises the signal it caught: Ctrl-C is a normal return here (exit 0, not click's
    "Aborted!"); SIGTERM ends the process by that signal, as services stopped by a supervisor do."""
    import uvicorn

    config = uvicorn.Config(app, workers=1, lifespan="off", access_log=access_log, timeout_graceful_shutdown=5)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"
