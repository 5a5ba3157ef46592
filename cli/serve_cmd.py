"""``recs serve``: the HTTP JSON API over one index (recs.serve), for as long as it runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from recs.config import ServeConfig

DEFAULTS = ServeConfig()


@click.command("serve")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), required=True,
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
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One log line per request on stdout (uvicorn's access log).")
def serve_cmd(index_dir: Path, host: str, port: int, max_events: int, max_k: int, workers: int,
              access_log: bool) -> None:
    """Answer recommendations over HTTP: POST /recommend, GET /items/ID/candidates, GET /health.

    The index is loaded once and served until Ctrl-C, by --workers processes. Needs the [serve] extra
    (pip install 'recs[serve]'). Bad requests get a 4xx and {"error": "..."} naming the field.

    \b
    Example:
      recs serve --index runs/index --port 8000
      curl -s localhost:8000/recommend -d '{"history": [[42, "click", 1]], "module": "click", "k": 10}'
    """
    from recs.serve.server import bind, prepared, serve, url

    cfg = ServeConfig(host=host, port=port, max_events=max_events, max_k=max_k, workers=workers)
    with prepared(index_dir, cfg) as (target, info):
        sock = bind(cfg)
        click.echo(f"serving {info['index']} ({info['items']:,} items; {', '.join(info['sets'])}; loaded in "
                   f"{info['load_s']:.1f} s) on {url(sock)}; {cfg.workers} worker(s); Ctrl-C stops")
        sys.stdout.flush()
        serve(target, sock, access_log, cfg.workers)


COMMANDS = [serve_cmd]
