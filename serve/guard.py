"""Slow and idle clients of ``recs serve``: read timeouts and a cap on open connections per worker.

uvicorn closes a keep-alive connection that stays idle after an answer (``timeout_keep_alive``), but
not one that never sends a request, nor one that stops half-way through its headers: 1,000 such
connections stayed open for minutes and, at 256 file descriptors, made every new request fail
(issue 21, item 6). ``guarded`` wraps uvicorn's HTTP protocol class (h11 or httptools, whichever
uvicorn picked) with two rules:

* **header timeout**: a connection must deliver a request's headers within ``header_timeout`` seconds
  of opening, or of its previous answer. Past it, one with part of a request gets a 408 and is closed,
  an idle one is closed. While a request is being answered the timer does nothing: the body has its
  own timeout, in the app (``recs.serve.app``: a 408 after ``body_timeout``).
* **connection cap**: a worker holding ``max_connections`` open connections answers the next one at
  once with a 503 JSON error (``Retry-After: 1``) and closes it, instead of taking one more file
  descriptor a request may need. The cap is lowered to fit the process's file-descriptor limit.

The rest (parsing, keep-alive, flow control) is uvicorn's own protocol, unchanged.
"""

from __future__ import annotations

import asyncio
import json
import resource
from typing import Any

FD_RESERVE = 64  # descriptors kept for the index's files, the channel, logs and the event loop
LINGER_S = 1.0  # a refused connection is closed this long after its answer, so the client reads it


def connection_cap(max_connections: int) -> int:
    """``max_connections``, lowered so the worker's open connections never exhaust its descriptors."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft - FD_RESERVE))


def http_error(status: int, reason: str, message: str, extra: str = "") -> bytes:
    """A whole HTTP/1.1 answer ``{"error": message}`` that closes the connection."""
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n{extra}\r\n").encode() + body


def guarded(base: type, header_timeout: float, max_connections: int) -> type:
    """uvicorn's protocol class ``base`` with the header timeout and the connection cap (module doc)."""
    cap = connection_cap(max_connections)
    refusal = http_error(503, "Service Unavailable", f"this server process holds {cap:,} open connections, its "
                         "limit (--max-connections); try again shortly", "retry-after: 1\r\n")
    too_slow = http_error(408, "Request Timeout", f"the request's headers did not arrive within {header_timeout:g} s "
                          "(--header-timeout)")

    class Guarded(base):
        _timer: asyncio.TimerHandle | None = None
        _refused = False
        _partial = False  # bytes of a request arrived since the connection opened or its last answer

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(self.connections) > cap:  # this connection is one of them
                self._refused = True
                transport.write(refusal)
                if transport.can_write_eof():
                    transport.write_eof()
                # closed a little later: closing with the client's request unread would reset the
                # connection and could discard the answer before the client reads it
                self.loop.call_later(LINGER_S, transport.close)
                return
            self._arm()

        def _arm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_later(header_timeout, self._expired)

        def _expired(self) -> None:
            self._timer = None
            cycle = getattr(self, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                return  # a request is being answered (its body has the app's timeout); re-armed after it
            if self.transport.is_closing():
                return
            if self._partial:
                self.transport.write(too_slow)
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # discarded: the 503 is already written
            self._partial = True
            super().data_received(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._partial = False
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            super().connection_lost(exc)

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


def guard_config(config: Any, header_timeout: float, max_connections: int) -> None:
    """Load the uvicorn ``config`` (if not yet) and put the guarded protocol in place of its own."""
    if not config.loaded:
        config.load()
    config.http_protocol_class = guarded(config.http_protocol_class, header_timeout, max_connections)
