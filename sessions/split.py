"""Time-based split, the paper's offline set-up: train on sessions that start before day T, test on
the sessions that start in the ``test_days`` days after it.

A session belongs wholly to one side (by its first event), so no test session is ever seen in part
during training.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import polars as pl

from recs.columns import Col
from recs.config import SplitConfig
from recs.errors import ConfigError, InputError
from recs.sessions import times


def _latest_start(starts: pl.DataFrame) -> datetime:
    """The latest ``_start`` of a non-empty frame of session starts. Canonical timestamps are a Datetime
    column, so it is a datetime; polars types ``Series.max`` as any scalar, hence the cast."""
    return cast(datetime, starts["_start"].max())


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
            last = _latest_start(starts)
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


def carve_validation(train: pl.DataFrame, share: float = 0.1, days: int | None = None) -> Split:
    """Carve a validation window from the end of the training sessions, by time, for a second stage
    (``recs.candidates.blend``) or a search over settings (``recs tune``) that must be scored on
    sessions its first stage never saw.

    The cut is the start time of the first session of the last ``share`` of sessions (ordered by start
    time), or ``days`` whole days before the end when given. As in ``split_sessions`` a session
    belongs wholly to one side by its first event, so no event of a validation session is ever in the
    fit part (``Split.train``); its ``test`` is the validation window. Sessions that start at the cut
    itself are validation, so ties never straddle it.
    """
    if days is None and not 0 < share < 1:
        raise ConfigError(f"valid_share must be in (0, 1) (got {share})")
    starts = train.group_by(Col.SESSION).agg(pl.col(Col.TIMESTAMP).min().alias("_start")).sort("_start")
    if starts.height < 2:
        raise InputError(f"a validation window needs at least 2 training sessions (got {starts.height})")
    if days is not None:
        if days < 1:
            raise ConfigError(f"valid_days must be at least 1 (got {days})")
        last = _latest_start(starts)
        cutoff = datetime(last.year, last.month, last.day, tzinfo=last.tzinfo or timezone.utc) - timedelta(
            days=days - 1)
    else:
        position = min(max(round(starts.height * (1 - share)), 1), starts.height - 1)
        cutoff = starts["_start"][position]
    end = _latest_start(starts) + timedelta(microseconds=1)
    tagged = train.join(starts, on=Col.SESSION, how="left", maintain_order="left")
    fit = tagged.filter(pl.col("_start") < cutoff).drop("_start")
    valid = tagged.filter(pl.col("_start") >= cutoff).drop("_start")
    if fit.height == 0 or valid.height == 0:
        raise InputError(f"the validation cut at {cutoff} leaves {fit.height} events to fit on and "
                         f"{valid.height} to validate on; both must be non-empty (the sessions span too little "
                         "time for the asked window)")
    return Split(fit, valid, cutoff, end)
