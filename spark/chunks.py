"""Whole sessions from a Spark task's Arrow batches: what the per-task functions of ``mapInArrow`` read.

A task gets one session range, sorted by (session, time); Spark cuts it into Arrow batches of
``spark.sql.execution.arrow.maxRecordsPerBatch`` rows without regard to sessions. The functions that
run there need whole sessions (pairs are counted once per session; a corpus line is one session), so
batches are gathered to about ``chunk_events`` events and cut at the last session start; the rest of
that session waits for the next batch. Memory per task is one chunk plus one session, whatever the
partition's size: 500-event sessions cost 500 rows here, not a partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import polars as pl
import pyarrow as pa

from recs.columns import Col

# Events counted at once per task. The candidate pairs are up to horizon (20) per event, held as int64
# keys a few times over while deduped. Measured (bench/spark_stages.json), the largest Python worker,
# libraries included, peaked at 0.5 GiB (1M events, 225k per partition) and 0.76 GiB (10M, 450k per
# partition); large enough that the per-chunk overhead is noise.
CHUNK_EVENTS = 250_000


def session_chunks(batches: Iterable[pa.RecordBatch], chunk_events: int = CHUNK_EVENTS) -> Iterator[pl.DataFrame]:
    """Frames of whole sessions, in order, each of at least ``chunk_events`` events but the last; held at
    once: one chunk, the session still open and one batch."""
    pending: list[pl.DataFrame] = []
    n = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        pending.append(frame)
        n += frame.height
        if n < chunk_events:
            continue
        whole = pl.concat(pending, rechunk=True)
        sess = whole[Col.SESSION]
        # sorted by session, so the last session's rows are exactly the trailing rows equal to its id
        cut = int((sess != sess[-1]).sum())
        if cut < chunk_events:  # the whole sessions so far are too few (a long session is open): keep gathering
            pending, n = [whole], whole.height
            continue
        yield whole.slice(0, cut)
        rest = whole.slice(cut)
        pending, n = [rest], rest.height
    if pending:
        yield pl.concat(pending, rechunk=True)


def local_sessions(chunk: pl.DataFrame) -> np.ndarray:
    """Session numbers 0, 1, ... (int64) of a chunk sorted by session, whatever the id type."""
    sess = chunk[Col.SESSION]
    return (sess != sess.shift(1)).fill_null(True).cast(pl.Int64).cum_sum().to_numpy() - 1


def to_batches(frame: pl.DataFrame, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """A polars frame as Arrow batches of exactly ``schema`` (Spark checks the types it declared)."""
    yield from frame.to_arrow().cast(schema).to_batches()
