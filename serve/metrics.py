"""``GET /metrics`` of ``recs serve``: Prometheus' text format, written by the official client library.

What an operator graphs and alerts on, per route template (``/items/{item_id}/candidates``, never the
path asked, so ids do not make a series each) and, for ``POST /recommend``, per module:

* ``recs_http_requests_total{route, method, module, status}``: every answer, by status;
* ``recs_http_request_duration_seconds{route, module}``: a histogram of the time from the request's
  arrival in the app to the last byte of its answer (buckets from 0.5 ms: a request is ~1 ms);
* ``recs_http_errors_total{route, status}``: the 4xx and 5xx answers alone (a 404 of an unknown path
  has ``route="unmatched"``);
* the index served: ``recs_index_items``, ``recs_index_candidate_rows{set}``, ``recs_index_bytes``
  (its files on disk, from the manifest), ``recs_index_created_timestamp_seconds`` and
  ``recs_index_age_seconds`` (the age at the scrape: alert on a stale index without PromQL
  arithmetic), and ``recs_info{version, method, index}``.

**Several workers are one service.** ``recs serve --workers N`` runs N processes and the supervisor
hands each connection to one of them (recs.serve.workers), so a scrape lands on any worker. With
``PROMETHEUS_MULTIPROC_DIR`` set (the server sets it in each worker to a directory inside its own
temporary directory, recs.serve.server) every worker writes its values to files there and ``/metrics``
sums them all (prometheus_client's multiprocess mode): every worker answers the service's totals. A
worker that dies keeps its counts in the sum (a counter of the service never goes back), and its
replacement adds its own. The index gauges are the same in every worker and are merged by ``max``
(the age is set at each scrape, so the largest is the freshest). One worker (``--workers 1``, or a
test's in-process app) keeps its values in memory, in a registry of its own app.

prometheus_client picks the multiprocess mode when it is first imported, so this module imports it
only inside ``Metrics`` (a worker sets the variable before it builds its app).
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from recs._version import __version__

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OFF_ENV = "RECS_SERVE_METRICS"  # 0/off: no counting at all (the serving benchmark's A/B of its cost)
# a lookup is ~1 ms of CPU, a large history a few ms; past a second something is wrong
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # the route label of a path no route matches (a 404)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MODULE_KEY = "recs_module"  # where POST /recommend leaves its module in the request's scope state


def multiprocess_env(server_dir: Path) -> dict[str, str]:
    """The environment of each worker of ``recs serve --workers N``: ``PROMETHEUS_MULTIPROC_DIR`` in the
    server's own temporary directory (made here; removed with it when the server stops, so a restart
    counts from zero and no stale worker's file is ever summed)."""
    directory = server_dir / "metrics"
    directory.mkdir(mode=0o700, exist_ok=True)
    return {MULTIPROC_ENV: str(directory)}


def index_facts(store: Any) -> dict[str, Any]:
    """What the gauges say about the index: items, rows per set, bytes on disk, creation time (unix s)."""
    manifest = store.manifest
    created = None
    text = manifest.get("created_utc")
    if isinstance(text, str):
        try:
            created = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            created = None
    files = manifest.get("files") or {}
    size = sum(int(f.get("bytes", 0)) for f in files.values() if isinstance(f, dict))
    return {"items": len(store.ids), "rows": {name: len(cs.cands) for name, cs in store.sets.items()},
            "bytes": size, "created": created, "method": (manifest.get("method") or {}).get("name") or "",
            "index": str(store.index_dir)}


class Metrics:
    """The metrics of one app, and the ASGI middleware that counts and times its requests."""

    def __init__(self, store: Any, routes: list[Any] | None = None):
        """``routes``: the app's, to name the route of a request when Starlette does not (before 1.0)."""
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # multiprocess: values live in files (one per process), the registry only serves a scrape
        self.registry = None if self.multiprocess else CollectorRegistry(auto_describe=True)
        reg: dict[str, Any] = {"registry": self.registry}
        gauge: dict[str, Any] = {**reg, "multiprocess_mode": "max"}
        self.requests = Counter("recs_http_requests", "HTTP requests answered, by route template, method, "
                                "POST /recommend's module and status", ["route", "method", "module", "status"], **reg)
        self.latency = Histogram("recs_http_request_duration_seconds", "Time from a request's arrival in the app "
                                 "to the end of its answer", ["route", "module"], buckets=BUCKETS, **reg)
        self.errors = Counter("recs_http_errors", "4xx and 5xx answers, by route template and status",
                              ["route", "status"], **reg)
        facts = index_facts(store)
        Gauge("recs_index_items", "Items the index knows (as a trigger or a candidate)", **gauge).set(facts["items"])
        rows = Gauge("recs_index_candidate_rows", "Rows of each candidate set served", ["set"], **gauge)
        for name, n in facts["rows"].items():
            rows.labels(name).set(n)
        Gauge("recs_index_bytes", "Bytes of the index's files on disk (its manifest's list)", **gauge).set(
            facts["bytes"])
        Gauge("recs_info", "The recs version and the index served (always 1)", ["version", "method", "index"],
              **gauge).labels(__version__, facts["method"], facts["index"]).set(1)
        self.created = facts["created"]
        self.age = None
        if self.created is not None:
            Gauge("recs_index_created_timestamp_seconds", "When the index was built (unix seconds, its manifest's "
                  "created_utc)", **gauge).set(self.created)
            self.age = Gauge("recs_index_age_seconds", "Seconds since the index was built, at this scrape", **gauge)
        self.routes = list(routes or ())
        self._children: dict[tuple[str, str, str, int], tuple[Any, Any, Any | None]] = {}

    def observe(self, route: str, method: str, module: str, status: int, seconds: float) -> None:
        """Count one answer (its children are cached: ``labels()`` takes a lock and builds a key each call)."""
        key = (route, method, module, status)
        children = self._children.get(key)
        if children is None:
            error = self.errors.labels(route, str(status)) if status >= 400 else None
            children = (self.requests.labels(route, method, module, str(status)),
                        self.latency.labels(route, module), error)
            self._children[key] = children
        count, latency, error = children
        count.inc()
        latency.observe(seconds)
        if error is not None:
            error.inc()

    def render(self) -> bytes:
        """The text exposition: this process's registry, or every worker's files summed."""
        from prometheus_client import CollectorRegistry, generate_latest

        if self.age is not None and self.created is not None:
            self.age.set(max(0.0, time.time() - self.created))
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def middleware(self, app: Any) -> Any:
        """``app`` wrapped so that every HTTP answer is counted and timed (pure ASGI: no body is copied).
        Given to ``Starlette.add_middleware``: inside Starlette's error middleware, so an exception that
        escapes a route is counted as the 500 the client gets."""
        metrics = self

        async def measured(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = 500  # an error that escapes before an answer starts (Starlette then answers 500)

            async def sending(message: dict[str, Any]) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, sending)
            finally:
                route = scope.get("route")
                path = _template(getattr(route, "path", None) or _route_of(metrics.routes, scope))
                state = scope.get("state") or {}
                metrics.observe(path, scope.get("method", ""), str(state.get(MODULE_KEY, "")), status,
                                time.perf_counter() - start)

        return measured


@functools.lru_cache(maxsize=64)
def _template(path: str) -> str:
    """A route's path as the API documents it: ``/items/{item_id:path}/candidates`` -> ``{item_id}``."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def _route_of(routes: list[Any], scope: dict[str, Any]) -> str:
    """The route template of ``scope`` (Starlette before 1.0 does not leave the route in the scope)."""
    from starlette.routing import Match

    for route in routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            return getattr(route, "path", UNMATCHED)
    return UNMATCHED


def install(app: Any, store: Any) -> Metrics | None:
    """Add ``GET /metrics`` to ``app`` and count its requests; None (and /metrics a 503 naming the fix)
    where prometheus_client, in the [serve] extra, is not installed: the API itself does not need it.
    ``RECS_SERVE_METRICS=off`` in the environment counts nothing (the benchmark measures the cost so)."""
    from starlette.responses import Response
    from starlette.routing import Route

    off = os.environ.get(OFF_ENV, "").strip().lower() in ("0", "off", "false", "no")
    try:
        metrics: Metrics | None = None if off else Metrics(store, app.routes)
    except ImportError:
        metrics = None

    async def scrape(request: Any) -> Response:
        if metrics is None:
            why = (f"metrics are off ({OFF_ENV}={os.environ.get(OFF_ENV)})" if off else
                   "GET /metrics needs prometheus_client (the [serve] extra): pip install 'recs[serve]'")
            return Response(json.dumps({"error": why}).encode(), status_code=503, media_type="application/json")
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.router.routes.append(Route("/metrics", scrape, methods=["GET"]))
    if metrics is not None:
        metrics.routes = list(app.routes)
        app.add_middleware(metrics.middleware)
    return metrics
