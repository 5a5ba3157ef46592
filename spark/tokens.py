"""Tokens on Spark: count (item, interaction) over the events, rank them here, rewrite events as token ids.

The counting is the pass over every event and runs on Spark. The counted table has one row per
token, which is what gensim holds on this machine anyway, so it is read here (from parquet) and ranked
by ``recs.embeddings.tokens.vocabulary``: the one rule of token ids, not a second implementation of
it. The ranked vocabulary goes back to Spark as a parquet file in the work directory, with two small
codes the counting needs per event (the item's, for the same-item rule, and the interaction's, for
top-k per interaction type), and the events are joined to it.

The sequences are then range-partitioned by session (a session never spans two tasks; partitions
hold about equal numbers of events) and sorted within each partition by (session, time, file, row):
the order of the polars engine's ``tokenize``, so the corpus part files, read in order, are its lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from recs.columns import Col
from recs.embeddings.tokens import vocabulary
from recs.spark.files import part_files
from recs.spark.read import FILE, ROW, TIME, SparkEvents
from recs.spark.work import SparkWork, as_work

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

ITEM_CODE, TYPE_CODE = "_i", "_y"  # per token: dense item rank (same-item rule), interaction code (top-k groups)
CODES_FILE = "vocab_codes.parquet"
COUNTS_DIR = "token_counts"


@dataclass(frozen=True)
class SparkVocabulary:
    vocab: pl.DataFrame  # token_id, token, item_id, interaction, count: as the polars engine's tokenize gives it
    n_items: int  # distinct items in the sessions, before min_count


def count_tokens(events: SparkEvents, min_count: int, work: Path | SparkWork) -> SparkVocabulary:
    """Count every (item, interaction) on Spark; rank the tokens kept by ``min_count`` with the shared rule.

    The counts go through parquet in ``work`` (one Spark job; ``recs.spark.work``: beside the output, or
    copied down from ``--work-dir``), not through the driver's JVM, so the size of the table is bounded
    by this machine's memory (which holds the vocabulary anyway), not by ``spark.driver.maxResultSize``.
    """
    from pyspark.sql import functions as F

    work = as_work(work, events.frame.sparkSession)
    counted = events.frame.groupBy(Col.ITEM, Col.INTERACTION).agg(F.count(F.lit(1)).alias(Col.COUNT))
    counted.write.parquet(work.spark_uri(COUNTS_DIR))
    counts = pl.read_parquet(part_files(work.fetch(COUNTS_DIR), ".parquet")).with_columns(
        pl.col(Col.ITEM).cast(events.item_dtype), pl.col(Col.INTERACTION).cast(pl.String))
    return SparkVocabulary(vocabulary(counts, min_count), counts[Col.ITEM].n_unique())


def token_codes(vocab: pl.DataFrame) -> pl.DataFrame:
    """(item_id, interaction) -> token_id and the two codes; the same codes the polars counting uses."""
    return vocab.select(
        Col.ITEM, Col.INTERACTION, Col.TOKEN_ID,
        pl.col(Col.ITEM).rank("dense").cast(pl.Int64).alias(ITEM_CODE),
        (pl.col(Col.INTERACTION).rank("dense").cast(pl.Int32) - 1).alias(TYPE_CODE),
    )


def spark_sequences(events: SparkEvents, vocab: pl.DataFrame, work: Path | SparkWork,
                    partitions: int) -> DataFrame:
    """The in-vocabulary events as (session_id, token_id, _i, _y), ``partitions`` session ranges, sorted.

    The code table is written to ``work`` (which Spark's executors must read: this machine's disk in
    local mode, a shared mount or ``--work-dir URI`` on a cluster, ``recs.spark.work``) rather than sent
    through the driver, so its size is not bounded by the driver's JVM.
    """
    spark = events.frame.sparkSession
    work = as_work(work, spark)
    token_codes(vocab).write_parquet(work.local / CODES_FILE)
    codes = spark.read.parquet(work.put(CODES_FILE))
    return (
        events.frame.join(codes, [Col.ITEM, Col.INTERACTION])
        .select(Col.SESSION, TIME, FILE, ROW, Col.TOKEN_ID, ITEM_CODE, TYPE_CODE)
        .repartitionByRange(partitions, Col.SESSION)
        .sortWithinPartitions(Col.SESSION, TIME, FILE, ROW)
        .select(Col.SESSION, Col.TOKEN_ID, ITEM_CODE, TYPE_CODE)
    )
