"""Hit rate on one long session against the same events in 20-event sessions: old vs linear triggers.

    .venv/bin/python bench/eval_long_sessions.py --new-only 200k,1M --short-both 1M   # the committed JSON
    .venv/bin/python bench/eval_long_sessions.py --events 2k --out /tmp/x.json          # smoke, ~10 s

For each size the log is generated once (seeded): items drawn from a small catalogue (so items
repeat), 60% click, 30% cart, 10% purchase, one second apart. ``long`` puts every event in one
session, ``short`` cuts the same events into 20-event sessions. Each case runs as its own process
(``--case``), measured from outside like ``bench/run.py`` does (peak RSS = psutil polling of the tree
and ``ru_maxrss``): ``recs.eval.report.evaluate_sets`` with the two candidate sets of
``eval-hitrate`` (Click-to-Cart from clicks, Cart-to-Cart from carts; 20 candidates per item), with
``target_triggers`` either the current, linear one (``new``) or the targets x earlier source events
join it replaced (``old``, kept below as the reference). ``hit_s`` is the time of ``evaluate_sets``
inside the process; both implementations must return the same hit-rate rows, which is checked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from run import fmt, label, machine, measure, parse_size  # noqa: E402

SESSION_LEN = 20
ITEMS = 500
CANDIDATES = 20


def old_target_triggers(test: Any, source: str, cfg: Any) -> tuple[Any, Any]:
    """The implementation before the linear one: targets x every earlier source event of a session."""
    import polars as pl

    from recs.columns import Col
    from recs.eval.hitrate import _SITEM, _SPOS, _T, _TITEM, _TPOS, _positions

    ev = _positions(test)
    targets = (
        ev.filter(pl.col(Col.INTERACTION).is_in(list(cfg.targets)))
        .select(Col.SESSION, pl.col(Col.POS).alias(_TPOS), pl.col(Col.ITEM).alias(_TITEM))
        .with_row_index(_T)
    )
    sources = ev.filter(pl.col(Col.INTERACTION) == source).select(
        Col.SESSION, pl.col(Col.POS).alias(_SPOS), pl.col(Col.ITEM).alias(_SITEM)
    )
    triggers = (
        targets.join(sources, on=Col.SESSION, how="inner")
        .filter(pl.col(_SPOS) < pl.col(_TPOS))
        .group_by(_T, _SITEM)
        .agg(pl.col(_SPOS).max())
        .with_columns(pl.col(_SPOS).rank("ordinal", descending=True).over(_T).alias("trigger_rank"))
        .filter(pl.col("trigger_rank") <= cfg.triggers)
        .select(_T, _SITEM, "trigger_rank")
    )
    return targets, triggers


def make_log(events: int, layout: str, seed: int) -> tuple[Any, dict[str, tuple[str, Any]]]:
    """The test log (same events for both layouts) and the two small candidate tables."""
    from datetime import datetime, timezone

    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    items = rng.integers(0, ITEMS, events)
    inter = rng.choice(np.array(["click", "cart", "purchase"]), events, p=[0.6, 0.3, 0.1])
    i = np.arange(events)
    sessions = np.zeros(events, dtype=np.int64) if layout == "long" else i // SESSION_LEN
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    test = pl.DataFrame({"session_id": sessions, "item_id": items, "interaction": inter}).with_columns(
        (pl.lit(t0) + pl.duration(seconds=pl.Series(i))).alias("timestamp")
    )
    sets = {}
    for name, source in (("click_to_cart", "click"), ("cart_to_cart", "cart")):
        src = np.repeat(np.arange(ITEMS), CANDIDATES)
        sets[name] = (source, pl.DataFrame({"item_id": src, "candidate_item_id": rng.integers(0, ITEMS, src.size),
                                            "rank": np.tile(np.arange(1, CANDIDATES + 1), ITEMS),
                                            "score": np.ones(src.size)}))
    return test, sets


def run_case(a: argparse.Namespace) -> None:
    """Child process: one (size, layout, implementation); writes its hit-rate rows and timing."""
    import recs.eval.hitrate as hitrate
    from recs.config import EvalConfig
    from recs.eval.report import evaluate_sets

    if a.impl == "old":
        hitrate.target_triggers = old_target_triggers  # hit_table looks it up in the module
    test, sets = make_log(a.case, a.layout, a.seed)
    started = time.perf_counter()
    rows = evaluate_sets(test, sets, EvalConfig(triggers=a.triggers))
    hit_s = time.perf_counter() - started
    work = {name: hitrate.trigger_work(test, source, EvalConfig(triggers=a.triggers))
            for name, (source, _) in sets.items()} if a.impl == "new" else None
    a.json.write_text(json.dumps({"hit_s": hit_s, "results": rows, "trigger_work": work}, default=str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", default="5k,20k", help="Sizes run with both implementations.")
    ap.add_argument("--new-only", default="", help="Further sizes run with the linear one only (e.g. 200k,1M).")
    ap.add_argument("--short-both", default="", help="Further sizes run on 20-event sessions only, both ways.")
    ap.add_argument("--triggers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "eval_long_sessions.json")
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench" / "eval_long_sessions")
    ap.add_argument("--case", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--layout", choices=("long", "short"), help=argparse.SUPPRESS)
    ap.add_argument("--impl", choices=("old", "new"), help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.case is not None:
        run_case(a)
        return
    a.workdir.mkdir(parents=True, exist_ok=True)
    log = a.workdir / "bench.log"
    specs = ((a.events, ("long", "short"), ("old", "new")), (a.new_only, ("long", "short"), ("new",)),
             (a.short_both, ("short",), ("old", "new")))
    plan = [(parse_size(x), layouts, impls) for spec, layouts, impls in specs for x in spec.split(",") if x.strip()]
    info = machine()
    rows: list[dict[str, Any]] = []
    for events, layouts, impls in plan:
        for layout in layouts:
            results = {}
            for impl in impls:
                out = a.workdir / f"{label(events)}_{layout}_{impl}.json"
                cmd = [sys.executable, str(Path(__file__).resolve()), "--case", str(events), "--layout", layout,
                       "--impl", impl, "--triggers", str(a.triggers), "--seed", str(a.seed), "--json", str(out)]
                print(f"[{label(events)} {layout} {impl}]", flush=True)
                m = measure(cmd, log)
                child = json.loads(out.read_text())
                results[impl] = child["results"]
                rows.append({"events": events, "layout": layout, "impl": impl, "wall_s": m["wall_s"],
                             "hit_s": child["hit_s"], "peak_rss_mib": m["peak_rss_mib"], "cpu_s": m["cpu_s"],
                             "trigger_work": child["trigger_work"], "results": child["results"]})
            if len(results) == 2 and results["old"] != results["new"]:
                raise SystemExit(f"bench: old and new hit rates differ at {label(events)} {layout}")
    payload = {"machine": info, "args": {k: str(v) for k, v in vars(a).items() if v is not None},
               "table": rows, "load_avg_at_end": os.getloadavg()}
    a.out.write_text(json.dumps(payload, indent=1, default=str))
    print("\n| events | sessions | impl | peak RSS MiB | hit rate s (in process) | process s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        sess = "1" if r["layout"] == "long" else f"{SESSION_LEN}-event"
        print(f"| {label(r['events'])} | {sess} | {r['impl']} | {fmt(r['peak_rss_mib'], 0)} | {fmt(r['hit_s'], 2)} "
              f"| {fmt(r['wall_s'], 1)} |")
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    main()
