"""``recs serve --workers N``: N uvicorn servers in spawned processes, handed connections in turn.

uvicorn's own ``--workers`` gives every worker the one listening socket, and whichever worker wakes
first accepts every connection waiting: 16 keep-alive clients that connect at once were split
16/0, 15/1 or 12/4 between 2 workers. One ``SO_REUSEPORT`` socket per worker spreads them by a hash
of the addresses: 7/9 or 5/11 as often as 8/8 (measured; BENCHMARKS.md, "Serving"). Either way one
worker queues more requests than the other, and the p99 follows the busier one. Here the supervisor
(this process) holds the one listening socket, accepts each connection and passes it (its file
descriptor, ``SCM_RIGHTS`` over a Unix socket pair per worker) to the workers in turn, so N workers
always hold within one of the same number of connections. It costs a hand-off per connection, not
per request (keep-alive).

The supervisor starts the workers with the ``spawn`` method (a fresh interpreter: no polars state
inherited through ``fork``), restarts a worker that dies, stops every worker when one cannot start
(uvicorn's exit code 3: the next would fail the same way), and on Ctrl-C or SIGTERM asks each to stop
(SIGTERM: uvicorn finishes the requests in flight) and waits for them.
"""

from __future__ import annotations

import asyncio
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
ACCEPT_POLL_S = 0.5  # how often the accepting thread looks whether the server stops
MAX_FDS = 64  # connections one read of a worker's channel takes at most

logger = logging.getLogger("uvicorn.error")


def _server_class() -> Any:
    import uvicorn

    class HandedServer(uvicorn.Server):
        """uvicorn's server with no listening socket of its own: it serves the connections that
        arrive on ``channel`` (uvicorn's protocol, state and graceful shutdown, as for its own)."""

        def __init__(self, config: Any, channel: socket.socket):
            super().__init__(config)
            self.channel = channel

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=[])
            loop, config = asyncio.get_running_loop(), self.config

            def protocol() -> asyncio.Protocol:  # as uvicorn's own create_protocol
                return config.http_protocol_class(config=config, server_state=self.server_state,
                                                  app_state=self.lifespan.state, _loop=loop)

            def receive() -> None:
                try:
                    data, fds, _, _ = socket.recv_fds(self.channel, MAX_FDS, MAX_FDS)
                except (BlockingIOError, InterruptedError):
                    return
                if not data and not fds:  # the supervisor is gone: nothing more will come
                    loop.remove_reader(self.channel.fileno())
                    self.should_exit = True
                for fd in fds:
                    sock = socket.socket(fileno=fd)
                    sock.setblocking(False)
                    loop.create_task(loop.connect_accepted_socket(protocol, sock))

            self.channel.setblocking(False)
            loop.add_reader(self.channel.fileno(), receive)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self.channel.fileno())
            self.channel.close()
            await super().shutdown(sockets=[])

    return HandedServer


def _worker(config: Any, channel: socket.socket, env: dict[str, str]) -> None:  # pragma: no cover - in a child
    """One worker: uvicorn's server on the connections ``channel`` passes, its app built by the
    factory ``config`` names. An app that cannot be built exits with uvicorn's startup-failure code
    whatever the error (uvicorn itself lets any error but a TypeError escape from a factory, and its
    supervisor then restarts the worker for ever)."""
    from uvicorn.config import STARTUP_FAILURE

    os.environ.update(env)
    config.configure_logging()
    try:
        config.load()
    except Exception:
        logger.exception("the worker's app could not be built")
        sys.exit(STARTUP_FAILURE)
    with contextlib.suppress(KeyboardInterrupt):
        _server_class()(config, channel).run()


def _hand_out(listener: socket.socket, channels: list[socket.socket | None], stop: threading.Event) -> None:
    """Accept connections on ``listener`` and pass each to the next worker's channel, in turn (a
    worker that cannot take it, dead or restarting, is skipped)."""
    listener.settimeout(ACCEPT_POLL_S)
    turn = 0
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except (TimeoutError, InterruptedError):
            continue
        except OSError:
            if stop.is_set():
                return
            raise
        with conn:
            for _ in range(len(channels)):
                channel, turn = channels[turn % len(channels)], turn + 1
                if channel is None:
                    continue
                try:
                    socket.send_fds(channel, [b"c"], [conn.fileno()])
                    break
                except OSError:
                    continue


def supervise(config: Any, listener: socket.socket, workers: int, env: dict[str, str]) -> None:
    """Run ``workers`` workers on the connections accepted on ``listener`` until SIGINT or SIGTERM
    (``config``: a uvicorn.Config of an import string; ``env``: set in each worker before its app is
    built)."""
    from uvicorn.config import STARTUP_FAILURE

    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    channels: list[socket.socket | None] = [None] * workers

    def start(i: int) -> Any:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = spawn.Process(target=_worker, args=(config, theirs, env), daemon=False)
        process.start()
        theirs.close()  # the child has its copy: when it dies, a send to ``ours`` fails
        old, channels[i] = channels[i], ours
        if old is not None:
            old.close()
        logger.info(f"Started worker process [{process.pid}]")
        return process

    processes = [start(i) for i in range(workers)]
    accepting = threading.Thread(target=_hand_out, args=(listener, channels, stop), daemon=True)
    accepting.start()
    failed = None
    try:
        while not stop.wait(0.5):
            for i, process in enumerate(processes):
                if process.exitcode is None:
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    failed = process.pid
                    stop.set()
                    break
                logger.warning(f"Worker process [{process.pid}] died (exit code {process.exitcode}); restarting it")
                processes[i] = start(i)
    finally:
        stop.set()
        accepting.join(2 * ACCEPT_POLL_S)
        for process in processes:
            if process.exitcode is None:
                process.terminate()
        for process in processes:
            process.join(STOP_TIMEOUT_S)
            if process.exitcode is None:
                process.kill()
                process.join()
        for channel in channels:
            if channel is not None:
                channel.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logger.info(f"Stopped {len(processes)} worker processes")
    if failed is not None:
        raise OutputError(f"worker process {failed} of recs serve could not start (its error is in the log above)")
