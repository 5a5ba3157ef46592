"""Benchmark every recs stage as a whole process against its bare library, at several log sizes.

    .venv/bin/python bench/run.py --events 1M,10M --out bench/results.json
    .venv/bin/python bench/run.py --events 20k --stages data,cooc --repeats 1 --out /tmp/smoke.json

For each size: ``recs synth`` writes a planted log, ``bench/refs.py tail`` appends OTTO-like long
sessions (300-500 events), ``recs split`` cuts it; then each stage runs as its own process and so
does its reference, in the same run, one after the other:

=========  ==============================================  =============================================
stage      recs                                            reference
=========  ==============================================  =============================================
cooc       tokenize + regularization_pairs (library)       plain polars windowed self-join (refs.py)
train      ``recs train-embeddings`` (manifest train_s)    bare gensim Word2Vec, same corpus and params
index      ``recs build-index`` (manifest build / search)  bare faiss IndexHNSWFlat, same vectors/params
eval       ``recs eval-hitrate``                           (none: targets per second)
=========  ==============================================  =============================================

Wall time and peak RSS are measured here, outside the measured process: peak RSS is the larger of
psutil polling of the process tree (every 20 ms) and the child's ``ru_maxrss`` from ``wait4``; this
parent imports nothing heavy, so a forked child inherits no large resident size. A stage is repeated
(``--repeats``, median reported) when one run is shorter than ``--cheap-s``. Threads: ``--workers``
(default: all cores) goes to training, faiss and the references alike, so the script runs unchanged
on a bigger machine. The machine is described in the JSON; timings on a shared machine are noisy,
which is why every ratio is taken against a reference run minutes apart in the same invocation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REFS = HERE / "refs.py"
RECS = [sys.executable, "-c", "from recs.cli.main import main; main()"]
STAGES = ("data", "cooc", "train", "index", "eval")
MIB = 1024 * 1024


def parse_size(text: str) -> int:
    """``20k`` / ``1M`` / ``2.5m`` / ``300000`` -> events."""
    text = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * mult)


def label(events: int) -> str:
    if events % 1_000_000 == 0:
        return f"{events // 1_000_000}M"
    if events % 1_000 == 0:
        return f"{events // 1_000}k"
    return str(events)


def machine() -> dict[str, Any]:
    import psutil

    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for pkg in ("polars", "gensim", "faiss-cpu", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": os.getloadavg(),
        **versions,
    }


# On a shared machine (``--max-load``) a timed run first waits, up to ``--quiet-wait-s``, for the
# 1-minute load to fall to the limit; every run records the load it started under (``load_avg``), so a
# ratio skewed by someone else's work shows in the JSON.
QUIET = {"max_load": None, "wait_s": 900.0}


def wait_for_quiet() -> tuple[float, float, float]:
    """Sleep while the 1-minute load is above ``--max-load`` (if given), at most ``--quiet-wait-s``
    seconds; return the load average then."""
    limit, waited = QUIET["max_load"], 0.0
    while limit is not None and os.getloadavg()[0] > limit and waited < QUIET["wait_s"]:
        print(f"  load {os.getloadavg()[0]:.2f} > {limit}: waiting", flush=True)
        time.sleep(60)
        waited += 60
    return os.getloadavg()


def measure(cmd: list[str], log: Path) -> dict[str, Any]:
    """Run ``cmd`` to completion: wall seconds, peak RSS (MiB) of its process tree, CPU seconds, and the
    load average it started under."""
    import psutil

    load = wait_for_quiet()
    started = time.perf_counter()
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, cwd=ROOT)
        polled = 0
        watch = psutil.Process(proc.pid)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            with contextlib.suppress(psutil.Error):
                tree = [watch, *watch.children(recursive=True)]
                total = 0
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
                polled = max(polled, total)
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"bench: {' '.join(cmd)} failed with exit code {proc.returncode}; log {log}:\n{tail}")
    return {
        "wall_s": wall,
        "peak_rss_mib": max(polled, usage.ru_maxrss * 1024) / MIB,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "load_avg": load,
        "load_avg_after": os.getloadavg(),
    }


def measured_pair(ours: list[str], ref: list[str] | None, log: Path, repeats: int, cheap_s: float,
                  after_each: Any = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run ours (then ref) once, and again up to ``repeats`` times while a round is cheap.

    ``after_each(kind, i)`` returns extra numbers read from the run's outputs (manifest, JSON).
    """
    runs_ours: list[dict[str, Any]] = []
    runs_ref: list[dict[str, Any]] = []
    for i in range(max(1, repeats)):
        r = measure(ours, log)
        r.update(after_each("ours", i) if after_each else {})
        runs_ours.append(r)
        if ref is not None:
            q = measure(ref, log)
            q.update(after_each("ref", i) if after_each else {})
            runs_ref.append(q)
        round_s = r["wall_s"] + (runs_ref[-1]["wall_s"] if ref is not None else 0.0)
        if round_s > cheap_s:
            break
    return runs_ours, runs_ref


def med(runs: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in runs if r.get(key) is not None]
    return float(statistics.median(values)) if values else float("nan")


def peak(runs: list[dict[str, Any]]) -> float:
    return max((r["peak_rss_mib"] for r in runs), default=float("nan"))


def bench_size(events: int, a: argparse.Namespace) -> dict[str, Any]:
    """All chosen stages at one log size; returns the raw runs and summary numbers."""
    name = label(events)
    work = a.workdir / name
    work.mkdir(parents=True, exist_ok=True)
    log = work / "bench.log"
    synth, train, test = work / "synth.parquet", work / "train.parquet", work / "test.parquet"
    model, index, evalj = work / "model", work / "index", work / "eval.json"
    w = str(a.workers)
    res: dict[str, Any] = {"events": events, "workers": a.workers}
    print(f"[{name}] workdir {work}", flush=True)

    def read_json(path: Path) -> dict[str, Any]:
        return json.loads(path.read_text())

    if "data" in a.stages:
        print(f"[{name}] synth + tail + split", flush=True)
        r = measure([*RECS, "synth", "--events", str(events), "--seed", str(a.seed), "--out", str(synth)], log)
        res["synth"] = {"runs": [r], "wall_s": r["wall_s"], "peak_rss_mib": r["peak_rss_mib"]}
        tail_json = work / "tail.json"
        n_tail = a.tail_sessions if a.tail_sessions is not None else max(3, events // 100_000)
        measure([sys.executable, str(REFS), "tail", "--sessions", str(synth), "--sessions-count", str(n_tail),
                 "--seed", str(a.seed), "--json", str(tail_json)], log)
        res["tail"] = read_json(tail_json)
        split_cmd = [*RECS, "split", str(synth), "--train", str(train), "--test", str(test),
                     "--json", str(work / "split.json")]
        runs, _ = measured_pair(split_cmd, None, log, a.repeats, a.cheap_s)
        res["split"] = {"runs": runs, "wall_s": med(runs, "wall_s"), "peak_rss_mib": peak(runs),
                        "events": res["tail"]["events"]}
        res["split"]["summary"] = read_json(work / "split.json")
    split_summary = res.get("split", {}).get("summary") or (
        read_json(work / "split.json") if (work / "split.json").exists() else {})
    train_events = split_summary.get("train", {}).get("events")

    if "cooc" in a.stages:
        print(f"[{name}] tokenize + co-occurrence: recs vs polars self-join", flush=True)
        oj, rj = work / "cooc_recs.json", work / "cooc_polars.json"
        common = ["--sessions", str(train), "--horizon", str(a.horizon), "--k", str(a.cooc_k)]
        ours, ref = measured_pair(
            [sys.executable, str(REFS), "cooc-recs", *common, "--json", str(oj)],
            [sys.executable, str(REFS), "cooc-polars", *common, "--json", str(rj)],
            log, a.repeats, a.cheap_s, lambda kind, i: read_json(oj if kind == "ours" else rj))
        res["cooc"] = {
            "ours": ours, "ref": ref, "compute_s": med(ours, "compute_s"), "ref_compute_s": med(ref, "compute_s"),
            "tokenize_s": med(ours, "tokenize_s"), "cooc_s": med(ours, "cooc_s"),
            "peak_rss_mib": peak(ours), "ref_peak_rss_mib": peak(ref), "events": ours[0]["events"],
            "pairs": ours[0]["pairs"], "same_output": ours[0]["checksum"] == ref[0]["checksum"]
            and ours[0]["pairs"] == ref[0]["pairs"],
        }

    if "train" in a.stages:
        print(f"[{name}] train-embeddings vs bare gensim", flush=True)
        gj = work / "gensim.json"
        cmd = [*RECS, "train-embeddings", str(train), "--out", str(model), "--workers", w, "--quiet"]
        if a.epochs:
            cmd += ["--epochs", str(a.epochs)]

        def after(kind: str, i: int) -> dict[str, Any]:
            if kind == "ours":
                m = read_json(model / "manifest.json")
                return {**{k: v for k, v in m["timings"].items()}, "epochs": m["config"]["epochs"],
                        "words": m["counts"]["corpus_words"] + 2 * m["counts"]["regularization_pairs"],
                        "tokens": m["counts"]["tokens"], "pairs": m["counts"]["regularization_pairs"]}
            return read_json(gj)

        ours, ref = measured_pair(
            cmd, [sys.executable, str(REFS), "gensim", "--sessions", str(train), "--model", str(model), "--workers", w,
                  "--json", str(gj), "--workdir", str(work)],
            log, a.repeats, a.cheap_s, after)
        res["train"] = {
            "ours": ours, "ref": ref, "wall_s": med(ours, "wall_s"), "train_s": med(ours, "train_s"),
            "total_s": med(ours, "total_s"), "ref_train_s": med(ref, "train_s"),
            "ref_build_vocab_s": med(ref, "build_vocab_s"), "peak_rss_mib": peak(ours),
            "ref_peak_rss_mib": peak(ref), "epochs": ours[0]["epochs"], "words": ours[0]["words"],
            "tokens": ours[0]["tokens"], "cpu_util": med(ours, "cpu_s") / med(ours, "wall_s"),
            "load_avg": [r.get("load_avg") for r in ours], "ref_load_avg": [r.get("load_avg") for r in ref],
            "events": train_events,
        }

    if "index" in a.stages:
        print(f"[{name}] build-index vs bare faiss (+ recall@k vs exact search)", flush=True)
        fj = work / "faiss.json"
        cmd = [*RECS, "build-index", "--model", str(model), "--out", str(index), "--threads", w, "--quiet"]
        ref_cmd = [sys.executable, str(REFS), "faiss", "--model", str(model), "--index", str(index), "--workers", w,
                   "--queries", str(a.queries), "--json", str(fj)]

        def after_ix(kind: str, i: int) -> dict[str, Any]:
            if kind == "ours":
                t = read_json(index / "manifest.json")["timings"]
                return {"build_s": sum(v for k, v in t.items() if k.startswith("index_")),
                        "search_s": sum(v for k, v in t.items() if k.startswith("search_"))}
            f = read_json(fj)
            return {"build_s": sum(v["build_s"] for v in f["targets"].values()),
                    "search_s": sum(v["search_s"] for v in f["sets"].values()),
                    "table_s": sum(v.get("table_s", float("nan")) for v in f["sets"].values()), "detail": f}

        ours, ref = measured_pair(cmd, ref_cmd, log, a.repeats, a.cheap_s, after_ix)
        detail = ref[-1]["detail"]
        if a.sweep:  # once, apart from the timed runs: efSearch / M sweep and bytes per vector
            measure([*ref_cmd, "--sweep"], log)
            detail = read_json(fj)
        res["index"] = {
            "ours": ours, "ref": [{k: v for k, v in r.items() if k != "detail"} for r in ref],
            "wall_s": med(ours, "wall_s"), "build_s": med(ours, "build_s"), "search_s": med(ours, "search_s"),
            "ref_build_s": med(ref, "build_s"), "ref_search_s": med(ref, "search_s"),
            "ref_table_s": med(ref, "table_s"), "same_rows": all(v.get("same_rows") for v in detail["sets"].values()),
            "load_avg": [r.get("load_avg") for r in ours], "peak_rss_mib": peak(ours),
            "ref_peak_rss_mib": peak(ref), "faiss": detail,
            "queries": sum(v["queries"] for v in detail["sets"].values()),
            "vectors": sum(v["vectors"] for v in detail["targets"].values()),
        }

    if "eval" in a.stages:
        print(f"[{name}] eval-hitrate", flush=True)
        cmd = [*RECS, "eval-hitrate", "--index", str(index), "--sessions", str(test), "--json", str(evalj)]
        runs, _ = measured_pair(cmd, None, log, a.repeats, a.cheap_s)
        report = read_json(evalj)
        targets = sum(r["targets"] for r in report["results"])
        res["eval"] = {"runs": runs, "wall_s": med(runs, "wall_s"), "peak_rss_mib": peak(runs), "targets": targets,
                       "results": report["results"],
                       "test_events": split_summary.get("test", {}).get("events")}
    return res


def fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "–"
    if isinstance(x, float):
        if abs(x) >= 1e6:
            return f"{x / 1e6:.{digits}f}M"
        if abs(x) >= 1e4:
            return f"{x / 1e3:.0f}k"
        if abs(x) >= 1e3:
            return f"{x / 1e3:.1f}k"
        return f"{x:.{digits}f}"
    if isinstance(x, int) and abs(x) >= 10_000:
        return f"{x:,}"
    return str(x)


def table_rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per stage: the table of BENCHMARKS.md."""
    rows: list[dict[str, Any]] = []
    n = label(res["events"])

    def row(stage: str, wall: float, thr: float | None, unit: str, rss: float, ref_name: str = "",
            ref_s: float | None = None, ratio: float | None = None, target: str = "", ref_rss: float | None = None,
            cores: float | None = None) -> None:
        rows.append({"stage": stage, "events": n, "wall_s": wall, "throughput": thr, "unit": unit,
                     "peak_rss_mib": rss, "cores_busy": cores, "reference": ref_name, "ref_s": ref_s,
                     "ref_peak_rss_mib": ref_rss, "ratio": ratio, "target": target})

    def busy(runs: list[dict[str, Any]]) -> float:
        """CPU seconds / wall seconds of the process: 2.0 = both of 2 cores; low = starved by other load."""
        return med(runs, "cpu_s") / med(runs, "wall_s")

    if "synth" in res:
        s = res["synth"]
        row("synth", s["wall_s"], res["events"] / s["wall_s"], "events/s", s["peak_rss_mib"], cores=busy(s["runs"]))
    if "split" in res:
        s = res["split"]
        row("split", s["wall_s"], s["events"] / s["wall_s"], "events/s", s["peak_rss_mib"], cores=busy(s["runs"]))
    if "cooc" in res:
        c = res["cooc"]
        row("tokenize + co-occurrence", c["compute_s"], c["events"] / c["compute_s"], "events/s", c["peak_rss_mib"],
            "polars windowed self-join" + ("" if c["same_output"] else " (OUTPUT DIFFERS)"), c["ref_compute_s"],
            c["compute_s"] / c["ref_compute_s"], "≤ 1", c["ref_peak_rss_mib"], busy(c["ours"]))
    if "train" in res:
        t = res["train"]
        words = t["words"] * t["epochs"]
        row("training step (gensim loop)", t["train_s"], words / t["train_s"], "words/s", t["peak_rss_mib"],
            "bare gensim Word2Vec.train", t["ref_train_s"], t["train_s"] / t["ref_train_s"], "≤ 1.05",
            t["ref_peak_rss_mib"], busy(t["ours"]))
        row("train-embeddings (command)", t["wall_s"], words / t["wall_s"], "words/s", t["peak_rss_mib"],
            "bare gensim Word2Vec.train", t["ref_train_s"], t["wall_s"] / t["ref_train_s"], "≤ 1.3")
    if "index" in res:
        x = res["index"]
        row("HNSW build", x["build_s"], x["vectors"] / x["build_s"], "vectors/s", x["peak_rss_mib"],
            "bare faiss IndexHNSWFlat.add", x["ref_build_s"], x["build_s"] / x["ref_build_s"], "≈ 1",
            x["ref_peak_rss_mib"], busy(x["ours"]))
        row("candidate search + table", x["search_s"], x["queries"] / x["search_s"], "queries/s", x["peak_rss_mib"],
            "bare faiss search", x["ref_search_s"], x["search_s"] / x["ref_search_s"], "≈ 1")
        # the fair reference (issue 23): bare search plus the same rows written with polars, serially
        table = x.get("ref_table_s", float("nan"))
        same = "" if x.get("same_rows", True) else " (ROWS DIFFER)"
        row("candidate search + table", x["search_s"], x["queries"] / x["search_s"], "queries/s", x["peak_rss_mib"],
            "bare faiss search + polars table write" + same, x["ref_search_s"] + table,
            x["search_s"] / (x["ref_search_s"] + table), "≤ 1.05")
        row("build-index (command)", x["wall_s"], x["queries"] / x["wall_s"], "queries/s", x["peak_rss_mib"],
            "bare faiss build + search", x["ref_build_s"] + x["ref_search_s"],
            x["wall_s"] / (x["ref_build_s"] + x["ref_search_s"]))
        row("build-index (command)", x["wall_s"], x["queries"] / x["wall_s"], "queries/s", x["peak_rss_mib"],
            "bare faiss build + search + polars table write" + same, x["ref_build_s"] + x["ref_search_s"] + table,
            x["wall_s"] / (x["ref_build_s"] + x["ref_search_s"] + table), "≤ 1.10")
    if "eval" in res:
        e = res["eval"]
        row("eval-hitrate (command)", e["wall_s"], e["targets"] / e["wall_s"], "targets/s", e["peak_rss_mib"],
            cores=busy(e["runs"]))
    steps = [res[k] for k in ("split", "train", "index", "eval") if k in res]
    if len(steps) == 4:
        row("end to end (split+train+index+eval)", sum(s["wall_s"] for s in steps), None, "",
            max(s["peak_rss_mib"] for s in steps))
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| stage | events | wall s | throughput | peak RSS MiB | cores busy | reference | ref s | ref RSS MiB "
            "| ratio | target |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        thr = f"{fmt(r['throughput'])} {r['unit']}" if r["throughput"] else ""
        lines.append(f"| {r['stage']} | {r['events']} | {fmt(r['wall_s'], 1)} | {thr} | {fmt(r['peak_rss_mib'], 0)} "
                     f"| {fmt(r.get('cores_busy'), 1)} | {r['reference']} | {fmt(r['ref_s'], 1)} "
                     f"| {fmt(r['ref_peak_rss_mib'], 0)} | {fmt(r['ratio'])} | {r['target']} |")
    return "\n".join(lines)


def growth(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Largest size over smallest: time ratio per stage next to the events ratio."""
    if len(results) < 2:
        return []
    small, big = table_rows(results[0]), table_rows(results[-1])
    factor = results[-1]["events"] / results[0]["events"]
    by_stage = {r["stage"]: r for r in small}
    out = []
    for r in big:
        s = by_stage.get(r["stage"])
        if s and s["wall_s"]:
            out.append({"stage": r["stage"], "events_ratio": factor, "time_ratio": r["wall_s"] / s["wall_s"],
                        "rss_ratio": r["peak_rss_mib"] / s["peak_rss_mib"]})
    return out


def recall_lines(res: dict[str, Any]) -> list[str]:
    if "index" not in res:
        return []
    f = res["index"]["faiss"]
    k = f["k"]
    lines = [f"recall@{k} against exact IndexFlatIP ({label(res['events'])}, M={f['m']}, efSearch={f['ef_search']}):"]
    for name, s in f["sets"].items():
        lines.append(f"  {name}: recs lists {s[f'recall@{k}_recs']:.4f}, bare HNSW {s[f'recall@{k}_bare_hnsw']:.4f} "
                     f"({s['recall_sample']} sampled queries of {s['queries']})")
        for sw in s.get("sweep", []):
            lines.append(f"    M={sw['M']:>2} efSearch={sw['efSearch']:>4}: recall {sw[f'recall@{k}']:.4f}, "
                         f"{sw['ms_per_query']:.2f} ms/query" + (f", build {sw['build_s']:.1f} s" if sw["build_s"]
                                                                 else ""))
    if "bytes_per_vector" in f:
        b = f["bytes_per_vector"]
        lines.append(f"  bytes per vector (d={int(b['dim'])}): " + ", ".join(
            f"{k_}: {v:.0f}" for k_, v in b.items() if k_ not in ("vectors", "dim")))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", default="1M,10M", help="Comma-separated log sizes, e.g. 20k,1M,10M.")
    ap.add_argument("--stages", default=",".join(STAGES),
                    help=f"Comma-separated subset of {','.join(STAGES)} (later stages reuse earlier outputs).")
    ap.add_argument("--out", type=Path, default=HERE / "results.json", help="Results JSON.")
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench", help="Logs, models and indexes.")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Threads for every stage (all cores).")
    ap.add_argument("--repeats", type=int, default=3, help="Runs per cheap stage (median reported).")
    ap.add_argument("--cheap-s", type=float, default=60.0, help="Repeat a stage only while a round is shorter.")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tail-sessions", type=int, default=None,
                    help="OTTO-like 300-500 event sessions to append [default: events / 100k, at least 3].")
    ap.add_argument("--epochs", type=int, default=None, help="Fix training epochs [default: recs' auto rule].")
    ap.add_argument("--horizon", type=int, default=20, help="Co-occurrence horizon (recs default 20).")
    ap.add_argument("--cooc-k", type=int, default=3, help="Kept successors per type (recs default 3).")
    ap.add_argument("--queries", type=int, default=2000, help="Sampled queries per candidate set for recall.")
    ap.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=True,
                    help="Also sweep efSearch and M and measure index bytes per vector.")
    ap.add_argument("--max-load", type=float, default=None,
                    help="Before each timed run, wait while the 1-minute load average is above this (a shared "
                         "machine) [default: do not wait].")
    ap.add_argument("--quiet-wait-s", type=float, default=900.0, help="Longest wait for --max-load per run.")
    ap.add_argument("--combine", default=None,
                    help="Only merge earlier results JSON files (comma-separated; later files' stages win) "
                         "into --out and print them.")
    a = ap.parse_args()
    a.stages = [s.strip() for s in a.stages.split(",") if s.strip()]
    unknown = set(a.stages) - set(STAGES)
    if unknown:
        ap.error(f"unknown stage(s) {', '.join(sorted(unknown))}; choose from {', '.join(STAGES)}")
    a.workdir = a.workdir.resolve()
    QUIET.update(max_load=a.max_load, wait_s=a.quiet_wait_s)
    if a.combine:
        loaded = [json.loads(Path(f).read_text()) for f in a.combine.split(",") if f.strip()]
        merged: dict[int, dict[str, Any]] = {}
        for d in loaded:  # a later file's stages replace an earlier file's at the same size
            for res in d["sizes"]:
                merged.setdefault(res["events"], {}).update(res)
        results = [merged[e] for e in sorted(merged)]
        report(results, loaded[0]["machine"], {"combined": a.combine}, a.out)
        return
    sizes = [parse_size(x) for x in a.events.split(",") if x.strip()]
    info = machine()
    print(f"machine: {info['cores']} cores, {info['memory_gib']} GiB, {info['cpu']}; workers={a.workers}", flush=True)
    args = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
    results: list[dict[str, Any]] = []
    for events in sizes:
        results.append(bench_size(events, a))
        # written after every size: a 10M run takes minutes and a later failure should not lose the rest
        report(results, info, args, a.out, quiet=events != sizes[-1])


def report(results: list[dict[str, Any]], info: dict[str, Any], args: dict[str, Any], out: Path,
           quiet: bool = False) -> None:
    """Write the results JSON and (unless quiet) print the table, recall lines and growth."""
    rows = [r for res in results for r in table_rows(res)]
    payload = {"machine": info, "args": args, "table": rows, "growth": growth(results), "sizes": results,
               "load_avg_at_end": os.getloadavg()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1, default=str))
    if quiet:
        return
    print()
    print(markdown(rows))
    for res in results:
        for line in recall_lines(res):
            print(line)
    for g in growth(results):
        print(f"growth {g['stage']}: time x{g['time_ratio']:.1f}, peak RSS x{g['rss_ratio']:.1f} "
              f"for x{g['events_ratio']:.0f} events")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
