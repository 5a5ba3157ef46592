"""``build-index --catalog``: one search per distinct group row instead of one per cold listing, measured.

A planted log (``recs synth``) with a catalogue much larger than the items seen in training, as a
marketplace's is: most listings have no vector and ask with their shop's (or category's) row, so a
catalogue of N listings in S shops used to make about N searches for S distinct query vectors
(issue 21: 1,001,353 searches for about 300 shop vectors at 1M rows, 84 s at --k 20 and over 25 min at
--k 200). The index is built twice from the same model, with the searches deduplicated (now) and
per listing (``recs.candidates.rollup.DEDUPE_GROUP_QUERIES = False``, the old path): the table
prints the cold queries, the searches each way, the build times, and whether every candidate file is
identical (it must be).

    python bench/catalog_dedup.py --json bench/catalog_dedup.json     # under 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

import recs.candidates.rollup as rollup
from recs.candidates.build import build_index
from recs.config import IndexConfig, SynthConfig, TrainConfig
from recs.embeddings.train import train_to_dir
from recs.sessions.synth import generate


def run(events: int, items: int, k: int, seed: int, threads: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        log, world = generate(SynthConfig(events=events, seed=seed, items=items, new_items=0.2))
        log.write_parquet(d / "s.parquet")
        catalog = world.catalog()
        catalog.write_parquet(d / "cat.parquet")
        t = time.perf_counter()
        train_to_dir(d / "s.parquet", d / "model", TrainConfig(dim=32, epochs=1, workers=threads, seed=seed))
        train_s = time.perf_counter() - t
        searched: list[int] = []
        real = rollup.search_blocks

        def counting(index: Any, queries: Any, *args: Any, **kwargs: Any) -> Any:
            searched.append(len(queries))
            return real(index, queries, *args, **kwargs)

        rollup.search_blocks = counting
        out: dict[str, Any] = {"events": events, "catalogue_items": catalog.height,
                               "shops": catalog["shop_id"].n_unique(), "categories": catalog["category"].n_unique(),
                               "k": k, "threads": threads, "train_s": round(train_s, 2)}
        files = {}
        try:
            for dedupe in (True, False):
                rollup.DEDUPE_GROUP_QUERIES = dedupe
                searched.clear()
                index = d / f"index-{dedupe}"
                t = time.perf_counter()
                manifest = build_index(d / "model", index, IndexConfig(k=k, threads=threads), catalog=d / "cat.parquet")
                tag = "dedup" if dedupe else "per_listing"
                out[f"{tag}_build_s"] = round(time.perf_counter() - t, 2)
                out[f"{tag}_searches"] = sum(searched)
                files[dedupe] = {p.name: pl.read_parquet(p) for p in sorted((index / "candidates").glob("*.parquet"))}
                sets = manifest["candidate_sets"]
                out["cold_queries"] = sum(int(v.get("rollup", {}).get("queries", {}).get(level, 0))
                                          for v in sets.values() for level in ("shop", "category"))
        finally:
            rollup.search_blocks = real
            rollup.DEDUPE_GROUP_QUERIES = True
        out["identical_lists"] = files[True].keys() == files[False].keys() and all(
            files[True][n].equals(files[False][n]) for n in files[True])
        out["speedup"] = round(out["per_listing_build_s"] / max(out["dedup_build_s"], 1e-9), 2)
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--items", type=int, default=80_000, help="catalogue size (most never seen in training)")
    ap.add_argument("--k", type=int, nargs="+", default=[20, 100])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = [run(args.events, args.items, k, args.seed, args.threads) for k in args.k]
    cols = ["k", "catalogue_items", "shops", "cold_queries", "per_listing_searches", "dedup_searches",
            "per_listing_build_s", "dedup_build_s", "speedup", "identical_lists"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r.get(c):,}" if isinstance(r.get(c), int) and not isinstance(r.get(c), bool)
                         else str(r.get(c)) for c in cols))
    if args.json:
        args.json.write_text(json.dumps({"command": "python bench/catalog_dedup.py", "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
