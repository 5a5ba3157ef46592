"""train-embeddings and build-index --engine spark on a loopback standalone cluster vs local[2] vs polars.

    .venv/bin/python bench/spark_cluster.py --events 1M --out bench/spark_cluster.json

One planted log (``recs synth --events N --seed 0``, ``recs split``). Then, each command a CLI process
of its own, one after the other:

* ``polars``: train-embeddings and build-index on one machine;
* ``local[2]``: ``--engine spark --spark-master local[2]`` (tasks in the driver's JVM, 2 GiB);
* ``cluster``: ``--engine spark`` on a standalone master and two workers on 127.0.0.1, one core and
  1 GiB each (``tests/spark/cluster.py``), the driver a third process.

Per stage: the seconds the manifest records (``timings``), and the process's wall seconds. From
Spark's event log (``spark.eventLog.enabled``, one per run): per job group (recs names one per
stage, ``recs: tokens``...) the shuffle bytes written and read, and the peak JVM heap and Python RSS
of any executor (``spark.executor.processTreeMetrics.enabled``, polled every 200 ms). Training is the
same gensim call everywhere (dim 64, one epoch, 2 threads here, to keep the run short): its time is
reported but is not what differs. build-index reads the polars engine's model in all three.
Partitions follow recs' rule (one per 500k events, at least one per core: 2 at 1M) in both Spark runs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "tests" / "spark"))
from cluster import StandaloneCluster  # noqa: E402

TRAIN = ["--dim", "64", "--epochs", "1", "--workers", "2", "--quiet"]
INDEX = ["--k", "200", "--threads", "2", "--quiet"]
EVENT_CONF = {"spark.eventLog.enabled": "true", "spark.eventLog.rolling.enabled": "false",
              "spark.eventLog.compress": "false", "spark.executor.processTreeMetrics.enabled": "true",
              "spark.executor.metrics.pollingInterval": "200ms"}
LOCAL_CONF = {"spark.driver.memory": "2g"}
CLUSTER_CONF = {"spark.executor.memory": "1g", "spark.driver.memory": "1g"}


def parse_size(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


def recs(*args: object, cwd: Path, env: dict[str, str] | None = None) -> float:
    """Run the recs CLI; its wall seconds (or stop with its error)."""
    t = time.perf_counter()
    cli = ["-c", "from recs.cli.main import main; main()"]
    run = subprocess.run([sys.executable, *cli, *(str(a) for a in args)], cwd=cwd, env=env, capture_output=True,
                         text=True)
    if run.returncode != 0:
        raise SystemExit(f"recs {' '.join(map(str, args[:1]))} failed:\n{run.stderr[-3000:]}")
    return time.perf_counter() - t


def spark_args(master: str, conf: dict[str, str], log_dir: Path) -> list[str]:
    log_dir.mkdir(parents=True, exist_ok=True)
    settings = {**EVENT_CONF, "spark.eventLog.dir": f"file://{log_dir}", **conf}
    return ["--engine", "spark", "--spark-master", master,
            *[a for k, v in settings.items() for a in ("--spark-conf", f"{k}={v}")]]


def event_metrics(log_dir: Path) -> dict[str, Any]:
    """Per recs job group: shuffle bytes written/read; and the peak executor JVM heap and Python RSS."""
    files = [p for p in log_dir.iterdir() if p.is_file() and not p.name.endswith(".inprogress")]
    if len(files) != 1:
        return {"error": f"{len(files)} event logs in {log_dir}"}
    opener = gzip.open if files[0].suffix == ".gz" else open
    stage_group: dict[int, str] = {}
    groups: dict[str, dict[str, int]] = {}
    peak = {"jvm_heap": 0, "python_rss": 0, "jvm_rss": 0}
    with opener(files[0], "rt") as f:
        for line in f:
            ev = json.loads(line)
            kind = ev.get("Event")
            if kind == "SparkListenerJobStart":
                group = (ev.get("Properties") or {}).get("spark.jobGroup.id") or "(no group)"
                for sid in ev.get("Stage IDs", []):
                    stage_group[sid] = group
            elif kind == "SparkListenerStageCompleted":
                info = ev["Stage Info"]
                acc = {a.get("Name"): a.get("Value") for a in info.get("Accumulables", [])}
                g = groups.setdefault(stage_group.get(info["Stage ID"], "(no group)"),
                                      {"shuffle_write_bytes": 0, "shuffle_read_bytes": 0, "tasks": 0})
                g["shuffle_write_bytes"] += int(acc.get("internal.metrics.shuffle.write.bytesWritten") or 0)
                g["shuffle_read_bytes"] += int(acc.get("internal.metrics.shuffle.read.remoteBytesRead") or 0) + int(
                    acc.get("internal.metrics.shuffle.read.localBytesRead") or 0)
                g["tasks"] += int(info.get("Number of Tasks", 0))
            elif kind in ("SparkListenerStageExecutorMetrics", "SparkListenerTaskEnd"):
                m = ev.get("Executor Metrics") or ev.get("Task Executor Metrics") or {}
                if ev.get("Executor ID", "x") == "driver" and kind == "SparkListenerStageExecutorMetrics":
                    continue  # the driver's own JVM (local[2] runs its tasks there: then it is counted below)
                peak["jvm_heap"] = max(peak["jvm_heap"], int(m.get("JVMHeapMemory", 0)))
                peak["python_rss"] = max(peak["python_rss"], int(m.get("ProcessTreePythonRSSMemory", 0)))
                peak["jvm_rss"] = max(peak["jvm_rss"], int(m.get("ProcessTreeJVMRSSMemory", 0)))
    return {"groups": groups, "peak_executor_bytes": peak}


def run_side(name: str, d: Path, master: str | None, conf: dict[str, str], env: dict[str, str] | None) -> dict:
    out: dict[str, Any] = {}
    base = [] if master is None else spark_args(master, conf, d / f"events-{name}-train")
    wall = recs("train-embeddings", "train.parquet", "--out", f"model-{name}", *TRAIN, *base, cwd=d, env=env)
    manifest = json.loads((d / f"model-{name}" / "manifest.json").read_text())
    out["train"] = {"wall_s": wall, "timings": manifest["timings"], "counts": manifest["counts"],
                    "partitions": manifest.get("engine", {}).get("partitions")}
    if master is not None:
        out["train"]["events"] = event_metrics(d / f"events-{name}-train")
    base = [] if master is None else spark_args(master, conf, d / f"events-{name}-index")
    wall = recs("build-index", "--model", "model-polars", "--out", f"index-{name}", *INDEX, *base, cwd=d, env=env)
    manifest = json.loads((d / f"index-{name}" / "manifest.json").read_text())
    out["index"] = {"wall_s": wall, "timings": manifest["timings"],
                    "rows": {k: v["rows"] for k, v in manifest["candidate_sets"].items()},
                    "parts": {k: v.get("parts") for k, v in manifest["candidate_sets"].items()}}
    if master is not None:
        out["index"]["events"] = event_metrics(d / f"events-{name}-index")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", default="1M")
    ap.add_argument("--out", type=Path, default=HERE.with_name("spark_cluster.json"))
    ap.add_argument("--work", type=Path, default=None, help="work directory [default: a temporary one]")
    ap.add_argument("--cluster-first", action="store_true", help="run the cluster side before local[2]")
    a = ap.parse_args()
    n = parse_size(a.events)
    with tempfile.TemporaryDirectory(prefix="recs-bench-cluster-", dir=a.work) as tmp:
        d = Path(tmp)
        recs("synth", "--events", n, "--seed", 0, "--out", "s.parquet", cwd=d)
        recs("split", "s.parquet", "--train", "train.parquet", "--test", "test.parquet", cwd=d)
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
        res: dict[str, Any] = {"events": n, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                                        "load_before": os.getloadavg()}}
        res["polars"] = run_side("polars", d, None, {}, None)

        def on_cluster() -> None:
            cluster = StandaloneCluster(d / "cluster")
            for key in ("spark.sql.shuffle.partitions", "spark.default.parallelism"):  # recs' own rule, as local[2]
                cluster.conf.pop(key)
            with cluster:
                res["cluster"] = run_side("cluster", d, cluster.master, CLUSTER_CONF, cluster.driver_env())
                res["cluster"]["master"] = "standalone on 127.0.0.1: 2 workers x 1 core, 1 GiB executors"

        if a.cluster_first:  # a second run in the other order: load that drifts during a run hits the other side
            on_cluster()
        res["local[2]"] = run_side("local2", d, "local[2]", LOCAL_CONF, env)
        if not a.cluster_first:
            on_cluster()
        res["order"] = ["polars", "cluster", "local[2]"] if a.cluster_first else ["polars", "local[2]", "cluster"]
        for side in ("local[2]", "cluster"):  # the same lists as one machine (one shard: row for row)
            import polars as pl

            for name in res["polars"]["index"]["rows"]:
                want = pl.read_parquet(d / "index-polars" / "candidates" / f"{name}.parquet")
                tag = "local2" if side == "local[2]" else "cluster"
                got = pl.read_parquet(sorted((d / f"index-{tag}" / "candidates" / name).glob("part-*.parquet")))
                res[side]["index"].setdefault("equal_to_polars", {})[name] = bool(got.equals(want))
            a_tok = pl.read_parquet(d / "model-polars" / "tokens.parquet")
            res[side]["train"]["tokens_equal_to_polars"] = bool(
                pl.read_parquet(d / f"model-{'local2' if side == 'local[2]' else 'cluster'}" / "tokens.parquet")
                .equals(a_tok))
        res["machine"]["load_after"] = os.getloadavg()
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({s: {k: round(v["wall_s"], 1) for k, v in res[s].items() if isinstance(v, dict) and "wall_s" in v}
                      for s in ("polars", "local[2]", "cluster")}, indent=1))


if __name__ == "__main__":
    main()
