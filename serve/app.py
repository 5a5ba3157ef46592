"""The ``recs serve`` HTTP JSON API: a pure ASGI app (Starlette) over one loaded ``Recommender``.

``create_app(recommender, limits)`` holds no global state: everything a route reads is in the
closure of the app it returns, so a test builds one per index with ``starlette.testclient``. The
store is read-only (its arrays are frozen here): routes only look lists up, so requests share it
without locks.

Routes
  ``POST /recommend``                    a history and a module -> one merged list (recs.serve.validate),
                                         as columns (the default) or rows (recs.serve.render)
  ``GET  /items/{item_id}/candidates``   one item's list in one candidate set (``?set=...&k=200``); the
                                         answer's item_id has the index's id type, known item or not
                                         (an integer index refuses a text id with 422)
  ``GET  /health``                       the index served (path, method, sets, items, format), uptime and
                                         the worker's pid
  ``GET  /openapi.json``, ``GET /metrics`` this API as OpenAPI 3.1 (recs.serve.openapi); Prometheus metrics of
                                         every worker (recs.serve.metrics)
  ``GET  /``, ``/items/active``, ``/items/facts``  the explorer page and the two routes it adds (recs.serve.explorer)

Every refusal is JSON ``{"error": message}`` with a 4xx status: 400 body not JSON, 404 unknown set
or route, 405 wrong method, 408 body not sent within ``body_timeout``, 413 body too large, 422 a
field wrong (the message names it: an id longer than 1,024 characters or with a control character,
a time outside what UTC holds, ...) or a library ``RecsError`` (a module whose candidate set the
index lacks). A 500 would be a bug. A server process with too many open connections answers 503
before the app sees the request (recs.serve.guard).

The routes are ``async`` and run the lookup inline, on the event loop: it is ~1 ms of numpy under
the GIL, so a worker thread (Starlette's default for sync routes) would only add a hand-off per
request without running two lookups at once (BENCHMARKS.md, "Serving").
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from recs._version import __version__
from recs.columns import Col
from recs.config import ServeConfig
from recs.errors import RecsError
from recs.recommend.recommender import Recommender
from recs.serve import explorer, metrics, openapi
from recs.serve.guard import connection_cap
from recs.serve.metrics import MODULE_KEY
from recs.serve.render import candidate_rows, dumps, recommendations_body
from recs.serve.validate import (
    MAX_ID_CHARS,
    BadRequest,
    candidates_query,
    check_id_text,
    known_interactions,
    max_body_bytes,
    parse_json,
    recommend_request,
)

MAX_NOTE_ITEMS = 5


class JSON(Response):
    media_type = "application/json"


def error(status: int, message: str) -> JSON:
    return JSON(dumps({"error": message}), status_code=status)


def freeze(recommender: Recommender) -> None:
    """Make the store's arrays read-only: a bug that writes into them fails, not a later answer."""
    store = recommender.store
    for cs in store.sets.values():
        for a in (cs.offsets, cs.cands, cs.scores):
            a.setflags(write=False)
    store.ids.setflags(write=False)


def create_app(recommender: Recommender, limits: ServeConfig | None = None,
               workers: Callable[[], dict[str, Any]] | None = None) -> Starlette:
    """The API over ``recommender`` (loaded once by the caller; never written to). ``workers``: what
    /health adds about the server's other processes (``recs.serve.workers.health``: a worker that
    cannot be restarted makes the status "degraded" and says what is missing)."""
    limits = limits or ServeConfig()
    limits.validate()
    freeze(recommender)
    store = recommender.store
    known = known_interactions([(cs.source, cs.target) for cs in store.sets.values()])
    body_limit = max_body_bytes(limits)
    started = time.monotonic()

    async def read_body(request: Request) -> bytes:
        """The body, refused (413) as soon as it passes the limit, declared or streamed."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > body_limit:
            raise BadRequest(413, f"body of {int(declared):,} bytes; at most {body_limit:,} "
                             f"({limits.max_events:,} events)")
        chunks: list[bytes] = []
        size = 0

        async def receive() -> None:
            nonlocal size
            async for chunk in request.stream():
                size += len(chunk)
                if size > body_limit:
                    raise BadRequest(413, f"body over {body_limit:,} bytes ({limits.max_events:,} events)")
                chunks.append(chunk)

        try:
            # a client that sends half a body and waits would hold the connection (and its worker's
            # descriptor) for ever: the whole body has body_timeout seconds (recs.serve.guard). wait_for, not
            # asyncio.timeout: the package supports Python 3.10, which lacks the latter
            await asyncio.wait_for(receive(), limits.body_timeout)
        except ClientDisconnect:
            raise BadRequest(400, "the client closed the connection before the body ended") from None
        except (TimeoutError, asyncio.TimeoutError):
            raise BadRequest(408, f"the body did not arrive within {limits.body_timeout:g} s (--body-timeout); "
                             f"{size:,} bytes came") from None
        return b"".join(chunks)

    async def recommend(request: Request) -> Response:
        req = recommend_request(parse_json(await read_body(request)), known, limits)
        setattr(request.state, MODULE_KEY, req.module)  # /metrics' module label (recs.serve.metrics)
        note = _unknown_note(store, req.events)
        recs = recommender.recommend(req.events, at=req.at, module=req.module, k=req.k, merge=req.merge,
                                     drop_bought=req.drop_bought)
        k = req.k if req.k is not None else recommender.config.k
        if not len(recs) and note is None:
            note = (f"no list: no event of this history triggers module {req.module!r} with a list in this index"
                    if req.events else "the history is empty")
        return JSON(recommendations_body(req.format, req.module, k, recs, note))

    async def candidates(request: Request) -> Response:
        name, k = candidates_query(dict(request.query_params), recommender.set_names, limits)
        raw = check_id_text(Col.ITEM, request.path_params["item_id"])  # the body's rule for a text id
        code = int(store.codes([raw])[0])
        # the id answered in the index's one type, known or not ("42" asked of an integer index: 42)
        item = store.ids[code].item() if code >= 0 else store.typed_id(raw)
        if item is None:
            raise BadRequest(422, f"item_id: {raw!r} cannot be an item of this index: its ids are integers "
                                  "(0, or digits without a leading zero and an optional minus sign, in 64 bits)")
        frame = recommender.candidates(raw, name, k)
        out: dict[str, Any] = {Col.ITEM: item, "set": name, "k": k, "items": candidate_rows(frame)}
        if code < 0:
            out["note"] = f"item {raw!r} is in no candidate set of this index"
        elif not len(frame):
            out["note"] = f"item {raw!r} has no list in {name}"
        return JSON(dumps(out))

    async def health(request: Request) -> Response:
        manifest = store.manifest
        sets = {name: {"source": cs.source, "target": cs.target, "items_with_lists": int(np.count_nonzero(
                    np.diff(cs.offsets))), "rows": len(cs.cands)} for name, cs in store.sets.items()}
        extra = {} if workers is None else dict(workers())
        return JSON(dumps({
            "status": extra.pop("status", "ok"), "recs_version": __version__, "pid": os.getpid(),
            "index": str(store.index_dir),
            "format_version": manifest.get("format_version"), "method": manifest.get("method", {}).get("name"),
            "items": len(store.ids), "sets": sets, "uptime_s": round(time.monotonic() - started, 3),
            "limits": {"max_events": limits.max_events, "max_k": limits.max_k, "max_body_bytes": body_limit,
                       "max_id_chars": MAX_ID_CHARS, "header_timeout_s": limits.header_timeout,
                       "body_timeout_s": limits.body_timeout, "worker_timeout_s": limits.worker_timeout,
                       # per process, as recs.serve.guard applies it (lowered to the descriptor limit)
                       "max_connections": connection_cap(limits.max_connections)},
            **extra,
        }))

    async def refused(request: Request, exc: Exception) -> Response:
        if isinstance(exc, BadRequest):
            response = error(exc.status, str(exc))
            if exc.status == 408:  # the rest of that body may still come: it is no next request
                response.headers["connection"] = "close"
            return response
        if isinstance(exc, HTTPException):
            return error(exc.status_code, str(exc.detail))
        return error(422, str(exc))  # any other RecsError: the library's message names the problem

    routes = [
        Route("/recommend", recommend, methods=["POST"]),
        # :path, so that a text id with a slash (sent as %2F, decoded before routing) still routes
        Route("/items/{item_id:path}/candidates", candidates, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    # the explorer page and its two JSON routes, this API's OpenAPI document, and /metrics (counting every route)
    routes += [*explorer.routes(recommender, limits), openapi.route(limits, list(recommender.set_names))]
    app = Starlette(routes=routes, exception_handlers={RecsError: refused, HTTPException: refused})
    metrics.install(app, store)
    return app


def _unknown_note(store: Any, events: list[tuple[Any, str, Any]]) -> str | None:
    """A note naming the history's items the index does not know (not an error: the answer is what
    the other events give). Trigger ids come back as the index holds them (``"42"`` asked, 42 in an
    integer index): ``Recommender.recommend`` reads them from the store."""
    if not events:
        return None
    if not len(store.ids):
        return "the index has no items"
    codes = store.codes([e[0] for e in events])
    if (codes >= 0).all():
        return None
    unknown = list(dict.fromkeys(e[0] for e, c in zip(events, codes.tolist(), strict=True) if c < 0))
    shown = ", ".join(map(repr, unknown[:MAX_NOTE_ITEMS])) + (" ..." if len(unknown) > MAX_NOTE_ITEMS else "")
    return f"{len(unknown):,} item(s) of the history are in no candidate set of this index: {shown}"
