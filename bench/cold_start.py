"""Cold start, measured: coverage and hit rate with and without roll-up, per group representation.

Three logs, each split in time (train before the last day, test on it), each with a catalogue that
knows every listing, as a marketplace's does:

* ``planted``: ``recs synth --new-items 0.2`` (shops and categories; a fifth of the items is listed
  on the test day, so training never sees them);
* ``taobao``: the two Taobao chunks of ../shared/data (categories, no shops), split at 2017-12-03
  00:00 China time; the catalogue is every item of the log with its category;
* ``one-off``: a second-hand-style log: string ids, five interactions (a third of the favorites
  become ``message``: message the seller), categories but no shops, and a catalogue so large that
  about 45% of the items seen are seen once.

For each: ``off`` (no roll-up: today's index), ``mean`` and ``trained`` (``--entity``) group vectors;
Click-to-Cart and Cart-to-Cart scored by ``recs.eval.cold.cold_split`` (all targets, targets whose
item or a trigger is new to training, coverage of all and of new active items). One model per log
(trained once with its entities: the item vectors are the same in every row of a log).

    python bench/cold_start.py --json bench/cold_start.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

from recs.candidates.catalog import catalog_for
from recs.candidates.embedding import EmbeddingCandidates
from recs.candidates.rollup import RollUp
from recs.columns import Col, Interaction
from recs.config import EvalConfig, IndexConfig, SplitConfig, SynthConfig, TrainConfig
from recs.embeddings.train import train
from recs.eval.cold import cold_split
from recs.sessions.io import read_sessions
from recs.sessions.split import split_sessions
from recs.sessions.synth import generate

ROOT = Path(__file__).resolve().parents[1]
TAOBAO = sorted((ROOT.parent / "shared" / "data" / "taobao_userbehavior").glob("*/*.csv"))
PAIRS = ((Interaction.CLICK, Interaction.CART), (Interaction.CART, Interaction.CART))
REPRESENTATIONS = ("off", "mean", "trained")


def planted(events: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]:
    log, world = generate(SynthConfig(events=events, seed=seed, new_items=0.2))
    return log, world.catalog(), (Col.SHOP, Col.CATEGORY)


def one_off(events: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]:
    """Many items seen once: a catalogue of events / 1.8 items, flat popularity (45% of the training items
    are seen once; the share is in the JSON)."""
    log, world = generate(SynthConfig(events=events, seed=seed, items=int(events / 1.8), zipf_a=0.6))
    fav = log[Col.INTERACTION] == Interaction.FAVORITE
    message = fav & (pl.int_range(log.height, eager=True) % 3 == 0)
    log = log.with_columns(
        pl.when(message).then(pl.lit("message")).otherwise(pl.col(Col.INTERACTION)).alias(Col.INTERACTION),
        ("L" + pl.col(Col.ITEM).cast(pl.String)).alias(Col.ITEM),
        ("c" + pl.col(Col.CATEGORY).cast(pl.String)).alias(Col.CATEGORY),
    ).drop(Col.SHOP)
    catalog = world.catalog().select(("L" + pl.col(Col.ITEM).cast(pl.String)).alias(Col.ITEM),
                                     ("c" + pl.col(Col.CATEGORY).cast(pl.String)).alias(Col.CATEGORY))
    return log, catalog, (Col.CATEGORY,)


def taobao(work: Path) -> tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]:
    out = work / "taobao.parquet"
    subprocess.run([sys.executable, "-c", "from recs.cli.main import main; main()", "prepare", *map(str, TAOBAO),
                    "--format", "taobao", "--out", str(out)], check=True, capture_output=True)
    log = read_sessions(out)
    catalog = log.group_by(Col.ITEM).agg(pl.col(Col.CATEGORY).last()).sort(Col.ITEM)
    return log, catalog, (Col.CATEGORY,)


def run_log(name: str, log: pl.DataFrame, catalog: pl.DataFrame, entities: tuple[str, ...], cutoff: str | None,
            workers: int) -> list[dict[str, Any]]:
    split = split_sessions(log, SplitConfig(cutoff=cutoff))
    counts = split.train.group_by(Col.ITEM).len()
    known = counts[Col.ITEM]
    facts = {"log": name, "train_events": split.train.height, "test_events": split.test.height,
             "train_items": known.len(), "catalog_items": catalog.height,
             "items_seen_once": float((counts["len"] == 1).mean()),
             "test_items_new": float(split.test.select(~pl.col(Col.ITEM).unique().is_in(known.implode()))
                                     .mean().item())}
    t = time.perf_counter()
    model = train(split.train, TrainConfig(entities=entities, workers=workers, seed=0))
    facts["train_s"] = time.perf_counter() - t
    rows = []
    for rep in REPRESENTATIONS:
        cfg = IndexConfig(rollup=rep, threads=workers)
        gen = EmbeddingCandidates(index_config=cfg, model=model)
        if rep != "off":
            table = catalog_for(model.items, catalog, model.vocab.schema[Col.ITEM], name)
            gen.rollup = RollUp(table, rep, cfg.rollup_per_group, dict(model.groups))
        for source, target in PAIRS:
            t = time.perf_counter()
            cands = gen.candidates(source, target, cfg.k)
            build_s = time.perf_counter() - t
            scored = cold_split(split.test, cands, source, known, EvalConfig())
            rows.append({**facts, "rollup": rep, "set": f"{source}_to_{target}", "build_s": build_s,
                         "rows": cands.height, **scored,
                         **({"levels": gen.set_details(source, target).get("rollup")} if rep != "off" else {})})
            print(f"{name:8} {rep:8} {source}->{target}: hit {scored['hit_rate']:.4f} "
                  f"new-either {scored['new_either_hit_rate']:.4f} ({scored['new_either_hits']}/"
                  f"{scored['new_either_targets_with_trigger']}) coverage {scored['coverage']:.3f} "
                  f"new coverage {scored['new_coverage']:.3f}", flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| log | roll-up | set | hit rate (all) | new target | new trigger | known both | coverage | "
            "new items' coverage |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        def cell(split: str, r: dict[str, Any] = r) -> str:
            n = r[f"{split}_targets_with_trigger"]
            return f"{r[f'{split}_hit_rate']:.4f} ({r[f'{split}_hits']}/{n})" if n else "- (0)"
        lines.append(f"| {r['log']} | {r['rollup']} | {r['set']} | {r['hit_rate']:.4f} ({r['hits']}/"
                     f"{r['targets_with_trigger']}) | {cell('new_target')} | {cell('new_trigger')} | "
                     f"{cell('known_both')} | {r['coverage']:.3f} | {r['new_coverage']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--logs", default="planted,taobao,one-off")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    # --json keeps the rows of logs not run this time, so one log can be re-run alone
    rows: list[dict[str, Any]] = json.loads(args.json.read_text()) if args.json and args.json.exists() else []
    with tempfile.TemporaryDirectory() as work:
        for name in args.logs.split(","):
            if name == "planted":
                new = run_log(name, *planted(args.events, 0), None, args.workers)
            elif name == "one-off":
                new = run_log(name, *one_off(args.events, 1), None, args.workers)
            elif name == "taobao" and TAOBAO:
                new = run_log(name, *taobao(Path(work)), "2017-12-03T00:00:00+08:00", args.workers)
            else:
                continue
            rows = [r for r in rows if r["log"] != name] + new
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1, default=str))
    print(table(rows))


if __name__ == "__main__":
    main()
