"""Time and peak memory of ``recs prepare`` on a 10M-event raw Taobao-format log.

The log comes from ``recs.sessions.synth.generate`` (planted sessions, users, categories) written
the way Tianchi ships UserBehavior.csv: no header, ``user_id,item_id,category_id,pv|fav|cart|buy,
unix seconds``, rows grouped by user. Generation and ``recs prepare`` each run in their own
child process, and this parent stays small: Linux carries a parent's resident size into a forked
child's ``ru_maxrss``, so a parent holding the 10M-row frame would inflate the number. The peak is
the child's ``ru_maxrss`` from ``wait4`` (it misses no spike), cross-checked by polling with psutil.

    .venv/bin/python bench/prepare_10m.py                      # 10M events, writes bench/prepare_10m.json
    .venv/bin/python bench/prepare_10m.py --events 1000000 --json /tmp/p1m.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from run import measure  # bench/run.py: the harness's process-tree wall time and peak RSS

from recs.columns import Col, Interaction
from recs.sessions.synth import SynthConfig, generate

HERE = Path(__file__).resolve().parent
RAW_NAME = {Interaction.CLICK: "pv", Interaction.FAVORITE: "fav", Interaction.CART: "cart", Interaction.PURCHASE: "buy"}


def write_taobao_csv(events: int, seed: int, path: Path) -> dict[str, int]:
    """Generate ``events`` planted events and write them as a raw Taobao UserBehavior CSV."""
    frame, _ = generate(SynthConfig(events=events, seed=seed))
    raw = frame.sort(Col.USER, Col.TIMESTAMP, maintain_order=True).select(
        pl.col(Col.USER),
        pl.col(Col.ITEM),
        pl.col(Col.CATEGORY),
        pl.col(Col.INTERACTION).replace_strict(RAW_NAME),
        pl.col(Col.TIMESTAMP).dt.epoch("s"),
    )
    raw.write_csv(path, include_header=False)
    return {"events": raw.height, "users": frame[Col.USER].n_unique(), "items": frame[Col.ITEM].n_unique()}


def run_prepare(raw: Path, out: Path, report: Path, log: Path) -> dict[str, float]:
    """Run ``recs prepare`` as a child process, measured by the benchmark harness's ``measure``."""
    cmd = [sys.executable, "-c", "from recs.cli.main import main; main()", "prepare", str(raw), "--format", "taobao",
           "--out", str(out), "--json", str(report), "--quiet"]
    m = measure(cmd, log)
    return {"wall_s": round(m["wall_s"], 2), "peak_rss_mib": round(m["peak_rss_mib"], 1), "cpu_s": round(m["cpu_s"], 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workdir", type=Path, default=None, help="Where the raw log and output go [default: a temp dir].")
    p.add_argument("--json", type=Path, default=HERE / "prepare_10m.json")
    p.add_argument("--generate-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.generate_only:
        print(json.dumps(write_taobao_csv(args.events, args.seed, args.generate_only)))
        return

    with tempfile.TemporaryDirectory(prefix="recs-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        raw, out, rep = work / "UserBehavior.csv", work / "sessions.parquet", work / "report.json"
        t = time.perf_counter()
        child = subprocess.run(
            [sys.executable, __file__, "--events", str(args.events), "--seed", str(args.seed),
             "--generate-only", str(raw)],
            check=True, capture_output=True, text=True,
        )
        generated = json.loads(child.stdout)
        gen_s = time.perf_counter() - t
        measured = run_prepare(raw, out, rep, work / "prepare.log")
        report = json.loads(rep.read_text())
        result = {
            "events": generated["events"],
            "raw_csv_mib": round(raw.stat().st_size / 2**20, 1),
            "generate_s": round(gen_s, 1),
            **measured,
            "events_per_s": round(generated["events"] / measured["wall_s"]),
            "sessions": report["sessions"],
            "users": report["users"],
            "items": report["items"],
            "events_written": report["events"],
            "dedupe_removed": report["dedupe_removed"],
            "output_mib": round(out.stat().st_size / 2**20, 1),
            "polars": pl.__version__,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
        }
    assert result["events_written"] + result["dedupe_removed"] == result["events"], result
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    width = max(map(len, result))
    for k, v in result.items():
        print(f"{k:<{width}}  {v:,}" if isinstance(v, int | float) else f"{k:<{width}}  {v}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(peak RSS of this measuring process: {own:,.0f} MiB)")


if __name__ == "__main__":
    main()
