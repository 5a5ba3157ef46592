"""Cost of ``build-index --method blend`` against ours, end to end, in one run on one log.

Each arm is the commands a user types, run as child processes one after the other (so their peaks
are their own), timed by wall clock, peak memory from the child's rusage (max RSS):

* ``ours``: ``recs train-embeddings TRAIN`` then ``recs build-index --model``;
* ``blend``: ``recs build-index --method blend --sessions TRAIN`` (fits every source twice: on the part
  before the validation cut, then on the whole of TRAIN; trains the ranker; scores the union).

Both are then scored with ``recs eval-hitrate`` on TEST, so the table says what the time buys.
The ratio blend / ours is the number to read (the issue's target: at most 3x); absolute seconds move
with what else the shared machine runs.

    python bench/blend_cost.py --events 1000000 --json bench/blend_cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RECS = str(Path(sys.executable).with_name("recs"))
# each command runs under its own small Python parent, whose children's rusage is that command's alone
_MEASURED = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
             "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "print(u.ru_utime + u.ru_stime, u.ru_maxrss, file=sys.stderr); sys.exit(rc)")


def run(args: list[str]) -> dict[str, Any]:
    """Run one recs command; wall seconds and its own peak RSS in MiB."""
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MEASURED, RECS, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"recs {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    cpu, peak_kib = done.stderr.strip().splitlines()[-1].split()  # Linux reports KiB
    # CPU seconds (user + system, every thread) next to wall: on a machine shared with other jobs the wall
    # clock moves with their load, the CPU time a command needs much less
    return {"wall_s": round(wall, 1), "cpu_s": round(float(cpu), 1), "peak_mib": round(int(peak_kib) / 1024, 1),
            "args": args}


def hit_rates(index: Path, test: Path, out: Path) -> dict[str, float]:
    run(["eval-hitrate", "--index", str(index), "--sessions", str(test), "--bootstrap", "0", "--json", str(out)])
    rows = json.loads(out.read_text())["results"]
    return {r["candidate_set"]: r["hit_rate"] for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sources", default=None, help="--sources of the blend (default: its own)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    a = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        d = a.dir or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        log, train, test = d / "synth.parquet", d / "train.parquet", d / "test.parquet"
        if not train.exists():
            run(["synth", "--events", str(a.events), "--seed", str(a.seed), "--out", str(log)])
            run(["split", str(log), "--train", str(train), "--test", str(test)])
        arms: dict[str, Any] = {}
        t_model = run(["train-embeddings", str(train), "--out", str(d / "model"), "--quiet"])
        t_index = run(["build-index", "--model", str(d / "model"), "--out", str(d / "index"), "--quiet"])
        arms["ours"] = {"steps": [t_model, t_index], "wall_s": round(t_model["wall_s"] + t_index["wall_s"], 1),
                        "cpu_s": round(t_model["cpu_s"] + t_index["cpu_s"], 1),
                        "peak_mib": max(t_model["peak_mib"], t_index["peak_mib"]),
                        "hit_rate": hit_rates(d / "index", test, d / "ours.json")}
        blend_args = ["build-index", "--method", "blend", "--sessions", str(train), "--out", str(d / "blend"),
                      "--quiet", *(["--sources", a.sources] if a.sources else [])]
        t_blend = run(blend_args)
        manifest = json.loads((d / "blend" / "manifest.json").read_text())
        arms["blend"] = {"steps": [t_blend], "wall_s": t_blend["wall_s"], "cpu_s": t_blend["cpu_s"],
                         "peak_mib": t_blend["peak_mib"],
                         "hit_rate": hit_rates(d / "blend", test, d / "blend.json"),
                         "timings": manifest.get("timings", {}),
                         "validation": manifest["method"]["config"].get("validation", {}),
                         "details": {k: v.get("blend", {}) for k, v in manifest["candidate_sets"].items()}}
    ratio = arms["blend"]["wall_s"] / arms["ours"]["wall_s"]
    cpu_ratio = arms["blend"]["cpu_s"] / arms["ours"]["cpu_s"]
    result = {"events": a.events, "seed": a.seed, "cores": os.cpu_count(), "load_before": load_before,
              "load_after": os.getloadavg(),
              "arms": arms, "blend_over_ours_wall": round(ratio, 2), "blend_over_ours_cpu": round(cpu_ratio, 2)}
    print(f"{'arm':<8}{'wall s':>10}{'CPU s':>10}{'peak MiB':>10}  hit rates")
    for name, arm in arms.items():
        rates = ", ".join(f"{k} {v:.4f}" for k, v in arm["hit_rate"].items())
        print(f"{name:<8}{arm['wall_s']:>10.1f}{arm['cpu_s']:>10.1f}{arm['peak_mib']:>10.0f}  {rates}")
    print(f"blend / ours: wall {ratio:.2f}x, CPU {cpu_ratio:.2f}x")
    if a.json:
        a.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
