"""Co-occurrence pairs on Spark: the polars engine's two kernels in Spark tasks, one shuffle between them.

Each task of the sequences holds whole sessions (``recs.spark.tokens.spark_sequences``), so "count a
pair once per session" is local: ``mapInArrow`` runs the polars engine's own ``chunk_pairs`` (same
horizon rule, same same-item rule, same dedupe) on chunks of whole sessions and emits (p * V + q,
interaction code of q, sessions) summed within the chunk. One shuffle then range-partitions those
rows by p, so every (p, q) of one p meets in one task, and partitions are ranges of p in order; a
second ``mapInArrow`` sums each (p, q) over chunks and keeps the top k per (p, type of q) with the
polars engine's own ``top_k`` (sessions desc, then q), sorted by (p, q). The parquet parts, read in
name order, are the polars engine's pairs table. Memory per task: one chunk of sessions in the first
step, the counted pairs of one range of p in the second (about 3 rows per event / partitions).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from recs.columns import Col
from recs.config import CoocConfig
from recs.embeddings.cooc import PQ, SESSIONS, P, Q, chunk_pairs, top_k
from recs.spark.chunks import CHUNK_EVENTS, local_sessions, session_chunks, to_batches
from recs.spark.files import part_files
from recs.spark.session import default_parallelism
from recs.spark.tokens import ITEM_CODE, TYPE_CODE
from recs.spark.work import SparkWork, as_work

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

COUNTS_SCHEMA = pa.schema([(PQ, pa.int64()), (TYPE_CODE, pa.int32()), (SESSIONS, pa.int64())])
COUNTS_DDL = f"{PQ} bigint, {TYPE_CODE} int, {SESSIONS} bigint"
PAIRS_SCHEMA = pa.schema([(P, pa.int32()), (Q, pa.int32()), (SESSIONS, pa.int64())])
PAIRS_DDL = f"{P} int, {Q} int, {SESSIONS} bigint"
PAIRS_DIR = "pairs"


def _count_task(batches: Iterable[pa.RecordBatch], horizon: int, same_item: bool, n_tokens: int,
                chunk_events: int) -> Iterator[pa.RecordBatch]:
    """Inside a Spark task: (pq, type of q, sessions) of each chunk of whole sessions."""
    for chunk in session_chunks(batches, chunk_events):
        tok = chunk[Col.TOKEN_ID].cast(pl.Int64).to_numpy()
        counts = chunk_pairs(local_sessions(chunk), tok, chunk[ITEM_CODE].cast(pl.Int64).to_numpy(), horizon,
                             same_item, n_tokens)
        if counts.height == 0:
            continue
        # every q of a pair is an event of this chunk, so its interaction code is here too
        types = chunk.select(pl.col(Col.TOKEN_ID).cast(pl.Int64).alias(Q), TYPE_CODE).unique(Q)
        out = (counts.with_columns((pl.col(PQ) % n_tokens).alias(Q))
               .join(types, on=Q).select(PQ, TYPE_CODE, SESSIONS))
        yield from to_batches(out, COUNTS_SCHEMA)


def successor_counts(sequences: DataFrame, cfg: CoocConfig, n_tokens: int,
                     chunk_events: int = CHUNK_EVENTS) -> DataFrame:
    """All directional within-horizon (pq, _y, sessions) counts of each task's chunks, not yet summed."""
    task = partial(_count_task, horizon=cfg.horizon, same_item=cfg.same_item, n_tokens=n_tokens,
                   chunk_events=chunk_events)
    return sequences.mapInArrow(task, COUNTS_DDL)


def _top_k_task(batches: Iterable[pa.RecordBatch], k: int, n_tokens: int) -> Iterator[pa.RecordBatch]:
    """Inside a Spark task holding every count of a range of p: the kept pairs of that range, by (p, q)."""
    frames = [f for b in batches if b.num_rows and isinstance(f := pl.from_arrow(b), pl.DataFrame)]
    if not frames:
        return
    counts = pl.concat(frames).group_by(PQ, TYPE_CODE).agg(pl.col(SESSIONS).sum())
    pairs = counts.select((pl.col(PQ) // n_tokens).alias(P), (pl.col(PQ) % n_tokens).alias(Q), SESSIONS)
    kept = top_k(pairs, counts[TYPE_CODE].to_numpy(), k, n_tokens).sort(P, Q)
    yield from to_batches(kept, PAIRS_SCHEMA)


def write_pairs(sequences: DataFrame, cfg: CoocConfig, n_tokens: int, work: Path | SparkWork,
                partitions: int | None = None, chunk_events: int = CHUNK_EVENTS) -> Path | None:
    """Count, keep the top k and write the pairs as parquet parts under ``work/pairs`` (None when k is 0);
    returns the driver's directory of them (copied down from a ``--work-dir`` URI: ``recs.spark.work``).

    ``partitions``: ranges of p (``recs.spark.train`` gives the sequences' number; default: one per core).
    """
    from pyspark.sql import functions as F

    if cfg.k == 0:
        return None
    work = as_work(work, sequences.sparkSession)
    counts = successor_counts(sequences, cfg, n_tokens, chunk_events)
    n = partitions or default_parallelism(sequences.sparkSession)
    by_p = counts.repartitionByRange(n, F.expr(f"`{PQ}` div {n_tokens}"))
    by_p.mapInArrow(partial(_top_k_task, k=cfg.k, n_tokens=n_tokens), PAIRS_DDL).write.parquet(
        work.spark_uri(PAIRS_DIR))
    return work.fetch(PAIRS_DIR)


def read_pairs(directory: Path | None) -> pl.DataFrame:
    """The pairs Spark wrote, as the polars engine's ``regularization_pairs`` returns them (types, order)."""
    schema = {P: pl.Int32, Q: pl.Int32, SESSIONS: pl.UInt32}
    parts = part_files(directory, ".parquet") if directory is not None else []
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.scan_parquet(parts).select(pl.col(c).cast(t) for c, t in schema.items()).collect()
