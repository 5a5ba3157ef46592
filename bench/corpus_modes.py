"""gensim input modes compared: ``corpus_file`` (C threads read a text file) vs a Python iterable.

    python bench/corpus_modes.py --events 1M --epochs 3 --repeats 3 --out bench/corpus_modes.json

Same sessions, same vocabulary and parameters; reports the median of the training loop's seconds
(``timings.train_s``) and the corpus preparation seconds for each mode, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

from recs.config import TrainConfig
from recs.embeddings.train import train
from recs.sessions.synth import SynthConfig, generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=lambda s: int(float(s.lower().rstrip("km")) * {"k": 1e3, "m": 1e6}.get(
        s.lower()[-1], 1)), default=1_000_000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default="bench/corpus_modes.json")
    args = ap.parse_args()
    frame, _ = generate(SynthConfig(events=args.events, seed=0))
    result: dict[str, dict[str, float]] = {}
    for mode in ("file", "iterable"):
        cfg = TrainConfig(epochs=args.epochs, workers=args.workers, corpus_mode=mode)
        runs = [train(frame, cfg).manifest["timings"] for _ in range(args.repeats)]
        result[mode] = {"train_s_median": statistics.median(r["train_s"] for r in runs),
                        "corpus_s_median": statistics.median(r["corpus_s"] for r in runs),
                        "train_s_all": [round(r["train_s"], 2) for r in runs]}
    result["iterable_over_file"] = result["iterable"]["train_s_median"] / result["file"]["train_s_median"]
    summary = {"events": args.events, "epochs": args.epochs, "workers": args.workers, **result}
    print(json.dumps(summary, indent=2))
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
