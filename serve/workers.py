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

**One worker never stops the others** (issue 21, items 5 and 18). The supervisor is one thread that
never blocks on a worker: its ends of the socket pairs are non-blocking, and a worker acknowledges
every message it reads (a connection, or a ping sent each second to an idle worker). A worker with a
message unacknowledged for ``SUSPECT_S`` gets no new connection (its turn passes to the next); one
that leaves a message unacknowledged for ``worker_timeout`` seconds (stopped, deadlocked, swapping)
is killed and replaced, and the connections it never read are handed to another worker (the
supervisor keeps its copy of a connection until the worker acknowledges it). Before this, a
``kill -STOP`` of one of two workers blocked the supervisor in ``send_fds`` once that worker's
socket buffer filled (~400 connections), and every request timed out, on the healthy worker too.

The supervisor starts the workers with the ``spawn`` method (a fresh interpreter: no polars state
inherited through ``fork``) and with SIGINT ignored, so a Ctrl-C in a terminal (sent to the whole
process group) reaches only the supervisor, which stops the workers with SIGTERM (uvicorn finishes
the requests in flight) and waits for them: no worker prints a KeyboardInterrupt traceback while it
is still importing (issue 21, item 16). It restarts a worker that dies. A worker that cannot start
at all (uvicorn's exit code 3) stops them all when the server starts (the next would fail the same
way); later (a /tmp cleaner removed the index's copy) it is logged with what is missing, shown in
/health as ``"status": "degraded"``, and retried with a growing delay while the other workers
serve; only when no worker is left does the server stop, with that error.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from recs.errors import OutputError
from recs.serve.guard import connection_cap, http_error

STOP_TIMEOUT_S = 10  # a worker still running this long after SIGTERM is killed
TICK_S = 0.05  # the supervisor's loop: the longest it sleeps when nothing happens
SUSPECT_S = 0.25  # a worker with a message unacknowledged this long is passed over for new connections
STARTUP_TIMEOUT_S = 120  # a worker not answering this long after its start is killed and retried
MAX_BACKLOG = 4096  # connections waiting for a worker; more are refused at once (503)
ACCEPT_PAUSE_S = 0.1  # out of descriptors: accepting stops this long (the listener would wake the loop at once)
RETRY_S = (1.0, 5.0, 15.0, 60.0)  # delays between restarts of a worker that cannot start or keeps dying
QUICK_DEATH_S = 5.0  # a worker dying this soon after its start is restarted after a delay (RETRY_S)
HEAD = struct.Struct("!cQ")  # a message's kind (c: a connection, p: a ping) and sequence number

logger = logging.getLogger("uvicorn.error")

# the supervisor's last word about every worker, in this worker (the pings carry it): /health's
_STATUS: dict[str, Any] = {}


def health() -> dict[str, Any]:
    """What /health says about the server's processes (``recs.serve.app.create_app(workers=...)``):
    ``status`` ok or degraded, and how many of the workers run, with any problem, in words."""
    return dict(_STATUS)


def _server_class() -> Any:
    import uvicorn

    class HandedServer(uvicorn.Server):
        """uvicorn's server with no listening socket of its own: it serves the connections that
        arrive on ``channel`` (uvicorn's protocol, state and graceful shutdown, as for its own), and
        acknowledges each message it reads (the supervisor's liveness check)."""

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
                while True:
                    try:
                        data, fds, _, _ = socket.recv_fds(self.channel, 65536, 1)
                    except (BlockingIOError, InterruptedError):
                        return
                    except OSError:
                        data, fds = b"", []
                    if not data and not fds:  # the supervisor is gone: nothing more will come
                        loop.remove_reader(self.channel.fileno())
                        self.should_exit = True
                        return
                    for fd in fds:
                        sock = socket.socket(fileno=fd)
                        sock.setblocking(False)
                        loop.create_task(loop.connect_accepted_socket(protocol, sock))
                    kind = data[:1]
                    if kind == b"p" and len(data) > HEAD.size:
                        with contextlib.suppress(ValueError):
                            _STATUS.clear()
                            _STATUS.update(json.loads(data[HEAD.size:]))
                    with contextlib.suppress(OSError):  # the ack; a full buffer: the supervisor is gone
                        self.channel.send(data[:HEAD.size])

            self.channel.setblocking(False)
            loop.add_reader(self.channel.fileno(), receive)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self.channel.fileno())
            self.channel.close()
            await super().shutdown(sockets=[])

    return HandedServer


def _worker(config: Any, channel: socket.socket, env: dict[str, str],
            guard: tuple[float, int] | None) -> None:  # pragma: no cover - in a child
    """One worker: uvicorn's server on the connections ``channel`` passes, its app built by the
    factory ``config`` names, its protocol guarded (``recs.serve.guard``: header timeout and
    connection cap). An app that cannot be built exits with uvicorn's startup-failure code whatever
    the error (uvicorn itself lets any error but a TypeError escape from a factory, and its
    supervisor then restarts the worker for ever)."""
    from uvicorn.config import STARTUP_FAILURE

    from recs.serve.guard import guarded

    os.environ.update(env)
    config.configure_logging()
    try:
        config.load()
    except Exception:
        logger.exception("the worker's app could not be built")
        sys.exit(STARTUP_FAILURE)
    if guard is not None:
        config.http_protocol_class = guarded(config.http_protocol_class, *guard)
    with contextlib.suppress(KeyboardInterrupt):
        _server_class()(config, channel).run()


@contextlib.contextmanager
def _sigint_ignored_in_children() -> Iterator[None]:
    """Processes started inside ignore SIGINT from their first instruction (a spawned interpreter
    installs its KeyboardInterrupt handler only when SIGINT is not ignored); this one's own Ctrl-C,
    if one comes meanwhile, is held (blocked) and handled after."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class _Slot:
    """One worker's place: its process, its channel and the messages it has not acknowledged."""

    def __init__(self, index: int):
        self.index = index
        self.process: Any = None
        self.channel: socket.socket | None = None
        self.pending: dict[int, tuple[float, socket.socket | None]] = {}  # seq -> (sent at, our copy)
        self.started = 0.0
        self.ready = False  # it acknowledged a message since its start
        self.killed = False  # by the liveness check: its death is no crash
        self.ever_ready = False
        self.last_ping = 0.0
        self.retry_at: float | None = None  # no process: start one then
        self.failures = 0  # starts in a row that failed or died quickly
        self.problem: str | None = None

    def oldest(self) -> float | None:
        return min(t for t, _ in self.pending.values()) if self.pending else None


class _Supervisor:
    """The loop of ``supervise`` (one thread: accept, hand out, read acknowledgements, check workers)."""

    def __init__(self, config: Any, listener: socket.socket, workers: int, env: dict[str, str],
                 worker_timeout: float, missing: Callable[[], str | None] | None, guard: tuple[float, int] | None,
                 stop: threading.Event):
        self.config, self.listener, self.env, self.guard, self.stop = config, listener, env, guard, stop
        self.timeout, self.missing = worker_timeout, missing or (lambda: None)
        self.ping_s = min(1.0, worker_timeout / 4)
        self.slots = [_Slot(i) for i in range(workers)]
        self.spawn = multiprocessing.get_context("spawn")
        self.selector = selectors.DefaultSelector()
        self.backlog: deque[tuple[socket.socket, float]] = deque()
        self.seq = itertools.count(1)
        self.turn = 0
        self.failed: str | None = None  # why the server stops with an error
        # the backlog and the connections held until acknowledged must leave this process descriptors
        self.max_backlog = min(MAX_BACKLOG, max(16, connection_cap(1 << 30) // 2))
        self.accept_paused_until: float | None = None
        self.emfile_logged = 0.0

    # ---- processes ---------------------------------------------------------------------------------

    def start(self, slot: _Slot, now: float) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = self.spawn.Process(target=_worker, args=(self.config, theirs, self.env, self.guard), daemon=False)
        with _sigint_ignored_in_children():
            process.start()
        theirs.close()  # the child has its copy: when it dies, a read of ``ours`` ends
        ours.setblocking(False)
        self.selector.register(ours, selectors.EVENT_READ, slot)
        slot.process, slot.channel, slot.pending = process, ours, {}
        slot.started, slot.ready, slot.retry_at, slot.killed = now, False, None, False
        self.ping(slot, now)  # its first acknowledgement says it serves
        logger.info(f"Started worker process [{process.pid}]")

    def lost(self, slot: _Slot, now: float) -> None:
        """``slot``'s process is gone (dead, or killed here): give its unread connections to the others."""
        for _, conn in sorted(slot.pending.values(), key=lambda p: p[0], reverse=True):
            if conn is not None:
                self.backlog.appendleft((conn, now))
        slot.pending = {}
        if slot.channel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(slot.channel)
            slot.channel.close()
        slot.channel, slot.ready = None, False
        process, slot.process = slot.process, None
        with contextlib.suppress(Exception):
            process.join(1)
            process.close()

    def restart_later(self, slot: _Slot, now: float, why: str) -> None:
        delay = RETRY_S[min(slot.failures, len(RETRY_S) - 1)]
        slot.failures += 1
        slot.retry_at = now + delay
        slot.problem = why
        running = sum(s.ready for s in self.slots)
        logger.error(f"Worker process {slot.index + 1} of {len(self.slots)} cannot be restarted: {why}; serving with "
                     f"{running} of {len(self.slots)}; trying again in {delay:g} s")
        if running == 0 and not any(s.process is not None for s in self.slots):
            self.failed = f"no worker process of recs serve can be restarted: {why}"

    def check(self, now: float) -> None:
        """Deaths, hangs and due restarts of every worker; pings to the idle ones."""
        from uvicorn.config import STARTUP_FAILURE

        for slot in self.slots:
            process = slot.process
            if process is None:
                if slot.retry_at is not None and now >= slot.retry_at:
                    if (gone := self.missing()) is not None:
                        self.restart_later(slot, now, gone)
                    else:
                        self.start(slot, now)
                continue
            code = process.exitcode
            if code is not None:
                pid, quick = process.pid, not slot.killed and now - slot.started < QUICK_DEATH_S
                first_start = not slot.ever_ready and slot.failures == 0 and slot.problem is None
                self.lost(slot, now)
                if code == STARTUP_FAILURE and first_start and not any(s.ever_ready for s in self.slots):
                    self.failed = f"worker process {pid} of recs serve could not start (its error is in the log above)"
                    return
                if code == STARTUP_FAILURE or (gone := self.missing()) is not None:
                    why = self.missing() or "its app could not be built (the error is in the log above)"
                    self.restart_later(slot, now, f"worker process [{pid}] exited with code {code}; {why}")
                elif quick and slot.failures:
                    self.restart_later(slot, now, f"worker process [{pid}] died {now - slot.started:.1f} s after "
                                                  f"its start (exit code {code})")
                else:
                    logger.warning(f"Worker process [{pid}] {'was killed' if slot.killed else 'died'} (exit code "
                                   f"{code}); restarting it")
                    if quick:
                        slot.failures += 1
                    self.start(slot, now)
                continue
            oldest = slot.oldest()
            limit = self.timeout if slot.ready else STARTUP_TIMEOUT_S
            if oldest is not None and now - oldest > limit:
                logger.error(f"Worker process [{process.pid}] left a hand-off unanswered for {now - oldest:.1f} s "
                             f"(--worker-timeout {self.timeout:g}); killing and replacing it")
                with contextlib.suppress(OSError):
                    process.kill()
                process.join(5)
                slot.killed = True
                continue  # its exit is handled (and its connections handed out) on the next pass
            if slot.ready and not slot.pending and now - slot.last_ping >= self.ping_s:
                self.ping(slot, now)

    def status(self) -> dict[str, Any]:
        """/health's word on the workers: "degraded" while one cannot be restarted (a worker starting
        or being replaced is no problem), with what it lacks."""
        problems = [f"worker {s.index + 1}: {s.problem}" for s in self.slots if s.problem and s.process is None]
        return {"status": "degraded" if problems else "ok",
                "workers": {"configured": len(self.slots), "serving": sum(s.ready for s in self.slots),
                            "starting": sum(s.process is not None and not s.ready for s in self.slots),
                            "problems": problems}}

    # ---- messages ----------------------------------------------------------------------------------

    def ping(self, slot: _Slot, now: float) -> None:
        seq = next(self.seq)
        with contextlib.suppress(OSError):  # full: it has unread messages already, timed by them
            slot.channel.send(HEAD.pack(b"p", seq) + json.dumps(self.status()).encode())
            slot.pending[seq] = (now, None)
        slot.last_ping = now

    def acknowledged(self, slot: _Slot) -> None:
        while slot.channel is not None:
            try:
                data = slot.channel.recv(64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:  # the worker's end is closed: it is dying (check() sees its exit)
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(slot.channel)
                return
            if len(data) < HEAD.size:
                continue
            _, seq = HEAD.unpack_from(data)
            entry = slot.pending.pop(seq, None)
            if entry is not None and entry[1] is not None:
                entry[1].close()  # the worker holds it now
            if not slot.ready:
                slot.ready = slot.ever_ready = True
                slot.failures, slot.problem = 0, None

    def accept(self, now: float) -> None:
        for _ in range(256):  # then the workers' acknowledgements get a turn
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # out of descriptors (EMFILE) and the like: pause, or the loop would spin
                if now - self.emfile_logged > 10:
                    logger.warning(f"cannot accept connections ({e.strerror or e}); pausing {ACCEPT_PAUSE_S:g} s")
                    self.emfile_logged = now
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(self.listener)
                self.accept_paused_until = now + ACCEPT_PAUSE_S
                return
            if len(self.backlog) >= self.max_backlog:
                self.refuse(conn, f"{self.max_backlog:,} connections are waiting for a server process")
            else:
                self.backlog.append((conn, now))

    def hand(self, conn: socket.socket, now: float) -> bool:
        """Pass ``conn`` to the next worker in turn that is serving and not behind; False if none is."""
        n = len(self.slots)
        for _ in range(n):
            slot = self.slots[self.turn % n]
            self.turn += 1
            oldest = slot.oldest()
            if not slot.ready or slot.channel is None or (oldest is not None and now - oldest > SUSPECT_S):
                continue
            seq = next(self.seq)
            try:
                socket.send_fds(slot.channel, [HEAD.pack(b"c", seq)], [conn.fileno()])
            except OSError:  # full (BlockingIOError) or closed: the next worker
                continue
            slot.pending[seq] = (now, conn)
            return True
        return False

    def dispatch(self, now: float) -> None:
        while self.backlog and self.hand(self.backlog[0][0], now):
            self.backlog.popleft()
        starting = any(s.process is not None and not s.ready for s in self.slots)
        wait = STARTUP_TIMEOUT_S if starting else self.timeout
        while self.backlog and now - self.backlog[0][1] > wait:
            self.refuse(self.backlog.popleft()[0], f"no server process took the connection within {wait:g} s")

    @staticmethod
    def refuse(conn: socket.socket, why: str) -> None:
        """Answer 503 and close (the request is read first, so closing does not reset the connection
        before the client reads the answer)."""
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                conn.recv(65536)
            conn.send(http_error(503, "Service Unavailable", f"{why}; try again shortly", "retry-after: 1\r\n"))
            conn.shutdown(socket.SHUT_WR)
        conn.close()

    # ---- the loop ----------------------------------------------------------------------------------

    def run(self) -> None:
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        now = time.monotonic()
        for slot in self.slots:
            self.start(slot, now)
        while not self.stop.is_set() and self.failed is None:
            events = self.selector.select(TICK_S)
            now = time.monotonic()
            for key, _ in events:
                if key.data is None:
                    self.accept(now)
                else:
                    self.acknowledged(key.data)
            self.check(now)
            self.dispatch(now)
            if self.accept_paused_until is not None and now >= self.accept_paused_until:
                self.accept_paused_until = None
                self.selector.register(self.listener, selectors.EVENT_READ, None)

    def close(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after STOP_TIMEOUT_S) and drop what is held."""
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.listener)
        for conn, _ in self.backlog:
            conn.close()
        processes = [s.process for s in self.slots if s.process is not None]
        for process in processes:
            if process.exitcode is None:
                process.terminate()
                with contextlib.suppress(OSError):
                    os.kill(process.pid, signal.SIGCONT)  # a stopped worker handles SIGTERM only once continued
        for process in processes:
            process.join(STOP_TIMEOUT_S)
            if process.exitcode is None:
                process.kill()
                process.join()
        for slot in self.slots:
            for _, conn in slot.pending.values():
                if conn is not None:
                    conn.close()
            if slot.channel is not None:
                slot.channel.close()
        self.selector.close()
        logger.info(f"Stopped {len(processes)} worker processes")


def supervise(config: Any, listener: socket.socket, workers: int, env: dict[str, str], worker_timeout: float = 5.0,
              missing: Callable[[], str | None] | None = None, guard: tuple[float, int] | None = None) -> None:
    """Run ``workers`` workers on the connections accepted on ``listener`` until SIGINT or SIGTERM.

    ``config``: a uvicorn.Config of an import string; ``env``: set in each worker before its app is
    built; ``worker_timeout``: seconds a worker may leave a message unacknowledged before it is
    replaced; ``missing``: what a new worker would lack (a file removed from under the server), or
    None; ``guard``: (header timeout, connection cap) of every worker (``recs.serve.guard``)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    supervisor = _Supervisor(config, listener, workers, env, worker_timeout, missing, guard, stop)
    try:
        supervisor.run()
    finally:
        supervisor.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if supervisor.failed is not None:
        raise OutputError(supervisor.failed)
