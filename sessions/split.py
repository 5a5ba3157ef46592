"""Time-based split, the paper's offline set-up: train on sessions that start before day T, test on
the sessions that start in the ``test_days`` days after it.

A session belongs wholly to one side (by its first event), so no test session is ever seen in part
during training.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import polars as pl

from recs.columns import Col
from recs.config import SplitConfig
from recs.errors import ConfigError, InputError
from recs.sessions import times


@dataclass(frozen=True)
class Split:
    train: pl.DataFrame
    test: pl.DataFrame
    cutoff: datetime
    end: datetime

    def summary(self) -> dict[str, Any]:
        def side(df: pl.DataFrame) -> dict[str, Any]:
            return {
                "events": df.height,
                "sessions": df[Col.SESSION].n_unique() if df.height else 0,
                "items": df[Col.ITEM].n_unique() if df.height else 0,
                "first": str(df[Col.TIMESTAMP].min()) if df.height else None,
                "last": str(df[Col.TIMESTAMP].max()) if df.height else None,
            }

        return {"cutoff": self.cutoff.isoformat(), "test_end": self.end.isoformat(),
                "train": side(self.train), "test": side(self.test)}


def _parse_cutoff(text: str) -> datetime:
    return times.parse_instant(text, "--cutoff")


def split_sessions(sessions: pl.DataFrame, cfg: SplitConfig | None = None) -> Split:
    """Split canonical sessions by session start time (see module docstring)."""
    cfg = cfg or SplitConfig()
    cfg.validate()
    starts = sessions.group_by(Col.SESSION).agg(pl.col(Col.TIMESTAMP).min().alias("_start"))
    try:  # a cut-off near year 1 or 9999 leaves what datetime can hold
        if cfg.cutoff is not None:
            cutoff = _parse_cutoff(cfg.cutoff)
        else:
            last = starts["_start"].max()
            cutoff = datetime(last.year, last.month, last.day, tzinfo=timezone.utc) - timedelta(days=cfg.test_days - 1)
        end = cutoff + timedelta(days=cfg.test_days)
    except OverflowError:
        raise ConfigError(
            f"--cutoff/--test-days: the test period ({cfg.cutoff or 'last day in the data'} plus {cfg.test_days} "
            "day(s)) runs past the years a date can hold"
        ) from None
    tagged = sessions.join(starts, on=Col.SESSION, how="left", maintain_order="left")
    train = tagged.filter(pl.col("_start") < cutoff).drop("_start")
    test = tagged.filter((pl.col("_start") >= cutoff) & (pl.col("_start") < end)).drop("_start")
    if train.height == 0:
        raise InputError(f"no session starts before the cut-off {cutoff.isoformat()}: nothing to train on")
    if test.height == 0:
        raise InputError(f"no session starts between {cutoff.isoformat()} and {end.isoformat()}: nothing to test on")
    return Split(train, test, cutoff, end)
