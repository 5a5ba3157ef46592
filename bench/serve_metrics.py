"""``recs serve`` under load with ``/metrics`` on, against the same server with it off (BENCHMARKS.md,
"Serving", "With /metrics on"; issue 20: p99 at 16 clients must stay under 20 ms on 2 cores).

    .venv/bin/python bench/serve_metrics.py --rounds 3           # the committed JSON (~4 min; the index of serve_load)
    .venv/bin/python bench/serve_metrics.py --requests 300 --rounds 1 --out /tmp/x.json   # smoke

The index, histories, load generator and checks are bench/serve_load.py's (the 1M-event planted
index in ``--cache``, built there once; the 200 test users whose ``recent`` list fills 800; bare
asyncio keep-alive clients on loopback; every answer checked for status and rows). Its main levels
(``recent-800`` at 1 and 16 clients, ``both`` at 16, 2 workers, columnar answers) run on two servers
in a row each round, counting off (``RECS_SERVE_METRICS=off``) then on, so both see the same machine
within a minute. First, in process, the app's CPU per request (the ASGI app called directly, CPU time
of the process, so other jobs on the machine matter less) in subprocesses alternating off and on.
Over HTTP, with counting on, a thread scrapes ``/metrics`` every ``--scrape-s`` seconds during
each measured level (Prometheus is usually set to scrape every 15 to 60 s; once a second is harsher), and after
the level the service's ``recs_http_requests_total`` for ``POST /recommend``, summed over the workers
by whichever worker answers, must have gone up by exactly the requests sent (warm-up included).
Loopback only; each server is stopped (SIGINT) after its levels.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import machine  # noqa: E402
from serve_load import LOADERS, ROOT, K, build, cpu_s, histories, percentiles, server_tree, start_server  # noqa: E402

CASES = {"recent-800": "recent", "both": "both"}


def recommends_counted(url: str) -> float:
    """POST /recommend answers the service has counted (every status and module, all its workers)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url + "/metrics", timeout=10).raise_for_status().text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "recs_http_requests_total" and s.labels.get("route") == "/recommend")


class Scraper:
    """Scrapes /metrics every ``every`` seconds from a thread while the load runs; ``ms`` its latencies."""

    def __init__(self, url: str, every: float):
        self.url, self.every, self.ms = url, every, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        import httpx

        while not self.stop.wait(self.every):
            t0 = time.perf_counter()
            httpx.get(self.url + "/metrics", timeout=10).raise_for_status()
            self.ms.append(1e3 * (time.perf_counter() - t0))

    def __enter__(self) -> Scraper:
        if self.every > 0:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.every > 0:
            self.thread.join(15)


def level(proc: Any, url: str, bodies: list[bytes], expect: list[int], clients: int, metrics: bool,
          a: argparse.Namespace) -> dict[str, Any]:
    """A warm-up, then the measured load (scraped when ``metrics``), with both sides' CPU per request."""
    import psutil

    load = LOADERS["raw"]
    before = recommends_counted(url) if metrics else 0.0
    warm = asyncio.run(load(url, bodies, expect, clients, a.warmup, a.time_limit, "columns"))
    server, me = server_tree(proc), [psutil.Process()]
    load_1m = os.getloadavg()[0]
    s0, c0 = cpu_s(server), cpu_s(me)
    with Scraper(url, a.scrape_s if metrics else 0) as scraper:
        res = asyncio.run(load(url, bodies, expect, clients, a.requests, a.time_limit, "columns"))
    s1, c1 = cpu_s(server), cpu_s(me)
    if res["errors"] or warm["errors"]:
        raise SystemExit(f"bad answers, first: {(res['errors'] or warm['errors'])[0]}")
    n = len(res["latencies"])
    out: dict[str, Any] = {
        "clients": clients, "requests": n, "stopped_by_time_limit": n < a.requests, **percentiles(res["latencies"]),
        "requests_per_s": n / res["wall_s"], "server_cpu_ms_per_request": 1e3 * (s1 - s0) / n,
        "client_cpu_ms_per_request": 1e3 * (c1 - c0) / n, "load_avg_1m_at_start": load_1m}
    if metrics:
        sent = n + len(warm["latencies"])
        counted = recommends_counted(url) - before
        if counted != sent:
            raise SystemExit(f"/metrics counted {counted:.0f} POST /recommend; the load sent {sent}")
        out |= {"counted_by_metrics": counted, "sent": sent, "scrapes": len(scraper.ms),
                "scrape_p50_ms": float(np.median(scraper.ms)) if scraper.ms else None,
                "scrape_max_ms": max(scraper.ms) if scraper.ms else None}
    return out


def in_process_child(cache: Path, histories_n: int, rounds: int) -> None:
    """Print the ASGI app's CPU per POST /recommend (recent-800), called directly (no socket, no uvicorn):
    run in a subprocess whose environment already says metrics on or off (prometheus_client reads it
    when first imported). With metrics on, multiprocess files as under --workers N: the costlier mode."""
    from recs.recommend.recommender import Recommender
    from recs.serve.app import create_app

    recommender = Recommender.open(cache / "index")
    hists = histories(recommender, cache / "test.parquet", histories_n)
    app = create_app(recommender)
    bodies = [json.dumps({"history": h, "module": "recent", "k": K}).encode() for h in hists]

    async def call(body: bytes) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/recommend", "raw_path": b"/recommend", "root_path": "",
                 "query_string": b"", "headers": [(b"content-type", b"application/json"),
                                                  (b"content-length", str(len(body)).encode())],
                 "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 1), "state": {}}
        sent: list[dict[str, Any]] = []
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.sleep(3600)  # never: the route reads one message
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        assert sent[0]["status"] == 200, sent[0]

    async def run() -> list[float]:
        for body in bodies[:50]:
            await call(body)
        out = []
        for _ in range(rounds):
            t = time.process_time()
            for body in bodies:
                await call(body)
            out.append(1e3 * (time.process_time() - t) / len(bodies))
        return out

    print(json.dumps(asyncio.run(run())))


def in_process(cache: Path, histories_n: int, rounds: int, pairs: int) -> dict[str, Any]:
    """The app's CPU per request with counting off and on, ``pairs`` subprocesses of each, alternating."""
    import subprocess
    import tempfile

    ms: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(pairs):
        for mode in ("off", "on"):
            with tempfile.TemporaryDirectory() as multiproc:
                env = {**os.environ, "RECS_SERVE_METRICS": mode}
                if mode == "on":
                    env["PROMETHEUS_MULTIPROC_DIR"] = multiproc
                out = subprocess.run([sys.executable, __file__, "--in-process-child", "--cache", str(cache),
                                      "--histories", str(histories_n), "--child-rounds", str(rounds)],
                                     env=env, capture_output=True, text=True, check=True)
                ms[mode] += json.loads(out.stdout.strip().splitlines()[-1])
    med = {m: float(np.median(v)) for m, v in ms.items()}
    return {"ms_per_request": ms, "median_ms": med, "added_ms": med["on"] - med["off"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=ROOT / "runs" / "bench" / "serve_1m")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--histories", type=int, default=200)
    p.add_argument("--requests", type=int, default=3000, help="requests per level, after the warm-up")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per level, at most")
    p.add_argument("--clients", default="1,16")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--scrape-s", type=float, default=1.0, help="scrape /metrics this often during a level (0: never)")
    p.add_argument("--out", type=Path, default=HERE / "serve_load_metrics.json")
    p.add_argument("--pairs", type=int, default=3, help="in-process A/B: subprocesses of each (off, on, off, ...)")
    p.add_argument("--in-process-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child-rounds", type=int, default=5, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.in_process_child:
        in_process_child(a.cache, a.histories, a.child_rounds)
        return

    info = machine()
    index = build(a.cache, a.events, a.epochs)
    from recs.recommend.recommender import Recommender

    recommender = Recommender.open(index)
    hists = histories(recommender, a.cache / "test.parquet", a.histories)
    expect = {name: [len(recommender.recommend([tuple(e) for e in h], module=m, k=K)) for h in hists]
              for name, m in CASES.items()}
    del recommender
    print("in process: the app's CPU per request, metrics off and on", flush=True)
    local = in_process(a.cache, a.histories, a.child_rounds, a.pairs)
    bodies = {name: [json.dumps({"history": h, "module": m, "k": K}).encode() for h in hists]
              for name, m in CASES.items()}
    levels = [int(c) for c in a.clients.split(",")]
    steps = [*(("recent-800", c) for c in levels), ("both", max(levels))]
    runs: list[dict[str, Any]] = []
    for round_ in range(a.rounds):
        for metrics in (False, True):
            os.environ["RECS_SERVE_METRICS"] = "on" if metrics else "off"  # start_server passes os.environ on
            proc, url = start_server(index, False, a.workers, timeout=600)
            try:
                for name, clients in steps:
                    print(f"round {round_ + 1}/{a.rounds}: metrics {'on' if metrics else 'off'}, {name}, "
                          f"{clients} client(s)", flush=True)
                    runs.append({"case": name, "metrics": metrics, "round": round_,
                                 **level(proc, url, bodies[name], expect[name], clients, metrics, a)})
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
    info["load_avg_at_end"] = os.getloadavg()
    summary = []
    for name, clients in steps:
        for metrics in (False, True):
            rs = [r for r in runs if r["case"] == name and r["clients"] == clients and r["metrics"] == metrics]
            row = {"case": name, "clients": clients, "metrics": metrics, "workers": a.workers, "rounds": len(rs)}
            for key in ("p50_ms", "p99_ms", "requests_per_s", "server_cpu_ms_per_request", "load_avg_1m_at_start"):
                row[key] = float(np.median([r[key] for r in rs]))
            row["p99_ms_range"] = [min(r["p99_ms"] for r in rs), max(r["p99_ms"] for r in rs)]
            if metrics:
                row["scrapes"] = sum(r["scrapes"] for r in rs)
                row["scrape_max_ms"] = max((r["scrape_max_ms"] or 0) for r in rs)
            summary.append(row)
    result = {"machine": info, "args": {k: str(v) for k, v in vars(a).items()}, "index": str(index),
              "in_process": local, "summary": summary, "runs": runs}
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"in process (the app alone, recent-800): {local['median_ms']['off']:.3f} ms per request with metrics off, "
          f"{local['median_ms']['on']:.3f} on ({1e3 * local['added_ms']:+.0f} us)")
    for r in summary:
        print(f"{r['case']:>10} {r['clients']:>2} clients, metrics {'on ' if r['metrics'] else 'off'}: "
              f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms "
              f"({r['p99_ms_range'][0]:.1f}-{r['p99_ms_range'][1]:.1f})"
              f", {r['requests_per_s']:,.0f} req/s, server CPU {r['server_cpu_ms_per_request']:.2f} ms/req, "
              f"load {r['load_avg_1m_at_start']:.1f}")


if __name__ == "__main__":
    main()
