"""``recs build-index`` on one machine against ``--engine spark``, with 1 and 4 shards, in one run.

    .venv/bin/python bench/spark_search.py --events 1M --epochs 1 --out bench/spark_search.json

On the planted log (``recs synth --seed 0``, ``recs split``, ``recs train-embeddings`` with few epochs:
the index is what is measured, not the model), three builds of the same model, each as its own
process, measured as ``run.py`` measures (wall seconds, peak RSS of the process tree: for Spark that is
the driver, its JVM and the Python workers; ``cpu_s`` in the JSON counts reaped children only, so
it misses the JVM's and its workers' time):

* ``polars``: the single-machine search (faiss over ``--threads`` OpenMP threads);
* ``spark``, ``--shards 1``: the same index file, searched by Spark tasks (``--spark-master``);
* ``spark``, ``--shards 4``: four indexes per target, each searched, top-k merged.

Then, in this process: the overlap of each Spark candidate table with the single-machine one
(share of its (item, candidate) rows found, ``recs.candidates.shards.list_overlap``), whether the
tables are equal row for row, and the hit rates of all three on the test day. Prints a table and
writes everything as JSON. Timings on a shared machine are noisy; the three builds run minutes apart.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import MIB, RECS, label, machine, measure, parse_size

SETS = ("click_to_cart", "cart_to_cart")


def builds(model: Path, work: Path, threads: int, master: str) -> list[tuple[str, int, Path, list[str]]]:
    base = [*RECS, "build-index", "--model", str(model), "--threads", str(threads), "--quiet"]
    spark = ["--engine", "spark", "--spark-master", master]
    return [
        ("polars", 1, work / "index_polars", [*base, "--out", str(work / "index_polars")]),
        ("spark", 1, work / "index_spark_1", [*base, "--out", str(work / "index_spark_1"), *spark, "--shards", "1"]),
        ("spark", 4, work / "index_spark_4", [*base, "--out", str(work / "index_spark_4"), *spark, "--shards", "4"]),
    ]


def compare(reference: Path, index: Path) -> dict[str, Any]:
    from recs.candidates.build import load_candidates
    from recs.candidates.shards import list_overlap

    out: dict[str, Any] = {}
    for name in SETS:
        ref, got = load_candidates(reference, name), load_candidates(index, name)
        out[name] = {"overlap": list_overlap(ref, got), "equal_rows": ref.equals(got), "rows": got.height}
    return out


def hit_rates(index: Path, test: Path) -> dict[str, float]:
    from recs.eval.report import evaluate_index

    report = evaluate_index(index, test)
    return {row["candidate_set"]: row["hit_rate"] for row in report["results"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", default="1M")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--spark-master", default=f"local[{os.cpu_count() or 1}]")
    ap.add_argument("--workdir", type=Path, default=Path("runs/bench/spark_search"))
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    n = parse_size(a.events)
    info = machine()
    work = a.workdir / label(n)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.txt"
    synth, train, test, model = work / "synth.parquet", work / "train.parquet", work / "test.parquet", work / "model"
    for name, cmd in [
        ("synth", [*RECS, "synth", "--events", str(n), "--seed", "0", "--out", str(synth)]),
        ("split", [*RECS, "split", str(synth), "--train", str(train), "--test", str(test)]),
        ("train-embeddings", [*RECS, "train-embeddings", str(train), "--out", str(model), "--epochs", str(a.epochs),
                              "--workers", str(a.threads), "--quiet"]),
    ]:
        print(f"[{label(n)}] {name}", flush=True)
        measure(cmd, log)
    rows: list[dict[str, Any]] = []
    for engine, shards, index, cmd in builds(model, work, a.threads, a.spark_master):
        print(f"[{label(n)}] build-index --engine {engine} --shards {shards}", flush=True)
        r = measure(cmd, log)
        manifest = json.loads((index / "manifest.json").read_text())
        t = manifest["timings"]
        index_s = sum(v for k, v in t.items() if k.startswith("index_"))
        search_s = sum(v for k, v in t.items() if k.startswith("search_"))
        rows.append({"engine": engine, "shards": shards, "wall_s": r["wall_s"], "peak_rss_gib": r["peak_rss_mib"]
                     * MIB / 2**30, "cpu_s": r["cpu_s"], "index_s": index_s, "search_s": search_s,
                     "other_s": r["wall_s"] - index_s - search_s, "index": str(index),
                     "parts": {s: manifest["candidate_sets"][s].get("parts") for s in SETS},
                     "engine_detail": manifest.get("engine")})
    reference = Path(rows[0]["index"])
    for row in rows:
        row["vs_polars"] = compare(reference, Path(row["index"])) if row is not rows[0] else None
        row["hit_rate"] = hit_rates(Path(row["index"]), test)
    items = json.loads((model / "manifest.json").read_text()).get("counts", {})
    print(f"\n{label(n)} events, {items.get('items', '?')} items, k=200, threads {a.threads}, "
          f"spark master {a.spark_master}\n")
    print("| engine | shards | wall s | index s | search s | other s | peak RSS GiB | "
          "overlap C2C / K2K | equal rows | hit rate C2C / K2K |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        v = r["vs_polars"]
        overlap = "-" if v is None else " / ".join(f"{v[s]['overlap']:.4f}" for s in SETS)
        equal = "-" if v is None else ("yes" if all(v[s]["equal_rows"] for s in SETS) else "no")
        hits = " / ".join(f"{r['hit_rate'][s]:.4f}" for s in SETS)
        print(f"| {r['engine']} | {r['shards']} | {r['wall_s']:.1f} | {r['index_s']:.1f} | {r['search_s']:.1f} | "
              f"{r['other_s']:.1f} | {r['peak_rss_gib']:.2f} | {overlap} | {equal} | {hits} |")
    a.out.write_text(json.dumps({"events": n, "epochs": a.epochs, "threads": a.threads,
                                 "spark_master": a.spark_master, "machine": info, "model_counts": items,
                                 "builds": rows}, indent=2, default=str) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
