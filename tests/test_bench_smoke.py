"""Smoke test of the benchmark harness: it runs end to end on a tiny log and its table has its keys.

The benchmarks themselves never run in CI (minutes, and timing on CI machines means nothing); this
only keeps ``bench/run.py`` and ``bench/refs.py`` from rotting, and checks the one property the
harness asserts about recs: its co-occurrence pairs equal the plain polars reference's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_run_smoke(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(ROOT / "bench" / "run.py"), "--events", "20k", "--stages", "data,cooc",
           "--repeats", "1", "--out", str(out), "--workdir", str(tmp_path / "work")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    payload = json.loads(out.read_text())
    assert {"cores", "memory_gib"} <= set(payload["machine"])
    stages = {row["stage"]: row for row in payload["table"]}
    assert {"synth", "split", "tokenize + co-occurrence"} <= set(stages)
    for row in stages.values():
        assert {"events", "wall_s", "throughput", "peak_rss_mib", "ratio"} <= set(row)
        assert row["events"] == "20k" and row["wall_s"] > 0 and row["peak_rss_mib"] > 0
    cooc = payload["sizes"][0]["cooc"]
    assert cooc["same_output"] and cooc["pairs"] > 0
    assert payload["sizes"][0]["tail"]["max_session_events"] >= 300  # the OTTO-like tail is there
    assert "| tokenize + co-occurrence | 20k |" in done.stdout
