"""Cold start, scored: hit rate and coverage on the targets and items that training never saw.

A roll-up (``recs.candidates.rollup``) is for items without events in training, so its worth shows
on them and is diluted in the all-targets hit rate. Here a target is *new-target* when its item has
no event in training, *new-trigger* when one of its triggers has none; coverage is also reported
for the new active items alone. ``known`` is the training sessions' items (every item with an event,
so an item cut by ``--min-count`` counts as known: it was seen, the model just kept no token).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from recs.columns import Col
from recs.config import EvalConfig
from recs.eval.hitrate import _SITEM, _T, coverage, hit_counts, hit_table, target_triggers
from recs.eval.ids import comparison_dtype

COLD_SPLITS = ("new_target", "new_trigger", "new_either", "known_both")


def cold_split(test: pl.DataFrame, candidates: pl.DataFrame | pl.LazyFrame, source: str, known: pl.Series,
               cfg: EvalConfig | None = None) -> dict[str, Any]:
    """Hit counts (``hit_counts``) of all targets and of each of ``COLD_SPLITS``, as ``<split>_<count>``
    fields, plus coverage of all and of the new active ``source`` items."""
    cfg = cfg or EvalConfig()
    cfg.validate()
    table = hit_table(test, candidates, source, cfg)
    cov = coverage(test, candidates, source)
    return {**hit_counts(table), "active_items": cov["active_items"], "coverage": cov["coverage"],
            **cold_counts(test, table, candidates, source, known, cfg)}


def cold_counts(test: pl.DataFrame, table: pl.DataFrame, candidates: pl.DataFrame | pl.LazyFrame, source: str,
                known: pl.Series, cfg: EvalConfig) -> dict[str, Any]:
    """The ``COLD_SPLITS`` counts of a ``hit_table`` of ``test`` (same ``source`` and ``cfg``), and
    ``new_active_items`` / ``new_coverage``: the coverage of the active items absent from ``known``."""
    # ids of two kinds (text training ids, integer test ids) compare as text (recs.eval.ids)
    common = comparison_dtype(test.schema[Col.ITEM], known.dtype, where="--train")
    known = (known.cast(common, strict=False) if common is not None else known).drop_nulls().unique().implode()

    def new(col: str) -> pl.Expr:
        return ~(pl.col(col).cast(common) if common is not None else pl.col(col)).is_in(known)

    targets, triggers = target_triggers(test, source, cfg)  # hit_table's rows are these targets, by _T
    new_trigger = (
        triggers.with_columns(new(_SITEM).alias("_new"))
        .group_by(_T).agg(pl.col("_new").any())
    )
    flags = targets.select(_T).sort(_T).join(new_trigger, on=_T, how="left", maintain_order="left")["_new"]
    table = table.with_columns(
        new(Col.ITEM).alias("new_target"),
        flags.fill_null(False).alias("new_trigger"),
    )
    masks = {
        "new_target": pl.col("new_target"),
        "new_trigger": pl.col("new_trigger"),
        "new_either": pl.col("new_target") | pl.col("new_trigger"),
        "known_both": ~(pl.col("new_target") | pl.col("new_trigger")),
    }
    out: dict[str, Any] = {}
    for name, mask in masks.items():
        counts = hit_counts(table.filter(mask))
        out |= {f"{name}_{k}": counts[k] for k in ("targets", "targets_with_trigger", "hits", "hit_rate")}
    cov_new = coverage(test.filter(new(Col.ITEM)), candidates, source)
    return out | {"new_active_items": cov_new["active_items"], "new_coverage": cov_new["coverage"]}


__all__ = ["COLD_SPLITS", "cold_counts", "cold_split"]
