"""``recs serve``: the HTTP JSON API over one index (recs.serve), for as long as it runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from recs.cli.options import local_index
from recs.config import ServeConfig

DEFAULTS = ServeConfig()


@click.command("serve")
@click.option("--index", "index_dir", type=click.Path(path_type=str), callback=local_index, required=True,
              help="Index directory written by build-index (any --method); loaded once, read-only.")
@click.option("--host", default=DEFAULTS.host, show_default=True,
              help="Address to listen on (loopback by default; 0.0.0.0 opens it to the network).")
@click.option("--port", type=int, default=DEFAULTS.port, show_default=True,
              help="TCP port; 0 lets the OS pick a free one (printed at start).")
@click.option("--max-events", type=int, default=DEFAULTS.max_events, show_default=True,
              help="Most events a history of POST /recommend may have (more: 422).")
@click.option("--max-k", type=int, default=DEFAULTS.max_k, show_default=True,
              help="Longest list a request may ask for with k (more: 422).")
@click.option("--workers", type=int, default=DEFAULTS.workers, show_default="one per core",
              help="Server processes on the one port, sharing one copy of the index (1: this process serves).")
@click.option("--header-timeout", type=float, default=DEFAULTS.header_timeout, show_default=True,
              help="Seconds a connection has to send a request's headers (after it opens or after an answer); "
                   "then it is closed (408 if it had sent part of one).")
@click.option("--body-timeout", type=float, default=DEFAULTS.body_timeout, show_default=True,
              help="Seconds a request has to send its whole body after its headers (more: 408).")
@click.option("--max-connections", type=int, default=DEFAULTS.max_connections, show_default=True,
              help="Open connections per server process; more are answered 503 at once.")
@click.option("--worker-timeout", type=float, default=DEFAULTS.worker_timeout, show_default=True,
              help="Seconds a worker may leave a handed connection or a ping unanswered before it is killed "
                   "and replaced (--workers 2 or more).")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One log line per request on stdout (uvicorn's access log).")
def serve_cmd(index_dir: Path, host: str, port: int, max_events: int, max_k: int, workers: int,
              header_timeout: float, body_timeout: float, max_connections: int, worker_timeout: float,
              access_log: bool) -> None:
    """Answer recommendations over HTTP: POST /recommend, GET /items/ID/candidates, GET /health.

    The index is loaded once and served until Ctrl-C, by --workers processes. Needs the [serve] extra
    (pip install 'recs[serve]'). Bad requests get a 4xx and {"error": "..."} naming the field. Slow
    clients, a full server and a hung worker: docs/serving.md, "Limits and failure handling".

    \b
    Example:
      recs serve --index runs/index --port 8000
      curl -s localhost:8000/recommend -d '{"history": [[42, "click", 1]], "module": "click", "k": 10}'
    """
    from recs.serve.server import bind, prepared, serve, url

    cfg = ServeConfig(host=host, port=port, max_events=max_events, max_k=max_k, workers=workers,
                      header_timeout=header_timeout, body_timeout=body_timeout, max_connections=max_connections,
                      worker_timeout=worker_timeout)
    with prepared(index_dir, cfg) as (target, info):
        sock = bind(cfg)
        for path in info.get("swept", []):
            click.echo(f"removed {path} (the index copy of a recs serve that was killed)", err=True)

        def announce() -> None:  # inside serve: a Ctrl-C from here on is a quiet stop
            click.echo(f"serving {info['index']} ({info['items']:,} items; {', '.join(info['sets'])}; loaded in "
                       f"{info['load_s']:.1f} s) on {url(sock)}; {cfg.workers} worker(s); Ctrl-C stops")
            sys.stdout.flush()

        serve(target, sock, access_log, cfg.workers, cfg, announce)


COMMANDS = [serve_cmd]
