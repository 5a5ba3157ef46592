"""``recs serve --workers N``: N uvicorn servers in spawned processes, each on its own socket.

uvicorn's own ``--workers`` gives every worker the one listening socket, and whichever worker wakes
first accepts every connection waiting: 16 keep-alive clients that connect at once were split
16/0, 15/1 or 12/4 between 2 workers (measured; BENCHMARKS.md, "Serving"), so one worker queues
most requests while the other idles, and the p99 doubles. Here each worker listens on a socket of
its own, all bound to the one port with ``SO_REUSEPORT``: the kernel spreads new connections over
the sockets by a hash of their addresses, whichever worker is awake.

The supervisor (this process) starts the workers with the ``spawn`` method (a fresh interpreter: no
polars state inherited through ``fork``), restarts a worker that dies, stops every worker when one
cannot start (uvicorn's exit code 3: the next would fail the same way), and on Ctrl-C or SIGTERM asks
each to stop (SIGTERM: uvicorn finishes the requests in flight) and waits for them. As uvicorn's
supervisor does; what it lacks is the per-socket hand-out.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from typing import Any

from recs.errors import OutputError

STOP_TIMEOUT_S = 10  # a worker still running this long after SIGTERM is killed

logger = logging.getLogger("uvicorn.error")


def _worker(config: Any, sock: socket.socket, env: dict[str, str]) -> None:  # pragma: no cover - in a child
    """One worker: uvicorn's server on ``sock``, its app built by the factory ``config`` names. An app
    that cannot be built exits with uvicorn's startup-failure code whatever the error (uvicorn itself
    lets any error but a TypeError escape from a factory, and its supervisor then restarts the worker
    for ever)."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    os.environ.update(env)
    config.configure_logging()
    try:
        config.load()
    except Exception:
        logger.exception("the worker's app could not be built")
        sys.exit(STARTUP_FAILURE)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


def supervise(config: Any, sockets: list[socket.socket], env: dict[str, str]) -> None:
    """Run one worker per socket of ``sockets`` until SIGINT or SIGTERM (``config``: a uvicorn.Config
    of an import string; ``env``: set in each worker before its app is built)."""
    from uvicorn.config import STARTUP_FAILURE

    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start(sock: socket.socket) -> Any:
        process = spawn.Process(target=_worker, args=(config, sock, env), daemon=False)
        process.start()
        logger.info(f"Started worker process [{process.pid}]")
        return process

    workers = [start(sock) for sock in sockets]
    failed = None
    try:
        while not stop.wait(0.5):
            for i, process in enumerate(workers):
                if process.exitcode is None:
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    failed = process.pid
                    stop.set()
                    break
                logger.warning(f"Worker process [{process.pid}] died (exit code {process.exitcode}); restarting it")
                workers[i] = start(sockets[i])
    finally:
        for process in workers:
            if process.exitcode is None:
                process.terminate()
        for process in workers:
            process.join(STOP_TIMEOUT_S)
            if process.exitcode is None:
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logger.info(f"Stopped {len(workers)} worker processes")
    if failed is not None:
        raise OutputError(f"worker process {failed} of recs serve could not start (its error is in the log above)")
