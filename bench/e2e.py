"""One end-to-end run at one log size: synth -> split -> train-embeddings -> build-index -> eval-hitrate.

    .venv/bin/python bench/e2e.py --events 10M --epochs 5 --out bench/e2e_10m.json

Every command runs as its own process with the defaults a user gets (regularization on, ``--score
prob`` with backoff), measured as in ``run.py`` (wall seconds, peak RSS of the process tree).
Prints a table of minutes and peak memory per stage, with where the time went (the artifacts'
timings), and writes it as JSON. No reference runs here: ``run.py`` has the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import MIB, RECS, measure, parse_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", default="10M")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--workdir", type=Path, default=Path("runs/bench/e2e"))
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    n = parse_size(a.events)
    work = a.workdir / a.events
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.txt"
    synth, train, test = work / "synth.parquet", work / "train.parquet", work / "test.parquet"
    model, index, evalj = work / "model", work / "index", work / "eval.json"
    w = str(a.workers)
    steps = [
        ("synth", [*RECS, "synth", "--events", str(n), "--seed", "0", "--out", str(synth)]),
        ("split", [*RECS, "split", str(synth), "--train", str(train), "--test", str(test)]),
        ("train-embeddings", [*RECS, "train-embeddings", str(train), "--out", str(model), "--epochs",
                              str(a.epochs), "--workers", w, "--quiet"]),
        ("build-index", [*RECS, "build-index", "--model", str(model), "--out", str(index), "--threads", w,
                         "--quiet"]),
        ("eval-hitrate", [*RECS, "eval-hitrate", "--index", str(index), "--sessions", str(test), "--json",
                          str(evalj)]),
    ]
    rows: list[dict[str, Any]] = []
    for name, cmd in steps:
        print(f"[{a.events}] {name}", flush=True)
        r = measure(cmd, log)
        rows.append({"stage": name, "minutes": r["wall_s"] / 60, "peak_rss_gib": r["peak_rss_mib"] * MIB / 2**30,
                     "cores_busy": r["cpu_s"] / r["wall_s"]})
    detail = {
        "model": json.loads((model / "manifest.json").read_text()),
        "index": json.loads((index / "manifest.json").read_text()),
        "eval": json.loads(evalj.read_text())["results"],
    }
    total = {"stage": "total (without synth)", "minutes": sum(r["minutes"] for r in rows[1:]),
             "peak_rss_gib": max(r["peak_rss_gib"] for r in rows[1:]), "cores_busy": None}
    print("\n| stage | minutes | peak RSS GiB | cores busy |\n|---|---|---|---|")
    for r in [*rows, total]:
        busy = "" if r["cores_busy"] is None else f"{r['cores_busy']:.1f}"
        print(f"| {r['stage']} | {r['minutes']:.1f} | {r['peak_rss_gib']:.2f} | {busy} |")
    a.out.write_text(json.dumps({"events": n, "epochs": a.epochs, "workers": a.workers, "stages": rows,
                                 "total": total, "detail": detail}, indent=2, default=str))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
