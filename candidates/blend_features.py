"""Features of a (query item, candidate) row of the blend's union (``recs.candidates.blend``).

The union of the sources' top-k lists is one row per (item, candidate) that any source listed. What
the ranker reads of a row, each for a reason:

* ``<source>_score``, ``<source>_rank``: what each source thought of the candidate (missing where it
  did not list it: LightGBM learns which way missing goes). Ranks are comparable across sources and
  stages; scores carry the margin.
* ``n_sources``: agreement between methods that fail on different targets; ``rrf_score``, the reciprocal
  rank fusion of the sources (sum of 1 / (60 + rank), Cormack et al. 2009): a sum over sources that
  trees would need many splits to approximate, and the order the union is cut to ``union_max`` by.
* candidate and trigger counts per interaction in the training sessions, per million events (so the
  validation stage, fitted on 90% of the log, reads the same scale as the final one): popularity, and
  ``cand_target_share`` = the candidate's events of the pair's target interaction over all its
  events (cart propensity for Click-to-Cart), as a one-of-a-kind item carted once is a strong
  candidate that popularity alone misses.
* ``same_category``, ``same_shop`` when the sessions have those columns.

``ItemStats`` is computed once per stage from its training frame; ``union_rows`` and ``feature_frame``
are polars expressions over one block of query items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from recs.columns import Col

N_SOURCES = "n_sources"
RRF = "rrf_score"
RRF_K = 60.0  # reciprocal rank fusion's constant (Cormack, Clarke, Buettcher, SIGIR 2009)
BEST_RANK = "_best_rank"  # the tie-break of equal model scores: the best rank any source gave


def score_col(source: str) -> str:
    return f"{source}_score"


def rank_col(source: str) -> str:
    return f"{source}_rank"


def same_col(group: str) -> str:
    """The feature "trigger and candidate share this group column" (same_category, same_shop)."""
    return f"same_{'category' if group == Col.CATEGORY else 'shop'}"


@dataclass(frozen=True)
class ItemStats:
    """Per-item counts of one training frame (per million events), and the item's category and shop.

    ``interactions``: the names counted, fixed at the validation stage so both stages produce the same
    feature columns whatever interactions the final frame adds."""

    table: pl.DataFrame  # item_id, n_<interaction>..., n_all, category?, shop_id?
    interactions: tuple[str, ...]
    groups: tuple[str, ...]  # of Col.CATEGORY, Col.SHOP present

    @classmethod
    def of(cls, train: pl.DataFrame, interactions: Sequence[str] | None = None) -> ItemStats:
        names = tuple(sorted(train[Col.INTERACTION].unique().to_list())) if interactions is None else tuple(
            interactions)
        per_million = 1e6 / max(train.height, 1)
        counts = train.group_by(Col.ITEM).agg(
            *[(pl.col(Col.INTERACTION) == n).sum().cast(pl.Float32).mul(per_million).alias(f"n_{n}") for n in names],
            pl.len().cast(pl.Float32).mul(per_million).alias("n_all"),
        )
        groups = tuple(c for c in (Col.CATEGORY, Col.SHOP) if c in train.columns)
        if groups:
            first = train.group_by(Col.ITEM).agg(*[pl.col(c).drop_nulls().first() for c in groups])
            counts = counts.join(first, on=Col.ITEM, how="left")
        return cls(counts, names, groups)

    def feature_names(self, sources: Sequence[str]) -> list[str]:
        """The ranker's columns, in order: the same list at fit and at scoring time."""
        names = [c for s in sources for c in (score_col(s), rank_col(s))] + [N_SOURCES, RRF]
        for side in ("cand", "trig"):
            names += [f"{side}_n_{n}" for n in self.interactions] + [f"{side}_n_all"]
        names.append("cand_target_share")
        names += [same_col(g) for g in self.groups]
        return names


def union_rows(lists: Mapping[str, pl.DataFrame], sources: Sequence[str], keep: int = 0) -> pl.DataFrame:
    """One row per (item_id, candidate_item_id) listed by any source, with each source's score and
    rank (null where it did not list the pair), how many listed it, their reciprocal rank fusion and
    the best rank among them.

    ``keep`` > 0: only each item's ``keep`` best rows by fusion (then best rank, then candidate id). The
    ranker's cost is per row, four sources' top 200 make ~450 rows per item, and the rows all sources
    place low rarely reach the final top k; the same cut at training and at scoring time, so the
    ranker learns on the rows it will order."""
    present = [s for s in sources if s in lists]
    ids = lists[present[0]].schema[Col.ITEM]
    # full joins on (item, candidate), one per source (a source lists a pair at most once: the contract), 2-3x
    # faster than a group_by over the sources' rows stacked, and each sum in a fixed order (source order)
    union: pl.LazyFrame | None = None
    for s in present:
        part = lists[s].lazy().select(pl.col(Col.ITEM).cast(ids), pl.col(Col.CANDIDATE).cast(ids),
                                      pl.col(Col.SCORE).cast(pl.Float32).alias(score_col(s)),
                                      pl.col(Col.RANK).cast(pl.Float32).alias(rank_col(s)))
        union = part if union is None else union.join(part, on=[Col.ITEM, Col.CANDIDATE], how="full", coalesce=True)
    assert union is not None
    ranks = [pl.col(rank_col(s)) for s in present]
    union = union.with_columns(
        *[pl.lit(None, pl.Float32).alias(c) for s in sources if s not in lists for c in (score_col(s), rank_col(s))],
        pl.sum_horizontal([r.is_not_null() for r in ranks]).cast(pl.Float32).alias(N_SOURCES),
        pl.min_horizontal(ranks).alias(BEST_RANK),
        pl.sum_horizontal([(1.0 / (RRF_K + r.cast(pl.Float64))).fill_null(0.0) for r in ranks]).cast(pl.Float32)
        .alias(RRF),
    ).collect()
    if keep <= 0:
        return union
    return (union.sort([Col.ITEM, RRF, BEST_RANK, Col.CANDIDATE], descending=[False, True, False, False])
            .filter(pl.int_range(pl.len()).over(Col.ITEM) < keep))


def feature_frame(union: pl.DataFrame, stats: ItemStats, target: str) -> pl.DataFrame:
    """``union`` with the count and group features joined on (see the module docstring)."""
    table = stats.table
    counts = [c for c in table.columns if c.startswith("n_")]
    cand = table.select(pl.col(Col.ITEM).alias(Col.CANDIDATE), *[pl.col(c).alias(f"cand_{c}") for c in counts],
                        *[pl.col(g).alias(f"_cand_{g}") for g in stats.groups])
    trig = table.select(Col.ITEM, *[pl.col(c).alias(f"trig_{c}") for c in counts],
                        *[pl.col(g).alias(f"_trig_{g}") for g in stats.groups])
    frame = union.join(cand, on=Col.CANDIDATE, how="left").join(trig, on=Col.ITEM, how="left")
    target_count = pl.col(f"cand_n_{target}") if target in stats.interactions else pl.lit(0.0)
    frame = frame.with_columns(
        (target_count / pl.col("cand_n_all")).cast(pl.Float32).alias("cand_target_share"),
        *[(pl.col(f"_cand_{g}") == pl.col(f"_trig_{g}")).cast(pl.Float32)
          .alias(same_col(g)) for g in stats.groups],
    )
    return frame


def matrix(frame: pl.DataFrame, names: Sequence[str]) -> np.ndarray:
    """The feature columns as one float32 matrix (null -> NaN, LightGBM's missing value)."""
    return frame.select([pl.col(n).cast(pl.Float32) for n in names]).to_numpy().astype(np.float32, copy=False)
