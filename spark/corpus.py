"""The training corpus Spark writes, and how gensim on this machine reads it.

Each Spark task writes its session range's lines (``recs.embeddings.corpus.session_lines``, the
polars engine's own line maker) as one text part; partitions are session ranges in order, so the
parts read in name order are the polars engine's corpus file line for line.

gensim's ``corpus_file`` mode takes exactly one path (it splits that file by byte offsets among its
C threads), so the default fast path streams the parts, in order, into one file in the work
directory beside the output (``concatenate``: a byte copy at disk speed, each part deleted once
copied, so the disk holds the corpus about once). ``--corpus-mode iterable`` reads the parts in order
instead (``LinesIterable``), one line at a time: no second copy on disk, but gensim's Python
iterable path is several times slower than its C file reader (bench/corpus_modes.json), so it is not
the default. Neither mode holds the corpus in memory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from recs.columns import Col
from recs.embeddings.cooc import P, Q
from recs.embeddings.corpus import session_lines
from recs.spark.chunks import CHUNK_EVENTS, session_chunks, to_batches
from recs.spark.files import part_files
from recs.spark.work import SparkWork, as_work

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

LINES_SCHEMA = pa.schema([("value", pa.string())])
SESSIONS_DIR = "corpus"
_COPY_BUFFER = 8 << 20


def _lines_task(batches: Iterable[pa.RecordBatch], chunk_events: int) -> Iterator[pa.RecordBatch]:
    """Inside a Spark task: the corpus lines of each chunk of whole sessions, in order."""
    for chunk in session_chunks(batches, chunk_events):
        seq = chunk.select(Col.SESSION, pl.int_range(pl.len(), dtype=pl.Int32).over(Col.SESSION).alias(Col.POS),
                           Col.TOKEN_ID)
        yield from to_batches(session_lines(seq).rename({"line": "value"}), LINES_SCHEMA)


def write_session_lines(sequences: DataFrame, work: Path | SparkWork, chunk_events: int = CHUNK_EVENTS) -> Path:
    """Write the corpus lines as text parts under ``work/corpus``, one per session partition; returns the
    driver's directory of them (copied down from a ``--work-dir`` URI: ``recs.spark.work``)."""
    work = as_work(work, sequences.sparkSession)
    sequences.mapInArrow(partial(_lines_task, chunk_events=chunk_events), "value string").write.option(
        "compression", "none").text(work.spark_uri(SESSIONS_DIR))  # a site's default codec would rename the parts
    return work.fetch(SESSIONS_DIR)


def concatenate(parts: list[Path], dest: Path, remove: bool = True) -> int:
    """Stream ``parts`` into ``dest`` in order, deleting each once copied (``remove``); returns the bytes."""
    n = 0
    with dest.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, _COPY_BUFFER)
            n += part.stat().st_size
            if remove:
                os.unlink(part)
    return n


def write_pair_lines(pairs: Path | None, dest: Path) -> int:
    """The pair corpus (``p q`` per line, in (p, q) order) from the pairs' parquet parts, streamed; its words."""
    parts = part_files(pairs, ".parquet") if pairs is not None else []
    if not parts:
        dest.write_bytes(b"")
        return 0
    lines = pl.scan_parquet(parts).select(pl.concat_str([pl.col(P).cast(pl.String), pl.col(Q).cast(pl.String)],
                                                        separator=" "))
    lines.sink_csv(dest, include_header=False, quote_style="never")
    return 2 * int(pl.scan_parquet(parts).select(pl.len()).collect().item())


def count_lines(paths: Iterable[Path]) -> int:
    n = 0
    for path in paths:
        with path.open("rb") as f:
            while block := f.read(_COPY_BUFFER):
                n += block.count(b"\n")
    return n


class LinesIterable:
    """Re-iterable sentences of text files read in order, one line at a time (gensim's iterable mode)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.n_lines = count_lines(paths)

    def __iter__(self) -> Iterator[list[str]]:
        for path in self.paths:
            with path.open("r", encoding="ascii") as f:
                for line in f:
                    yield line.split()

    def __len__(self) -> int:
        return self.n_lines
