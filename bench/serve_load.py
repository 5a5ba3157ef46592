"""``recs serve`` under load on loopback, next to the same call in process (BENCHMARKS.md, "Serving").

    .venv/bin/python bench/serve_load.py --rounds 3             # the committed JSON (~6 min + the build)
    .venv/bin/python bench/serve_load.py --requests 200 --out /tmp/x.json   # smoke

The index is the 1M-event planted one, built once into ``--cache`` (reused when it is there):
``recs synth --events 1000000 --seed 0``, ``recs split``, ``recs train-embeddings --epochs 2`` (two
epochs to keep the build short; latency does not depend on the vectors' quality, only on the lists'
lengths, 200 per item) and ``recs build-index --pairs click:cart,cart:cart,cart:purchase,click:purchase``.

Histories are test-day users' own events (``test.parquet``), oldest first:

* ``recent-800``: module ``recent`` (last 100 distinct items -> Click-to-Cart), the users whose list
  fills k = 800. On this index no user reaches 800 with ``click`` or ``both``: four triggers' lists
  share half their candidates (the popular items are in nearly every list), so those lists are
  ~350-630 long; ``recent`` is the 800-row case and the heaviest (100 triggers, 20,000 rows merged).
* ``both``: module ``both`` for the same users (lists of ~500), in process and at 16 clients.

In process: ``Recommender.recommend`` per history (median of ``--repeats``), and the same plus the
JSON body the route sends (``recs.serve.render``) in either form (``columns``, the default, and
``rows``), so the HTTP cost is what is left. Over HTTP: ``recs serve --port 0 --workers W`` in a
subprocess, for each W of ``--workers`` (the first: every level; the others: the main ones), then
once more with the access log; a bounded load generator sends ``--requests`` requests per level
(after ``--warmup`` ones) from 1 and 16 concurrent keep-alive connections, round-robin over the
histories, and stops at ``--time-limit`` whatever is left; every answer is checked (200 and the
expected number of rows). Two generators: bare asyncio streams (``raw``, ~0.2 ms of CPU per
request) and ``httpx.AsyncClient`` (~2-3 ms: on two shared cores that CPU is taken from the server,
so the httpx rows measure the client as much as the service). The load generator runs in this
process, on the same 2 cores as the server: its CPU is recorded per request beside the server's
(the supervisor and all its workers, from /proc), with the 1-minute load average at each level's
start (other jobs on the machine show there) and the server's memory (PSS, summed over its
processes). Loopback only; the server is stopped (SIGINT) at the end.

``--idle N`` runs the main levels of the first ``--workers`` once more with N idle connections open
beside the load (half silent, half stopped in the middle of their headers; each reopened as soon as
the server closes it at its ``--header-timeout``): what slow clients cost the others (issue 21, item
6). ``--plan handoff`` runs only those main levels, without and with the idle connections (the
re-run after the hand-off change of issue 21, item 5):

    .venv/bin/python bench/serve_load.py --plan handoff --idle 200 --rounds 3 --out bench/serve_load_handoff.json

With ``--serve-args '--header-timeout 2'`` the server closes each idle connection every 2 s and the
benchmark opens it again: ~100 new connections a second handed out beside the load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from run import machine  # noqa: E402

RECS = str(Path(sys.executable).with_name("recs"))
PAIRS = "click:cart,cart:cart,cart:purchase,click:purchase"
K = 800


def build(cache: Path, events: int, epochs: int) -> Path:
    """The planted index in ``cache`` (built unless its manifest is there); returns the index dir."""
    index = cache / "index"
    if (index / "manifest.json").exists():
        return index
    cache.mkdir(parents=True, exist_ok=True)
    steps = [
        ["synth", "--events", str(events), "--seed", "0", "--out", cache / "synth.parquet"],
        ["split", cache / "synth.parquet", "--train", cache / "train.parquet", "--test", cache / "test.parquet"],
        ["train-embeddings", cache / "train.parquet", "--out", cache / "model", "--epochs", str(epochs), "--quiet"],
        ["build-index", "--model", cache / "model", "--out", index, "--pairs", PAIRS, "--quiet"],
    ]
    for step in steps:
        print("build:", "recs", *map(str, step), flush=True)
        subprocess.run([RECS, *map(str, step)], check=True, stdout=subprocess.DEVNULL)
    return index


def histories(recommender: Any, test_path: Path, limit: int) -> list[list[list[Any]]]:
    """Test users whose ``recent`` list fills k, as JSON-ready [item, interaction, unix s] triples."""
    import polars as pl

    from recs.columns import Col

    test = pl.read_parquet(test_path)
    lists = recommender.recommend_batch(test, module="recent", k=K).group_by(Col.USER).len()
    users = lists.filter(pl.col("len") == K)[Col.USER].sort().to_list()[:limit]
    ev = (test.filter(pl.col(Col.USER).is_in(users)).sort(Col.USER, Col.TIMESTAMP)
          .select(Col.USER, Col.ITEM, Col.INTERACTION, pl.col(Col.TIMESTAMP).dt.epoch("s")))
    return [g.select(Col.ITEM, Col.INTERACTION, Col.TIMESTAMP).rows() for _, g in ev.group_by(Col.USER,
                                                                                             maintain_order=True)]


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean())}


def in_process(recommender: Any, hists: list[list[Any]], module: str, repeats: int) -> dict[str, Any]:
    """Per history the median of ``repeats`` calls: recommend alone, and recommend + each JSON body."""
    from recs.serve.render import FORMATS, recommendations_body

    ms: dict[str, list[float]] = {"recommend": [], **{f"recommend_and_{f}": [] for f in FORMATS}}
    rows, size = [], {f: [] for f in FORMATS}
    for h in hists:
        events = [tuple(e) for e in h]
        per: dict[str, list[float]] = {key: [] for key in ms}
        for _ in range(repeats):
            t0 = time.perf_counter()
            recs = recommender.recommend(events, module=module, k=K)
            t1 = time.perf_counter()
            per["recommend"].append(t1 - t0)
            for f in FORMATS:
                t2 = time.perf_counter()
                recommendations_body(f, module, K, recs, None)
                per[f"recommend_and_{f}"].append(t1 - t0 + time.perf_counter() - t2)
        for key, values in per.items():
            ms[key].append(1e3 * float(np.median(values)))
        rows.append(len(recs))
        for f in FORMATS:
            size[f].append(len(recommendations_body(f, module, K, recs, None)))
    return {"module": module, "histories": len(hists), "rows_median": float(np.median(rows)),
            **{f"body_bytes_mean_{f}": float(np.mean(v)) for f, v in size.items()},
            **{key: percentiles(v) for key, v in ms.items()}}


def start_server(index: Path, access_log: bool, workers: int, timeout: float, extra: tuple[str, ...] = ()
                 ) -> tuple[subprocess.Popen, str]:
    """``recs serve`` on a free loopback port, once every worker answers (/health from each pid)."""
    cmd = [RECS, "serve", "--index", str(index), "--port", "0", "--workers", str(workers),
           "--access-log" if access_log else "--no-access-log", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()  # the index loads before the line is printed
    found = re.search(r" on (http://127\.0\.0\.1:\d+);", line)
    if not found:
        proc.kill()
        raise SystemExit(f"recs serve did not start: {line!r}")
    url = found[1]
    if access_log:  # drain the log so the pipe never blocks the server
        import threading

        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    import httpx

    deadline, pids = time.monotonic() + timeout, set()
    while len(pids) < workers:  # new connections until every worker has answered one
        with contextlib.suppress(httpx.TransportError):
            pids.add(httpx.get(url + "/health", timeout=5).raise_for_status().json()["pid"])
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit(f"recs serve did not answer /health from {workers} worker(s)")
        time.sleep(0.05)
    return proc, url


async def load_httpx(url: str, bodies: list[bytes], expect: list[int], clients: int, requests: int,
                     time_limit: float, fmt: str) -> dict[str, Any]:
    """``requests`` POSTs from ``clients`` concurrent keep-alive connections (httpx), stopped at ``time_limit``."""
    import httpx

    out: dict[str, Any] = {"latencies": [], "sizes": [], "errors": []}
    counter = iter(range(requests))
    deadline = time.monotonic() + time_limit
    headers = {"content-type": "application/json"}

    async def client(http: httpx.AsyncClient) -> None:
        for n in counter:
            if time.monotonic() > deadline:
                return
            i = n % len(bodies)
            t0 = time.perf_counter()
            r = await http.post(url + "/recommend", content=bodies[i], headers=headers)
            out["latencies"].append(1e3 * (time.perf_counter() - t0))
            check(r.status_code, r.content, expect[i], fmt, out)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        out["wall_s"] = time.perf_counter() - t0
    return out


async def load_raw(url: str, bodies: list[bytes], expect: list[int], clients: int, requests: int,
                   time_limit: float, fmt: str) -> dict[str, Any]:
    """The same load from bare asyncio streams: HTTP/1.1 keep-alive, one connection per client. It costs
    a tenth of httpx's CPU per request, which on two shared cores is CPU the server does not lose."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    out: dict[str, Any] = {"latencies": [], "sizes": [], "errors": []}
    counter = iter(range(requests))
    deadline = time.monotonic() + time_limit
    heads = [(f"POST /recommend HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(b)}\r\n\r\n").encode() + b for b in bodies]

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for n in counter:
                if time.monotonic() > deadline:
                    return
                i = n % len(bodies)
                t0 = time.perf_counter()
                writer.write(heads[i])
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
                body = await reader.readexactly(length)
                out["latencies"].append(1e3 * (time.perf_counter() - t0))
                check(int(head[9:12]), body, expect[i], fmt, out)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    out["wall_s"] = time.perf_counter() - t0
    return out


def check(status: int, body: bytes, rows: int, fmt: str, out: dict[str, Any]) -> None:
    """A 200 with the expected number of rows, counted in the bytes (parsing every answer would cost
    the client CPU the server then lacks): ``"rank":`` per row, or the values of the ``trigger`` column."""
    out["sizes"].append(len(body))
    if fmt == "rows":
        got = body.count(b'"rank":')
    else:
        start = body.find(b'"trigger":[') + len(b'"trigger":[')
        column = body[start:body.find(b"]", start)]
        got = column.count(b",") + 1 if column else 0
    if status != 200 or got != rows:
        out["errors"].append(f"{status} {body[:200]!r}")


LOADERS = {"raw": load_raw, "httpx": load_httpx}


class IdleConnections:
    """``n`` connections held open to the server beside the load, from a thread of their own: even
    ones send nothing, odd ones half a request's headers. One the server closes (its header timeout)
    is opened again at once, so ``n`` stay open; ``reopened`` counts those."""

    def __init__(self, url: str, n: int):
        self.host, port = url.removeprefix("http://").rsplit(":", 1)
        self.port, self.n = int(port), n
        self.open = self.reopened = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: Any = None

    async def _hold(self, i: int) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            self.open += 1
            try:
                if i % 2:
                    writer.write(b"GET /health HTTP/1.1\r\nHost: idle\r\n")
                await reader.read()  # until the server closes it
            except OSError:
                pass
            finally:
                self.open -= 1
                writer.close()
            self.reopened += 1

    def __enter__(self) -> IdleConnections:
        import threading

        ready = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            tasks = [self.loop.create_task(self._hold(i)) for i in range(self.n)]
            self.loop.call_soon(ready.set)
            with contextlib.suppress(asyncio.CancelledError):
                self.loop.run_until_complete(asyncio.gather(*tasks))
            self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait()
        deadline = time.monotonic() + 30
        while self.open < self.n and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.open < self.n:
            raise SystemExit(f"only {self.open} of {self.n} idle connections opened")
        return self

    def __exit__(self, *exc: object) -> None:
        def cancel() -> None:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()

        self.loop.call_soon_threadsafe(cancel)
        self.thread.join(10)


def server_tree(proc: subprocess.Popen) -> list[Any]:
    """The server's processes: ``recs serve`` and (with --workers) its workers."""
    import psutil

    root = psutil.Process(proc.pid)
    return [root, *root.children(recursive=True)]


def cpu_s(processes: list[Any]) -> float:
    return sum(t.user + t.system for t in (p.cpu_times() for p in processes))


def http_level(proc: subprocess.Popen, url: str, bodies: list[bytes], expect: list[int], clients: int,
               loader: str, fmt: str, a: argparse.Namespace, idle: IdleConnections | None = None
               ) -> dict[str, Any]:
    """One load level: a warm-up run (not counted), then the measured one with the CPU both sides used
    (the client's includes the idle connections' thread, if any)."""
    import psutil

    load = LOADERS[loader]
    asyncio.run(load(url, bodies, expect, clients, a.warmup, a.time_limit, fmt))
    reopened = idle.reopened if idle else 0
    server, me = server_tree(proc), [psutil.Process()]
    load_1m = os.getloadavg()[0]
    s0, c0 = cpu_s(server), cpu_s(me)
    res = asyncio.run(load(url, bodies, expect, clients, a.requests, a.time_limit, fmt))
    s1, c1 = cpu_s(server), cpu_s(me)
    if res["errors"]:
        raise SystemExit(f"{len(res['errors'])} bad answers, first: {res['errors'][0]}")
    n = len(res["latencies"])
    return {
        "clients": clients, "requests": n, "stopped_by_time_limit": n < a.requests,
        **percentiles(res["latencies"]), "requests_per_s": n / res["wall_s"], "wall_s": res["wall_s"],
        "body_bytes_mean": float(np.mean(res["sizes"])),
        "server_cpu_ms_per_request": 1e3 * (s1 - s0) / n, "client_cpu_ms_per_request": 1e3 * (c1 - c0) / n,
        "load_avg_1m_at_start": load_1m,
        "server_pss_mib": sum(p.memory_full_info().pss for p in server) / 2**20,
        "idle_open_at_end": idle.open if idle else 0, "idle_reopened": (idle.reopened - reopened) if idle else 0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=ROOT / "runs" / "bench" / "serve_1m")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--histories", type=int, default=200, help="test users (their recent list fills 800)")
    p.add_argument("--repeats", type=int, default=7, help="in-process calls per history (median)")
    p.add_argument("--requests", type=int, default=3000, help="requests per load level, after the warm-up")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per load level, at most")
    p.add_argument("--clients", default="1,16")
    p.add_argument("--workers", default="2,1", help="recs serve --workers, one server each; the first gets every level")
    p.add_argument("--rounds", type=int, default=1, help="the HTTP plan this many times; the JSON's http: medians")
    p.add_argument("--out", type=Path, default=HERE / "serve_load.json")
    p.add_argument("--label", default="as installed", help="what this run's environment is, for the JSON")
    p.add_argument("--idle", type=int, default=0,
                   help="also run the first --workers' main levels with this many idle connections open")
    p.add_argument("--serve-args", default="", help="more options of recs serve, e.g. '--header-timeout 2'")
    p.add_argument("--plan", choices=("full", "handoff"), default="full",
                   help="handoff: only the first --workers' main levels, without and with --idle connections")
    a = p.parse_args()

    info = machine()
    for pkg in ("starlette", "uvicorn", "orjson", "httptools", "uvloop"):  # the last three: optional speed-ups
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info[pkg] = None
    info["pythonpath"] = os.environ.get("PYTHONPATH")
    info["label"] = a.label
    index = build(a.cache, a.events, a.epochs)
    from recs.recommend.recommender import Recommender

    t = time.perf_counter()
    recommender = Recommender.open(index)
    load_s = time.perf_counter() - t
    hists = histories(recommender, a.cache / "test.parquet", a.histories)
    if not hists:
        raise SystemExit("no test user's recent list fills 800")
    cases = {"recent-800": "recent", "both": "both"}
    local = {name: in_process(recommender, hists, module, a.repeats) for name, module in cases.items()}
    expect = {name: [len(recommender.recommend([tuple(e) for e in h], module=m, k=K)) for h in hists]
              for name, m in cases.items()}
    del recommender  # the server loads its own copy

    levels = [int(c) for c in a.clients.split(",")]
    top = max(levels)
    workers = [int(w) for w in a.workers.split(",")]
    main_levels = [*(("recent-800", c, "raw", "columns") for c in levels), ("both", top, "raw", "columns")]
    plan = [  # (workers, access log, idle connections, [(case, clients, load generator, answer format)])
        (workers[0], False, 0, [*main_levels, ("recent-800", top, "raw", "rows"), ("both", top, "raw", "rows"),
                                *(("recent-800", c, "httpx", "columns") for c in levels)]),
        *((w, False, 0, main_levels) for w in workers[1:]),
        (workers[0], True, 0, [("recent-800", top, "raw", "columns")]),  # the log's cost: one level is enough
    ]
    if a.plan == "handoff":
        plan = [(workers[0], False, 0, main_levels)]
    if a.idle:
        plan.append((workers[0], False, a.idle, main_levels))
    runs: list[dict[str, Any]] = []
    for round_, (n_workers, access_log, n_idle, steps) in ((r, x) for r in range(a.rounds) for x in plan):
        proc, url = start_server(index, access_log, n_workers, timeout=600, extra=tuple(a.serve_args.split()))
        try:
            with IdleConnections(url, n_idle) if n_idle else contextlib.nullcontext() as idle:
                for name, clients, loader, fmt in steps:
                    print(f"load (round {round_ + 1}/{a.rounds}): {n_workers} worker(s), {name}, {fmt}, {clients} "
                          f"client(s), {loader}{', access log' if access_log else ''}"
                          f"{f', {n_idle} idle connections' if n_idle else ''}", flush=True)
                    bodies = [json.dumps({"history": h, "module": cases[name], "k": K, "format": fmt}).encode()
                              for h in hists]
                    level = http_level(proc, url, bodies, expect[name], clients, loader, fmt, a, idle)
                    runs.append({"case": name, "format": fmt, "workers": n_workers, "client": loader,
                                 "access_log": access_log, "idle_connections": n_idle, "round": round_, **level})
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)

    info["load_avg_at_end"] = os.getloadavg()
    result = {"machine": info, "args": {k: str(v) for k, v in vars(a).items()}, "index": str(index),
              "index_load_s": load_s, "in_process": local, "http": medians(runs), "http_rounds": runs}
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    report(result)


LEVEL_KEYS = ("case", "format", "workers", "client", "access_log", "idle_connections", "clients")


def medians(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per level (the same server and load in every round): the median of each number over the
    rounds, and the range of p99 and requests/s (the machine is shared: rounds differ)."""
    levels: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        levels.setdefault(tuple(r[k] for k in LEVEL_KEYS), []).append(r)
    out = []
    for key, rs in levels.items():
        row: dict[str, Any] = dict(zip(LEVEL_KEYS, key, strict=True)) | {"rounds": len(rs)}
        for k, v in rs[0].items():
            if k not in row and k != "round" and isinstance(v, (int, float)) and not isinstance(v, bool):
                row[k] = float(np.median([r[k] for r in rs]))
        row["stopped_by_time_limit"] = any(r["stopped_by_time_limit"] for r in rs)
        for k in ("p99_ms", "requests_per_s"):
            row[f"{k}_range"] = [min(r[k] for r in rs), max(r[k] for r in rs)]
        out.append(row)
    return out


def report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"recs serve, 1M planted index, k={K} (load avg at start "
                    f"{', '.join(f'{x:.1f}' for x in result['machine']['load_avg_at_start'])})")
    for col in ("case", "where", "clients", "rows / bytes", "p50 ms", "p99 ms", "req/s", "server CPU ms/req",
                "client CPU ms/req", "load 1m"):
        t.add_column(col, justify="right" if col not in ("case", "where") else "left")
    for name, r in result["in_process"].items():
        for what in ("recommend", "recommend_and_columns", "recommend_and_rows"):
            size = f"{r['body_bytes_mean_' + what.rsplit('_', 1)[1]]:,.0f}" if what != "recommend" else "-"
            t.add_row(name, f"in process: {what.replace('_and_', ' + ')}", "-",
                      f"{r['rows_median']:.0f} / {size}", f"{r[what]['p50_ms']:.3f}",
                      f"{r[what]['p99_ms']:.3f}", f"{1e3 / r[what]['mean_ms']:,.0f}", "-", "-", "-")
    for r in result["http"]:
        t.add_row(r["case"], f"HTTP {r['format']}, {r['workers']} worker(s), {r['client']}"
                  + (", access log" if r["access_log"] else "")
                  + (f", {r['idle_connections']} idle conns" if r.get("idle_connections") else ""), str(r["clients"]),
                  f"- / {r['body_bytes_mean']:,.0f}", f"{r['p50_ms']:.2f}",
                  f"{r['p99_ms']:.2f}" + (" ({:.1f}-{:.1f})".format(*r["p99_ms_range"]) if r["rounds"] > 1 else ""),
                  f"{r['requests_per_s']:,.0f}", f"{r['server_cpu_ms_per_request']:.2f}",
                  f"{r['client_cpu_ms_per_request']:.2f}", f"{r['load_avg_1m_at_start']:.1f}")
    Console(width=160).print(t)
    print(f"index load {result['index_load_s']:.1f} s; load avg at end "
          f"{', '.join(f'{x:.1f}' for x in result['machine']['load_avg_at_end'])}")


if __name__ == "__main__":
    main()
