"""Wall seconds per stage of one recs command, from a py-spy profile (issue 23's stage tables).

    .venv/bin/py-spy record -r 100 --idle --threads -f raw -o prof.txt -- .venv/bin/recs build-index ...
    .venv/bin/python bench/profile_stages.py prof.txt

Recorded with ``--idle``, the main thread's samples add up to the command's wall time, waiting
included (a wait in faiss, in gensim's job queue, or on a worker thread of ``recs.overlap``). Each
main-thread sample goes to the innermost frame that matches a rule below, the rest to "other".
Worker threads (gensim's, faiss's search thread, the parquet writer) are counted apart: their time
overlaps the main thread's. py-spy does not see native threads (polars', OpenMP's), so a stage that
polars or faiss spreads over cores shows as the main thread's wall time in it, which is what counts.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

RULES = [
    ("faiss search (bare library)", r"IndexHNSW\.search|IndexFlat.*search"),
    ("faiss HNSW add (bare library)", r"IndexHNSW\.add"),
    ("gensim train loop (bare library)", r"Word2Vec\.train \("),
    ("main waits: faiss searching in its thread", r"^ahead \("),
    ("main waits: parquet writer thread", r"^write_blocks \(.*base\.py:2[5-9]\d"),
    ("gensim build_vocab_from_freq", r"build_vocab_from_freq"),
    ("vector export (reorder to token ids)", r"fit_vectors\.<locals>\.<listcomp>|KeyedVectors\.get_index|gensim_rows"),
    ("parquet write (pyarrow, zstd)", r"ParquetWriter|DataFrame\.to_arrow"),
    ("candidate frame (drop self, rank, gather)", r"^candidate_block \(|^item_codes \("),
    ("query/target rows (scoring)", r"query_side|target_side"),
    ("model load + check", r"EmbeddingModel\.load"),
    ("hash outputs (record_files)", r"record_files"),
    ("fsync + rename (atomic_dir)", r"_fsync|_exchange|remove_path"),
    ("describe (lazy scan per set)", r"^describe \(.*candidates"),
    ("faiss.write_index", r"write_index \(faiss"),
    ("model save (npy, parquet, manifest)", r"EmbeddingModel\.save"),
    ("read sessions", r"read_sessions"),
    ("tokenize", r"^tokenize \("),
    ("co-occurrence pairs", r"regularization_pairs"),
    ("corpus files", r"write_session_corpus|write_pair_corpus"),
    ("item table / roll-up check", r"item_table|catalog_for"),
    ("input fingerprint", r"fingerprint_sessions"),
    ("preflight", r"preflight_artifact"),
    ("imports + CLI registration", r"<module>|_find_and_load"),
]


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, rule in RULES:
            if re.search(rule, frame):
                return name
    return "other (click, Python glue)"


def worker_kind(stack: str) -> str:
    for kind, needle in (("faiss search", "IndexHNSW.search"), ("parquet write", "write_table"),
                         ("gensim training", "_worker_loop"), ("gensim vocabulary", "new_model"),
                         ("import", "_find_and_load")):
        if needle in stack:
            return kind
    return "waiting / other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile", type=Path, help="py-spy raw output (--idle --threads -f raw)")
    ap.add_argument("--rate", type=float, default=100.0, help="py-spy's sampling rate (-r)")
    a = ap.parse_args()
    main_thread: Counter[str] = Counter()
    workers: Counter[str] = Counter()
    for line in a.profile.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        frames = stack.split(";")
        if "Thread._bootstrap" in stack:
            name = frames[0].split(": ")[-1].split("_")[0] if ": " in frames[0] else "worker"
            workers[f"{name}: {worker_kind(stack)}"] += int(count)
        else:
            main_thread[stage_of(frames[1:])] += int(count)
    total = sum(main_thread.values())
    print("| stage (main thread) | s | share |\n|---|---|---|")
    for name, n in main_thread.most_common():
        print(f"| {name} | {n / a.rate:.2f} | {100 * n / total:.1f}% |")
    print(f"| **total (wall)** | {total / a.rate:.2f} | |")
    if workers:
        print("\n| worker thread | s |\n|---|---|")
        for name, n in workers.most_common():
            print(f"| {name} | {n / a.rate:.2f} |")


if __name__ == "__main__":
    main()
