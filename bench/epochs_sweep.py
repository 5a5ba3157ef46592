"""Hit rate against training epochs on planted logs, to choose the default epochs rule.

    python bench/epochs_sweep.py --events 100k,10M --epochs 3,5,10,20,40 --out bench/epochs_sweep.json

For each log size and epoch count: train the default model (paper dims, regularization on), then
score Click-to-Cart and Cart-to-Cart at k=200 by *exact* cosine search over the cart vectors for the
items that trigger in the test day (the quantity being tuned is the model, not HNSW), with the
README's hit-rate definition. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import polars as pl

from recs.candidates.base import candidate_frame
from recs.config import EvalConfig, TrainConfig
from recs.embeddings.similarity import normalized
from recs.embeddings.train import train
from recs.eval.hitrate import hit_rate
from recs.sessions.split import split_sessions
from recs.sessions.synth import SynthConfig, generate


def parse_size(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * mult)


def exact_candidates(model, source: str, target: str, items: pl.Series, k: int) -> pl.DataFrame:
    src = model.tokens_of(source).filter(pl.col("item_id").is_in(items.implode()))
    tgt = model.tokens_of(target)
    q = normalized(model.vectors_in[src["token_id"].to_numpy()])
    t = normalized(model.vectors_in[tgt["token_id"].to_numpy()])
    width = min(k + 1, t.shape[0])
    ids = np.empty((q.shape[0], width), dtype=np.int64)
    scores = np.empty((q.shape[0], width), dtype=np.float32)
    for a in range(0, q.shape[0], 2048):
        s = q[a : a + 2048] @ t.T
        part = np.argpartition(-s, width - 1, axis=1)[:, :width]
        ps = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        ids[a : a + 2048] = np.take_along_axis(part, order, axis=1)
        scores[a : a + 2048] = np.take_along_axis(ps, order, axis=1)
    return candidate_frame(src["item_id"], tgt["item_id"], ids, scores, k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", default="100k")
    ap.add_argument("--epochs", default="3,5,10,20,40")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default="bench/epochs_sweep.json")
    args = ap.parse_args()
    rows = []
    for size in (parse_size(s) for s in args.events.split(",")):
        frame, _ = generate(SynthConfig(events=size, seed=args.seed))
        split = split_sessions(frame)
        del frame
        for epochs in (int(e) for e in args.epochs.split(",")):
            t = time.perf_counter()
            model = train(split.train, TrainConfig(epochs=epochs, workers=args.workers, seed=args.seed))
            seconds = time.perf_counter() - t
            row = {"events": size, "epochs": epochs, "train_s": round(seconds, 1),
                   "tokens": model.vocab.height, "corpus_words": model.manifest["counts"]["corpus_words"]}
            for source in ("click", "cart"):
                active = split.test.filter(pl.col("interaction") == source)["item_id"].unique()
                cands = exact_candidates(model, source, "cart", active, 200)
                row[f"{source}_to_cart"] = round(hit_rate(split.test, cands, source, EvalConfig())["hit_rate"], 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
            with open(args.out, "w") as f:
                json.dump({"seed": args.seed, "workers": args.workers, "rows": rows}, f, indent=2)
    print(pl.DataFrame(rows))


if __name__ == "__main__":
    main()
