"""Purchase-intent hit rate (paper 5.3.1), defined exactly as the README states it:

* Walk each test session in time order. A *target* is every event whose interaction is in
  ``targets`` (default cart, purchase); P is the multiset of targets.
* For a candidate set ``source_to_target``, the *triggers* of a target are the last ``triggers``
  (default 4) distinct items that had a ``source``-interaction event earlier in the same session.
  S = the union of their candidate lists.
* A hit is a target whose item is in S. Hit rate = hits / targets with at least one trigger; targets
  without a trigger are counted separately.
* Every count is also split into *re-finding* targets (the item already occurred, by any
  interaction, earlier in the session or for the same user) and *discovery* targets (new to the
  user): ``recs.eval.novelty``, the one definition ``recs eval-recommend`` uses too.

Triggers are found in time and memory linear in the events (``target_triggers``: each source event
is a trigger for an interval of targets, found by a vectorised scan), never as targets x earlier
source events of a session, which grew with the square of a long session; then a semi-join against
the candidates on (trigger item, target item), so candidate lists are never expanded per target.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from recs.columns import Col
from recs.config import EvalConfig
from recs.eval.ids import comparison_dtype
from recs.eval.novelty import REFINDING, event_refinding

_T, _TPOS, _TITEM = "_target", "_tpos", "_titem"
_SPOS, _SITEM = "_spos", "_sitem"
_ROW = "_row"  # input row of an event: the hit rate's tie rule, and how a target finds its re-finding flag
SPLITS = ("refinding", "discovery")  # prefixes of the split counts (``split_counts``)
_KEY, _SIDX, _J, _SAME = "_key", "_sidx", "_j", "_same"  # scratch columns of the trigger scan


ANY = "_any"  # trigger interaction of the Item-to-Item view: any earlier event


def any_trigger_view(test: pl.DataFrame) -> pl.DataFrame:
    """The test events with a copy of each event, interaction ``ANY``, placed right after it.

    Scoring a candidate set with source ``ANY`` on this view makes the triggers of a target the last
    N distinct items with any earlier event; targets are still only the original events (the copies'
    interaction is never a target), and a target's own copy comes after it, so it is never its own
    trigger. The hit-rate code breaks timestamp ties by input order, which the interleaving keeps.
    ``user_id`` is kept when present: it is part of a target's history (re-finding, ``recs.eval.novelty``).
    """
    cols = [Col.SESSION, Col.ITEM, Col.INTERACTION, Col.TIMESTAMP, *([Col.USER] if Col.USER in test.columns else [])]
    base = test.select(cols).with_row_index("_o")
    copies = base.with_columns(pl.lit(ANY).alias(Col.INTERACTION), (pl.col("_o") * 2 + 1).alias("_o"))
    return pl.concat([base.with_columns(pl.col("_o") * 2), copies]).sort("_o").drop("_o")


def _positions(test: pl.DataFrame) -> pl.DataFrame:
    """Events with their position in the session; the input order breaks timestamp ties."""
    return (
        test.select(Col.SESSION, Col.ITEM, Col.INTERACTION, Col.TIMESTAMP)
        .with_row_index(_ROW)
        .sort([Col.SESSION, Col.TIMESTAMP, _ROW])
        .with_columns(pl.int_range(pl.len()).over(Col.SESSION).alias(Col.POS))
    )


_SCAN_BLOCK = 1 << 20  # (source event, offset) cells per block of the trigger scan: ~35 MB of temporaries


def target_triggers(test: pl.DataFrame, source: str, cfg: EvalConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(targets, triggers): one row per target event, and its up-to-N trigger items.

    targets: _target, session_id, _tpos, _titem.  triggers: _target, _sitem, trigger rank (1 = latest),
    sorted by target and rank.  Time and memory are linear in the events (see ``_trigger_intervals``).
    """
    return _target_triggers(test, source, cfg, None)


def trigger_work(test: pl.DataFrame, source: str, cfg: EvalConfig) -> dict[str, int]:
    """Sizes of ``target_triggers``' intermediates: sources, targets, scanned cells, largest scan block,
    scan iterations and trigger rows; every one is linear in the events (checked by the tests)."""
    stats: dict[str, int] = {}
    _target_triggers(test, source, cfg, stats)
    return stats


def _target_triggers(
    test: pl.DataFrame, source: str, cfg: EvalConfig, stats: dict[str, int] | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Number the source events j = 0..S-1 over the session-sorted events, and give every event c, the
    number of source events before it in that order; source j is a trigger of a target of its session
    exactly when j < c <= U(j) (``_trigger_intervals``).  With key = c + session index (unique per
    (session, c)), the targets matching j are a range of the key-sorted targets: two searchsorteds, and
    at most N rows per target are ever built."""
    is_src = (pl.col(Col.INTERACTION) == source).cast(pl.Int64)
    ev = _positions(test).with_columns(
        (is_src.cum_sum() - is_src + pl.col(Col.SESSION).rle_id().cast(pl.Int64)).alias(_KEY),
        pl.col(Col.SESSION).rle_id().cast(pl.Int64).alias(_SIDX),
    )
    targets = (
        ev.filter(pl.col(Col.INTERACTION).is_in(list(cfg.targets)))
        .select(Col.SESSION, pl.col(Col.POS).alias(_TPOS), pl.col(Col.ITEM).alias(_TITEM), _KEY)
        .with_row_index(_T)
    )
    tkeys = targets[_KEY].to_numpy()  # non-decreasing: events are sorted by session, then time
    targets = targets.drop(_KEY)
    sources = ev.filter(pl.col(Col.INTERACTION) == source).select(_SIDX, pl.col(Col.ITEM).alias(_SITEM))
    sidx = sources[_SIDX].to_numpy()
    js = np.arange(sources.height, dtype=np.int64)
    # previous / next source event of the same item in the session: one sort by (session, item, j)
    same = pl.col(_SIDX).eq_missing(pl.col(_SIDX).shift(1)) & pl.col(_SITEM).eq_missing(pl.col(_SITEM).shift(1))
    by_item = (
        sources.with_row_index(_J).sort(_SIDX, _SITEM, _J).select(_J, same.fill_null(False).alias(_SAME))
    )
    order, link = by_item[_J].to_numpy().astype(np.int64), by_item[_SAME].to_numpy()[1:]
    prev = np.full(js.size, -1, dtype=np.int64)
    prev[order[1:][link]] = order[:-1][link]
    stop = np.searchsorted(sidx, sidx, side="right")  # end of the session's source events
    stop[order[:-1][link]] = order[1:][link]
    upper = _trigger_intervals(prev, stop, cfg.triggers, stats)
    lo = np.searchsorted(tkeys, js + sidx, side="right")
    hi = np.searchsorted(tkeys, upper + sidx, side="right")
    rows = hi - lo
    # pairs come j-major, j ascending; reversed and stably sorted by target: j descending per target
    trig = np.repeat(js, rows)[::-1]
    tgt = (np.arange(trig.size) + np.repeat(lo - (np.cumsum(rows) - rows), rows))[::-1]
    by_target = np.argsort(tgt, kind="stable")
    trig, tgt = trig[by_target], tgt[by_target]
    rank = np.arange(tgt.size) - np.searchsorted(tgt, tgt, side="left") + 1
    triggers = pl.DataFrame({
        _T: pl.Series(tgt, dtype=pl.UInt32),
        _SITEM: sources[_SITEM].gather(trig),
        "trigger_rank": pl.Series(rank, dtype=pl.UInt32),
    })
    if stats is not None:
        stats.update(events=ev.height, sources=sources.height, targets=targets.height, trigger_rows=triggers.height)
    return targets, triggers


def _trigger_intervals(prev: np.ndarray, stop: np.ndarray, n: int, stats: dict[str, int] | None) -> np.ndarray:
    """U(j) for every source event j: j is among the last n distinct source items for c in (j, U(j)].

    ``prev[j]``: the previous source event of j's item in its session (-1 if none); ``stop[j]``: the
    next one, or the session's end.  j is the latest event of its item for j < c <= stop[j]; it is
    then within the last n distinct items while fewer than n events k in (j, c) have prev[k] < j
    (those are the latest events of other items, all distinct), i.e. for c <= e(j), e(j) = the n-th
    such k.  So U(j) = min(stop[j], e(j)), found by scanning k = j + r for all j at once: round t
    looks at offsets r in [2^t, 2^(t+1)) (block width capped at _SCAN_BLOCK) and drops the j's that
    are done.  A j is scanned at most 2 (U(j) - j) + 1 cells, and sum_j (U(j) - j) = the (c, trigger)
    pairs <= n x sources, so the work is linear; rounds are about log2 of the longest scan.
    """
    upper = stop.copy()
    act = np.flatnonzero(stop > np.arange(stop.size) + 1)  # j + 1 < stop: something to scan
    cnt = np.zeros(act.size, dtype=np.int32)
    offset, width = 1, 1
    scanned = largest = iterations = 0
    while act.size:
        width = min(width, _SCAN_BLOCK)
        step = max(1, _SCAN_BLOCK // width)
        keep_act, keep_cnt = [], []
        for s in range(0, act.size, step):
            a, c0 = act[s : s + step], cnt[s : s + step]
            k = a[:, None] + np.arange(offset, offset + width)[None, :]
            valid = k < stop[a][:, None]
            other = valid & (prev[np.where(valid, k, 0)] < a[:, None])
            full = (c0[:, None] + np.cumsum(other, axis=1, dtype=np.int32)) >= n
            hit = full[:, -1]
            upper[a[hit]] = a[hit] + offset + full[hit].argmax(axis=1)
            more = ~hit & (a + offset + width < stop[a])
            keep_act.append(a[more])
            keep_cnt.append(c0[more] + other[more].sum(axis=1, dtype=np.int32))
            scanned += k.size
            largest = max(largest, k.size)
            iterations += 1
        act, cnt = np.concatenate(keep_act), np.concatenate(keep_cnt)
        offset += width
        width *= 2
    if stats is not None:
        stats.update(scanned_cells=scanned, largest_block=largest, scan_iterations=iterations)
    return upper


def hit_table(
    test: pl.DataFrame, candidates: pl.DataFrame | pl.LazyFrame, source: str, cfg: EvalConfig,
    refinding: pl.Series | None = None,
) -> pl.DataFrame:
    """Per target: session_id, pos, item_id, triggers (count), hit (bool; null without triggers),
    refinding (bool: the item is already in the user's history, ``recs.eval.novelty``).

    ``candidates`` may be lazy (a scan of a written candidate set): then only the rows that can match
    are ever read into memory. ``refinding``: ``novelty.event_refinding(test)`` when the caller scores
    several sets on one ``test`` and computes it once.
    """
    targets, triggers = target_triggers(test, source, cfg)
    flags = event_refinding(test) if refinding is None else refinding
    targets = targets.with_columns(flags.alias(REFINDING).gather(_target_rows(test, cfg)))
    cand = candidates.lazy().select(pl.col(Col.ITEM).alias(_SITEM), pl.col(Col.CANDIDATE).alias(_TITEM))
    dtype = targets.schema[_TITEM]
    schema = cand.collect_schema()
    common = comparison_dtype(dtype, schema[_SITEM], schema[_TITEM])  # recs.eval.ids: ids compare as names
    pairs = triggers.join(targets.select(_T, _TITEM), on=_T)
    if common is not None:
        # integer widths: an id out of the sessions' range becomes null, which could not match anyway
        cand = cand.cast({_SITEM: common, _TITEM: common}, strict=False)
        pairs = pairs.with_columns(pl.col(_SITEM).cast(common), pl.col(_TITEM).cast(common))
    # Only candidate rows whose (trigger item, target item) could match: two hash-set filters over
    # the candidate table, so the semi-join hashes a few rows instead of the whole table (which is
    # items x k rows, 140M at 10M events, and several GB as a hash table).
    matchable = cand.filter(
        pl.col(_SITEM).is_in(pairs[_SITEM].unique().implode()) & pl.col(_TITEM).is_in(pairs[_TITEM].unique().implode())
    ).collect()
    hits = (
        pairs.join(matchable, on=[_SITEM, _TITEM], how="semi")
        .select(_T)
        .unique()
        .with_columns(pl.lit(True).alias("hit"))
    )
    n_trig = triggers.group_by(_T).len("triggers")
    return (
        targets.join(n_trig, on=_T, how="left")
        .join(hits, on=_T, how="left")
        .with_columns(pl.col("triggers").fill_null(0).cast(pl.Int64))
        .with_columns(
            pl.when(pl.col("triggers") > 0).then(pl.col("hit").fill_null(False)).otherwise(None).alias("hit")
        )
        .sort(_T)
        .select(Col.SESSION, pl.col(_TPOS).alias(Col.POS), pl.col(_TITEM).alias(Col.ITEM), "triggers", "hit",
                REFINDING)
    )


def _target_rows(test: pl.DataFrame, cfg: EvalConfig) -> pl.Series:
    """The input row of each target of ``target_triggers``, in its order (by session, time, row): only
    the target events are sorted, and filtering before or after that sort gives the same rows."""
    return (
        test.select(Col.SESSION, Col.INTERACTION, Col.TIMESTAMP)
        .with_row_index(_ROW)
        .filter(pl.col(Col.INTERACTION).is_in(list(cfg.targets)))
        .sort([Col.SESSION, Col.TIMESTAMP, _ROW])[_ROW]
    )


def hit_rate(
    test: pl.DataFrame, candidates: pl.DataFrame | pl.LazyFrame, source: str, cfg: EvalConfig | None = None
) -> dict[str, Any]:
    """Targets, targets with a trigger, hits and hit rate for one candidate set."""
    cfg = cfg or EvalConfig()
    cfg.validate()
    return hit_counts(hit_table(test, candidates, source, cfg))


def hit_counts(table: pl.DataFrame) -> dict[str, Any]:
    """The counts of ``hit_rate`` from a ``hit_table`` (or any subset of its rows)."""
    with_trigger = int(table["hit"].is_not_null().sum())
    hits = int(table["hit"].fill_null(False).sum())
    return {
        "targets": table.height,
        "targets_with_trigger": with_trigger,
        "targets_without_trigger": table.height - with_trigger,
        "hits": hits,
        "hit_rate": hits / with_trigger if with_trigger else float("nan"),
    }


def split_counts(table: pl.DataFrame) -> dict[str, Any]:
    """Targets, targets with a trigger, hits and hit rate of the re-finding and of the discovery
    targets of a ``hit_table``, as ``refinding_*`` and ``discovery_*`` fields; each pair adds up to
    ``hit_counts`` (the hit rates are those of their own targets with a trigger)."""
    out: dict[str, Any] = {}
    for prefix, part in zip(SPLITS, (table.filter(pl.col(REFINDING)), table.filter(~pl.col(REFINDING))), strict=True):
        counts = hit_counts(part)
        out.update({f"{prefix}_{k}": counts[k] for k in ("targets", "targets_with_trigger", "hits", "hit_rate")})
    return out


def coverage(
    test: pl.DataFrame, candidates: pl.DataFrame | pl.LazyFrame, source: str, catalogue_items: int | None = None
) -> dict[str, Any]:
    """Paper 5.3.3: how many active source items get candidates, how many, and catalogue reach: the
    distinct candidates over ``catalogue_items``, the items the index can list (its training items plus
    a catalogue's listings they lack), so it stays a share when a roll-up lists never-seen items."""
    active = test.filter(pl.col(Col.INTERACTION) == source).select(Col.ITEM).unique()
    # Lazy: the lazy engine counts in bounded memory, where the eager group_by and n_unique over the
    # items x k rows of a candidate table took about 30 bytes a row (440 MB at 15M rows).
    lengths = candidates.lazy().group_by(Col.ITEM).len("n").collect()
    common = comparison_dtype(active.schema[Col.ITEM], lengths.schema[Col.ITEM])
    if common is not None:
        lengths = lengths.cast({Col.ITEM: common}, strict=False)
        active = active.cast({Col.ITEM: common})
    joined = active.join(lengths, on=Col.ITEM, how="left").with_columns(pl.col("n").fill_null(0))
    n_active = joined.height
    reached = candidates.lazy().select(pl.col(Col.CANDIDATE).n_unique()).collect().item()
    return {
        "active_items": n_active,
        "covered_items": int((joined["n"] > 0).sum()),
        # .item() of a one-row select: Series.mean is typed as any scalar, this is the same mean
        "coverage": float(joined.select((pl.col("n") > 0).mean()).item()) if n_active else float("nan"),
        "mean_list_length": float(joined.select(pl.col("n").mean()).item()) if n_active else float("nan"),
        "catalogue_reach": reached / catalogue_items if catalogue_items else float("nan"),
    }
