"""train-embeddings' stages on Spark next to the polars engine, on the same planted log, in one run.

    .venv/bin/python bench/spark_stages.py --events 1M,10M --out bench/spark_stages.json

For each size: ``recs synth --events N --seed 0`` and ``recs split`` make TRAIN; then three
processes, one after the other, each measuring its own stages (wall seconds; peak RSS of its process
tree, polled every 20 ms by a thread, so for Spark that is the driver, its JVM and the Python
workers; also the largest single Python worker, i.e. the memory of one task):

* ``polars``: read_sessions, tokenize, regularization_pairs, the corpus files (this process);
* ``spark``: the JVM and SparkSession start, a first trivial job (Spark's fixed cost), then the library's
  own stages (``recs.spark.train.spark_corpus``: read sessions, tokens, corpus, co-occurrence) and the
  corpus file. Shuffle and spill bytes per stage come from Spark's REST API on the local UI
  (``/api/v1/applications/<id>/jobs`` gives each job's group, which recs sets per stage, and its stage
  ids; ``/stages`` gives their ``shuffleWriteBytes``, ``shuffleReadBytes``, spills);
* ``train``: one epoch of gensim (``fit_vectors``, dim 200, window 5, all cores) on the polars corpus:
  words per second, and the hours a billion words would take on these cores.

The parent then checks that both engines gave the same vocabulary and pairs, prints a table and the
growth from the smallest to the largest size, and writes everything as JSON. ``--spark-master``
(default ``local[<cores>]``), ``--driver-memory`` (4g) and ``--partitions`` (default: one per 500k
events, at least 4) set the Spark side.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import MIB, RECS, label, machine, measure, parse_size

HERE = Path(__file__).resolve()
EVENTS_PER_PARTITION = 500_000


class Sampler:
    """Peak RSS of this process tree (and of its largest Python worker) between marks, from a thread."""

    def __init__(self) -> None:
        import psutil

        self.me = psutil.Process()
        self.peak = self.worker = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import psutil

        while not self.stop:
            total, worker = 0, 0
            with contextlib.suppress(psutil.Error):
                for p in [self.me, *self.me.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        rss = p.memory_info().rss
                        total += rss
                        if p.pid != self.me.pid and "python" in p.name().lower():
                            worker = max(worker, rss)
            self.peak, self.worker = max(self.peak, total), max(self.worker, worker)
            time.sleep(0.02)

    def take(self) -> tuple[float, float]:
        """(peak tree MiB, peak worker MiB) since the last take; starts the next interval."""
        time.sleep(0.05)  # one more poll of the stage's end
        out = self.peak / MIB, self.worker / MIB
        self.peak = self.worker = 0
        return out


class Stages:
    """A recs Progress that records each stage's wall seconds and peak memory (what the library reports)."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self.rows: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def stage(self, name: str, total: int | None = None, unit: str = "it"):
        self.sampler.take()
        t = time.perf_counter()
        yield self
        wall = time.perf_counter() - t
        peak, worker = self.sampler.take()
        self.rows.append({"stage": name, "wall_s": wall, "peak_rss_mib": peak, "worker_rss_mib": worker})

    def update(self, n: int = 1) -> None:  # the stage's bar: counts are not what is measured here
        return None

    def timed(self, name: str):
        return self.stage(name)


# ---------------------------------------------------------------- the three worker processes


def run_polars(sessions: Path, work: Path) -> dict[str, Any]:
    from recs.config import TrainConfig
    from recs.embeddings.cooc import regularization_pairs
    from recs.embeddings.corpus import write_pair_corpus, write_session_corpus
    from recs.embeddings.tokens import tokenize
    from recs.sessions.io import read_sessions

    cfg = TrainConfig()
    st = Stages(Sampler())
    with st.timed("read sessions"):
        df = read_sessions(sessions)
    with st.timed("tokens"):  # tokenize: the vocabulary and the token sequences
        tok = tokenize(df, cfg.min_count)
    with st.timed("co-occurrence"):
        pairs = regularization_pairs(tok.sequences, tok.vocab, cfg.cooc)
    with st.timed("corpus file"):
        words = write_session_corpus(tok.sequences, work / "sessions.txt")
        pair_words = write_pair_corpus(pairs, work / "pairs.txt")
    tok.vocab.write_parquet(work / "vocab.parquet")
    pairs.write_parquet(work / "pairs.parquet")
    json.dump({"words": words, "pair_words": pair_words, "sessions": tok.n_sessions},
              (work / "corpus.json").open("w"))
    return {"stages": st.rows, "events": df.height, "tokens": tok.vocab.height, "pairs": pairs.height}


def rest(url: str, path: str) -> Any:
    with urllib.request.urlopen(f"{url}/api/v1/{path}", timeout=30) as r:  # the local UI, on loopback
        return json.load(r)


def spark_bytes(spark: Any) -> dict[str, dict[str, int]]:
    """Shuffle, input and spill bytes and task counts of each recs job group, from the local UI's REST API."""
    url = spark.sparkContext.uiWebUrl
    app = spark.sparkContext.applicationId
    stages = {s["stageId"]: s for s in rest(url, f"applications/{app}/stages?status=complete")}
    out: dict[str, dict[str, int]] = {}
    for job in rest(url, f"applications/{app}/jobs"):
        group = job.get("jobGroup") or "(none)"
        agg = out.setdefault(group, {"jobs": 0, "tasks": 0, "shuffle_write_bytes": 0, "shuffle_read_bytes": 0,
                                     "input_bytes": 0, "memory_spilled_bytes": 0, "disk_spilled_bytes": 0})
        agg["jobs"] += 1
        for sid in job["stageIds"]:
            s = stages.get(sid)
            if s is None:  # skipped (its shuffle output reused)
                continue
            agg["tasks"] += s["numCompleteTasks"]
            agg["shuffle_write_bytes"] += s["shuffleWriteBytes"]
            agg["shuffle_read_bytes"] += s["shuffleReadBytes"]
            agg["input_bytes"] += s["inputBytes"]
            agg["memory_spilled_bytes"] += s["memoryBytesSpilled"]
            agg["disk_spilled_bytes"] += s["diskBytesSpilled"]
    return out


def run_spark(sessions: Path, work: Path, master: str, partitions: int, driver_memory: str) -> dict[str, Any]:
    from recs.config import TrainConfig
    from recs.spark.cooc import read_pairs
    from recs.spark.corpus import concatenate, part_files, write_pair_lines
    from recs.spark.session import spark_session
    from recs.spark.train import spark_corpus

    cfg = TrainConfig()
    sampler = Sampler()
    st = Stages(sampler)
    conf = {"spark.sql.shuffle.partitions": str(partitions), "spark.driver.memory": driver_memory,
            "spark.ui.enabled": "true"}
    with st.timed("JVM + session"):
        spark = spark_session(master, conf)
    with st.timed("first job"):
        spark.range(1).count()
    timings: dict[str, float] = {}
    sc = spark_corpus(spark, sessions, cfg, work, st, timings, partitions=partitions)
    with st.timed("corpus file"):
        write_pair_lines(sc.pairs_dir, work / "pairs.txt")
        concatenate(part_files(sc.lines_dir, ".txt"), work / "sessions.txt")
    sc.vocab.write_parquet(work / "vocab.parquet")
    read_pairs(sc.pairs_dir).write_parquet(work / "pairs.parquet")
    shuffles = spark_bytes(spark)
    info = {"master": spark.sparkContext.master, "spark_version": spark.version, "partitions": sc.partitions,
            "driver_memory": driver_memory}
    spark.stop()
    return {"stages": st.rows, "spark": info, "jobs": shuffles, "events": sc.n_events, "tokens": sc.vocab.height}


def run_train(work: Path, workers: int) -> dict[str, Any]:
    import polars as pl

    from recs.config import TrainConfig
    from recs.embeddings.train import fit_vectors

    counts = json.loads((work / "corpus.json").read_text())
    vocab = pl.read_parquet(work / "vocab.parquet")
    cfg = TrainConfig(epochs=1, workers=workers)
    timings: dict[str, float] = {}
    st = Stages(Sampler())
    with st.timed("training (1 epoch)"):
        fit_vectors(vocab, counts["sessions"], {"corpus_file": str(work / "sessions.txt"), "total_words": counts[
            "words"]}, {"corpus_file": str(work / "pairs.txt"), "total_words": counts["pair_words"]},
            counts["pair_words"] // 2, cfg, st, timings)
    words = counts["words"] + counts["pair_words"]
    rate = words / timings["train_s"]
    return {"stages": st.rows, "words": words, "train_s": timings["train_s"], "words_per_s": rate,
            "hours_per_billion_words": 1e9 / rate / 3600, "workers": workers, "dim": cfg.dim}


def worker(args: argparse.Namespace) -> None:
    work = Path(args.work)
    if args.worker == "polars":
        result = run_polars(Path(args.sessions), work)
    elif args.worker == "spark":
        result = run_spark(Path(args.sessions), work, args.spark_master, args.partitions, args.driver_memory)
    else:
        result = run_train(work, args.workers)
    Path(args.result).write_text(json.dumps(result, indent=2))


# ---------------------------------------------------------------- the parent


def bench_size(events: int, a: argparse.Namespace) -> dict[str, Any]:
    import polars as pl

    name = label(events)
    d = a.workdir / name
    d.mkdir(parents=True, exist_ok=True)
    log = d / "log.txt"
    data = {}
    train = d / "train.parquet"
    if not train.exists():
        data["synth"] = measure([*RECS, "synth", "--events", str(events), "--seed", "0", "--out", str(d / "s.parquet")],
                                log)
        data["split"] = measure([*RECS, "split", str(d / "s.parquet"), "--train", str(train), "--test",
                                 str(d / "test.parquet")], log)
    partitions = a.partitions or max(4, events // EVENTS_PER_PARTITION)
    out: dict[str, Any] = {"events": events, "data": data}
    for kind in ("polars", "spark", "train"):
        w = d / ("polars" if kind == "train" else kind)
        w.mkdir(exist_ok=True)
        result = d / f"{kind}.json"
        cmd = [sys.executable, str(HERE), "--worker", kind, "--sessions", str(train), "--work", str(w),
               "--result", str(result), "--spark-master", a.spark_master, "--partitions", str(partitions),
               "--driver-memory", a.driver_memory, "--workers", str(a.workers)]
        process = measure(cmd, log)
        out[kind] = {**json.loads(result.read_text()), "process": process}
        print(f"{name} {kind}: {process['wall_s']:.1f} s, peak {process['peak_rss_mib']:.0f} MiB", flush=True)
    same = {f: pl.read_parquet(d / "polars" / f).equals(pl.read_parquet(d / "spark" / f))
            for f in ("vocab.parquet", "pairs.parquet")}
    same["corpus_bytes"] = _same_bytes(d / "polars" / "sessions.txt", d / "spark" / "sessions.txt")
    out["identical"] = same
    return out


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            x, y = fa.read(1 << 24), fb.read(1 << 24)
            if x != y:
                return False
            if not x:
                return True


def table(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per stage: polars and Spark wall seconds and peak MiB, Spark's shuffle bytes."""
    pol = {r["stage"]: r for r in res["polars"]["stages"]}
    spk = {r["stage"]: r for r in res["spark"]["stages"]}
    jobs = res["spark"]["jobs"]
    rows = []
    for stage in ("JVM + session", "first job", "read sessions", "tokens", "corpus", "co-occurrence", "corpus file"):
        p, s = pol.get(stage), spk.get(stage)
        j = jobs.get(f"recs: {stage}", {})
        rows.append({
            "stage": stage,
            "polars_s": p["wall_s"] if p else None, "polars_mib": p["peak_rss_mib"] if p else None,
            "spark_s": s["wall_s"] if s else None, "spark_mib": s["peak_rss_mib"] if s else None,
            "task_mib": s["worker_rss_mib"] if s else None,
            "shuffle_write_mib": j["shuffle_write_bytes"] / MIB if j else None,
            "spill_mib": (j["memory_spilled_bytes"] + j["disk_spilled_bytes"]) / MIB if j else None,
        })
    t = res["train"]["stages"][0]
    rows.append({"stage": "training (1 epoch)", "polars_s": t["wall_s"], "polars_mib": t["peak_rss_mib"],
                 "spark_s": None, "spark_mib": None, "task_mib": None, "shuffle_write_mib": None, "spill_mib": None})
    return rows


def fmt(x: Any) -> str:
    if x is None:
        return "-"
    return f"{x:,.1f}" if isinstance(x, float) else str(x)


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ["stage", "polars s", "polars MiB", "spark s", "spark MiB", "1 task MiB", "shuffle MiB", "spill MiB"]
    keys = ["stage", "polars_s", "polars_mib", "spark_s", "spark_mib", "task_mib", "shuffle_write_mib", "spill_mib"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", default="1M", help="comma-separated sizes, e.g. 1M,10M")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/recs-bench-spark"))
    ap.add_argument("--out", type=Path, default=HERE.parent / "spark_stages.json")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--spark-master", default=f"local[{os.cpu_count() or 1}]")
    ap.add_argument("--partitions", type=int, default=0)
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--worker", choices=["polars", "spark", "train"], help=argparse.SUPPRESS)
    ap.add_argument("--sessions", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a)
        return
    info = machine()
    results = []
    for events in (parse_size(s) for s in a.events.split(",")):
        res = bench_size(events, a)
        res["table"] = table(res)
        results.append(res)
        print(f"\n{label(events)} events ({res['spark']['spark']['partitions']} partitions, "
              f"{res['spark']['spark']['master']}); identical: {res['identical']}")
        print(markdown(res["table"]))
        t = res["train"]
        print(f"training: {t['words_per_s']:,.0f} words/s on {t['workers']} threads (dim {t['dim']}): "
              f"{t['hours_per_billion_words']:.2f} h per billion words")
        # write after every size, so a long run that is stopped keeps what it measured
        a.out.write_text(json.dumps({"machine": info, "results": results}, indent=2))
    if len(results) > 1:
        first, last = results[0], results[-1]
        ratio = last["events"] / first["events"]
        print(f"\ngrowth {label(first['events'])} -> {label(last['events'])} (x{ratio:g} events):")
        for r0, r1 in zip(first["table"], last["table"], strict=True):
            parts = [f"{k} x{r1[k] / r0[k]:.1f}" for k in ("polars_s", "spark_s") if r0[k] and r1[k]]
            print(f"  {r0['stage']}: {', '.join(parts) or '-'}")


if __name__ == "__main__":
    main()
