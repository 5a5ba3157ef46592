"""``recs recommend``: every user's list for a history file, streamed to one parquet file in blocks.

Memory is the history's events (read once, as every command reads sessions) plus one block of users'
lists: users are cut into blocks of ``RecommendConfig.block_users`` in id order and each block's
lists are written as one row group before the next is built, so 1M users need no memory per user
beyond the block. The key is ``user_id`` when the history has one (a user's history spans
sessions), else ``session_id``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from recs.atomic import Outputs, writing
from recs.columns import Col
from recs.config import RecommendConfig, config_dict
from recs.errors import ConfigError, InputError, SchemaError
from recs.progress import NullProgress, Progress
from recs.recommend.recommender import Recommender
from recs.sessions.io import input_columns, read_sessions
from recs.sessions.times import DEFAULT_TIME_UNIT


def history_key(events: pl.DataFrame) -> str:
    """``user_id`` when the history has users, else ``session_id``."""
    return Col.USER if Col.USER in events.columns else Col.SESSION


def key_blocks(events: pl.DataFrame, key: str, size: int) -> Iterator[tuple[pl.Series, pl.DataFrame]]:
    """Blocks of at most ``size`` keys, in key order, with their events: one stable sort (a key's events
    keep their order), then a slice per block."""
    events = events.sort(key, maintain_order=True)
    starts = events.with_row_index("_row").group_by(key, maintain_order=True).agg(pl.col("_row").first())
    first = [*starts["_row"].to_list(), events.height]
    for lo in range(0, starts.height, size):
        hi = min(lo + size, starts.height)
        yield starts[key].slice(lo, hi - lo), events.slice(first[lo], first[hi] - first[lo])


def check_key_column(path: str | Path) -> None:
    """Lists are keyed by ``user_id``, else ``session_id``: a history with neither is refused naming
    both (``read_sessions`` alone would name ``session_id`` only, as if ``user_id`` could not serve)."""
    columns = input_columns(path)
    if Col.USER not in columns and Col.SESSION not in columns:
        raise SchemaError(f"{path}: needs a column {Col.USER!r} (lists per user) or {Col.SESSION!r} (lists per "
                          f"session); it has neither; columns found: {', '.join(columns) or 'none'}")


def check_key(events: pl.DataFrame, key: str, path: str | Path) -> None:
    """A null key would pool unrelated events into one history: refused, naming the row."""
    nulls = events[key].is_null()
    if nulls.any():
        raise InputError(f"{path}: column {key!r} is empty (null) in row {int(nulls.arg_max()) + 1}; give every "
                         f"event its {key}" + (" or drop the column to key lists by session_id" if key == Col.USER
                                                else ""))


def recommend_file(
    index_dir: str | Path,
    history: str | Path,
    out: str | Path,
    cfg: RecommendConfig | None = None,
    at: datetime | None = None,
    time_unit: str = DEFAULT_TIME_UNIT,
    progress: Progress | None = None,
    outputs: Outputs | None = None,
) -> dict[str, Any]:
    """Write every key's list for ``history`` to ``out`` (parquet); return a summary.

    With ``outputs`` the file is staged there and appears only with the command's other outputs (the
    summary JSON): one transaction, so a JSON that cannot be written leaves no new lists either.

    Columns: the key, ``rank``, ``candidate_item_id``, ``score``, ``trigger_item_id``,
    ``trigger_interaction``, ``candidate_set``. Keys with no list (no trigger with candidates) have no
    rows and are counted in the summary. ``at``: only events before it are history.
    """
    cfg = cfg or RecommendConfig()
    cfg.validate()
    if Path(out).suffix.lower() != ".parquet":
        raise ConfigError(f"--out {out}: recommendations are written as parquet; give a .parquet path")
    progress = progress or NullProgress()
    t0 = time.perf_counter()
    rec = Recommender.open(index_dir, cfg)
    check_key_column(history)
    events = read_sessions(history, time_unit=time_unit)
    key = history_key(events)
    check_key(events, key, history)
    if at is not None:
        events = events.filter(pl.col(Col.TIMESTAMP) < at)
    n_keys = events[key].n_unique()
    n_rows = n_with = 0
    writer: pq.ParquetWriter | None = None
    with writing(out, outputs) as tmp:
        try:
            with progress.stage("recommending", total=n_keys, unit="user") as bar:
                for keys, block in key_blocks(events, key, cfg.block_users):
                    lists = rec.recommend_batch(block, key=key)
                    table = lists.to_arrow()
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                    writer.write_table(table)
                    n_rows += lists.height
                    n_with += lists[key].n_unique()
                    bar.update(len(keys))
            if writer is None:  # no events (all after --at): an empty file of the same columns
                writer = pq.ParquetWriter(tmp, rec.recommend_batch(events.head(0), key=key).to_arrow().schema)
        finally:
            if writer is not None:
                writer.close()
    return {
        "index": str(index_dir), "history": str(history), "out": str(out), "key": key,
        "at": at.isoformat() if at is not None else None, "config": config_dict(cfg),
        "keys": n_keys, "keys_with_list": n_with, "keys_without_list": n_keys - n_with, "rows": n_rows,
        "mean_list_length": n_rows / n_with if n_with else 0.0, "seconds": time.perf_counter() - t0,
    }
