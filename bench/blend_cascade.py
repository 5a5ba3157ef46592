"""What the blend's scoring cascade costs and buys: one blend fitted per log, its lists scored with
each cascade setting, timed and scored with the hit rate.

The blend's model scores every row of each item's union (~3x k rows) with every tree; the cascade
(``BlendConfig.cascade_trees`` / ``cascade_keep``) scores all rows with the first trees only and
finishes the best ``cascade_keep`` rows per item. A kept row's score is the full model's (trees add
up), so what a cascade can lose is only a candidate the first trees ranked below ``cascade_keep``
that the full model would have put in the top k. This measures that loss (hit rates per setting, on
the same fitted model, so the difference is the cascade's alone) and the scoring time it saves
(median of ``--repeat`` runs per setting, after one warm-up call that spills the sources' lists).

    python bench/blend_cascade.py --train T.parquet --test S.parquet --name planted --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from recs.candidates.blend import BlendCandidates
from recs.config import EvalConfig, MethodConfig
from recs.eval.hitrate import hit_rate

SETTINGS: tuple[tuple[int, int], ...] = ((0, 0), (10, 400), (10, 300), (20, 300))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--name", default="log")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--settings", default=None,
                    help="first_trees:keep,... (default: 0:0,10:400,10:300,20:300); 0 trees = no cascade")
    a = ap.parse_args()
    train, test = pl.read_parquet(a.train), pl.read_parquet(a.test)
    methods = MethodConfig()
    gen = BlendCandidates(methods=methods)
    t = time.perf_counter()
    gen.fit(train)
    fit_s = time.perf_counter() - t
    rows: list[dict[str, Any]] = []
    pairs = methods.index.pairs
    k = methods.index.k
    for source, target in pairs:  # warm-up: the item-level sources' spills, shared by every later call
        gen.candidates(source, target, k)
    settings = SETTINGS if a.settings is None else tuple(
        (int(t), int(k)) for t, k in (pair.split(":") for pair in a.settings.split(",")))
    for trees, keep in settings:
        gen.methods = replace(gen.methods, blend=replace(gen.methods.blend, cascade_trees=trees,
                                                         cascade_keep=max(keep, 1)))
        row: dict[str, Any] = {"cascade_trees": trees, "cascade_keep": keep}
        for source, target in pairs:
            seconds = []
            for _ in range(a.repeat):
                t = time.perf_counter()
                lists = gen.candidates(source, target, k)
                seconds.append(time.perf_counter() - t)
            name = f"{source}_to_{target}"
            rate = hit_rate(test, lists, source, EvalConfig())
            row[f"{name}_s"] = round(statistics.median(seconds), 2)
            row[f"{name}_hit_rate"] = round(rate["hit_rate"], 4)
            row[f"{name}_hits"] = rate["hits"]
            row["trees"] = {f"{s}_to_{t}": gen._rankers[(s, t)].num_trees() for s, t in pairs}
        rows.append(row)
    print(f"{a.name}: blend fitted in {fit_s:.1f} s; scoring per setting (both pairs; trees "
          f"{rows[0]['trees']})")
    print(f"{'trees':>5} {'keep':>5} " + " ".join(f"{f'{s}->{t} s':>14} {'hit rate':>9}" for s, t in pairs))
    for r in rows:
        print(f"{r['cascade_trees']:>5} {r['cascade_keep']:>5} " + " ".join(
            f"{r[f'{s}_to_{t}_s']:>14} {r[f'{s}_to_{t}_hit_rate']:>9}" for s, t in pairs))
    if a.json:
        a.json.write_text(json.dumps({"log": a.name, "train": str(a.train), "fit_s": round(fit_s, 1),
                                      "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
