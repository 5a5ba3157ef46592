"""``--method blend``: a learned second stage over the other methods' candidate lists.

No single source wins on every log: on sparse real logs the item-level methods (co-visitation, ALS)
find what ours misses, on denser ones ours finds complements they miss, and the sources miss
*different* targets. Large marketplaces therefore take the union of several sources and let a trained
model order it (the paper re-ranks with a purchase model, sec. 5.4; eBay's similar-item ranker
learns from graded labels; OTTO's winners rank co-visitation + embedding candidates with boosted
trees). This generator does that, and is an ordinary ``CandidateGenerator``: ``build-index``,
``compare``, ``eval-hitrate``, ``recommend`` and ``serve`` treat it as any method.

Protocol (no leakage):

1. Carve a validation window from the end of TRAIN by time (``carve_validation``: the last
   ``valid_share`` of sessions, or ``valid_days``); a session is wholly on one side.
2. Fit every source on the part before the cut; for each pair (source -> target interaction) and
   each trigger (the first ``source`` event of an item in a validation session) take the union of
   the sources' top-k lists of the trigger item, with features (``blend_features``), labelled from
   what the session did after the trigger (``blend_labels``: target interaction > purchase > cart >
   other > none).
3. Train a LightGBM LambdaRank model per pair (group = trigger), and keep its order only if, on triggers
   it did not learn from, it keeps at least as many targets in the top k as reciprocal rank fusion or
   any one source's own order (``_choose_order``: a small log's ranker can be worse than both).
4. Refit the sources on the whole of TRAIN (from 500k events only the count-based ones and the item
   counts, the vector sources kept as the validation stage fitted them: ``BlendConfig.refit``); for
   every item, order the union by the order kept and keep the top k. Scoring goes in blocks of query items over
   sorted spills of the sources' lists, so memory holds one block's union, never every (item,
   candidate) of the log; the model scores as a cascade (``_cascade``: the first trees on every row,
   the rest on each item's best rows).

Ties of the model's score (trees are piecewise constant) are broken by the best rank any source gave,
then by candidate id, so a blend of one source whose model is monotone in that source's rank keeps
the source's order (tested).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recs.candidates.base import CandidateGenerator, write_blocks
from recs.candidates.baselines.common import OptionalDependencyError
from recs.candidates.blend_features import (
    BEST_RANK,
    N_SOURCES,
    RRF,
    ItemStats,
    feature_frame,
    matrix,
    rank_col,
    score_col,
    union_rows,
)
from recs.candidates.blend_labels import GROUP, LABEL, group_labels, trigger_groups
from recs.candidates.index_check import set_name
from recs.columns import Col
from recs.config import BLEND, BLEND_REFIT_ALL_BELOW, MethodConfig
from recs.errors import ConfigError, InputError
from recs.progress import NullProgress, Progress
from recs.sessions.split import carve_validation

# feature families a blend may read (BlendConfig has no say in this; tests restrict it)
FEATURE_FAMILIES: tuple[str, ...] = ("sources", "counts", "groups")
_PRED = "_pred"
PAIR = "pair"  # the pooled ranker's categorical feature: which pair (index into the pairs) a row is of
HARD_RANK = 20  # a candidate this high in any source's list is always kept as a training negative
MIN_HELD_GROUPS = 20  # fewer held-out triggers than this choose no number of rounds: ``rounds`` is used
# the orders a pair's lists may take (``_choose_order``): the ranker's, reciprocal rank fusion's, or a source's name
MODEL_ORDER, RRF_ORDER = "model", "rrf"
FOLDS = 5  # the ranker's order is judged on out-of-fold predictions of this many rankers...
CV_MAX_GROUPS = 1_000  # ...up to this many labelled triggers; beyond, on the held-out fifth (>= 200 triggers)
MIN_ORDER_GROUPS = FOLDS  # fewer labelled triggers than this say nothing about any order: fusion is kept
ORDER_Z = 1.96  # another order replaces the ranker's only when its paired gain per trigger is this many SEs


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError:
        raise OptionalDependencyError(
            "--method blend needs LightGBM: pip install 'recs[blend]' (or 'recs[compare]')") from None
    return lightgbm


@dataclass
class BlendCandidates(CandidateGenerator):
    """The union of several methods' lists, ordered by a LambdaRank model learnt on a validation window."""

    methods: MethodConfig = field(default_factory=MethodConfig)
    progress: Progress = field(default_factory=NullProgress, repr=False)
    name: str = BLEND
    interaction_aware: bool = True
    features: tuple[str, ...] = FEATURE_FAMILIES
    # sources already fitted on the very frame ``fit`` gets, by name (``recs compare`` fits them for its
    # own rows): the final stage reuses them instead of fitting them again
    prefit: dict[str, CandidateGenerator] = field(default_factory=dict, repr=False)
    _sources: dict[str, CandidateGenerator] = field(default_factory=dict, repr=False)
    _rankers: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _stats: ItemStats | None = field(default=None, repr=False)
    _names: dict[tuple[str, str], list[str]] = field(default_factory=dict, repr=False)  # each ranker's columns
    _details: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict, repr=False)
    _valid: dict[str, Any] = field(default_factory=dict, repr=False)
    # item-level sources answer one list for every pair: spilled once, read by each pair's scoring
    _spills: dict[tuple[str, int], Path] = field(default_factory=dict, repr=False)
    _scratch: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    _used: tuple[str, ...] = field(default=(), repr=False)  # the sources fitted: those of the config the log allows
    # per pair, the order its lists take: MODEL_ORDER, RRF_ORDER or a source's name (``_choose_order``)
    _orders: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        return self.methods.index.pairs

    @property
    def k(self) -> int:
        return self.methods.index.k

    def _keep(self, k: int) -> int:
        """Union rows per item the ranker orders: ``union_max`` (0: all), never fewer than the k asked for."""
        cut = self.methods.blend.union_max
        return 0 if cut <= 0 else max(cut, k)

    def _reset(self) -> None:
        self._sources, self._rankers, self._stats, self._details, self._valid = {}, {}, None, {}, {}
        self._names, self._spills, self._orders = {}, {}, {}
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def settings(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"blend": asdict(self.methods.blend), "pairs": [list(p) for p in self.pairs], "k": self.k,
                "features": list(self.features), "validation": self._valid}

    # -- fitting ------------------------------------------------------------------------------------

    def _fit(self, train: pl.DataFrame) -> None:
        cfg = self.methods.blend
        cfg.validate()
        lgb = _lightgbm()
        unknown = [f for f in self.features if f not in FEATURE_FAMILIES]
        if unknown or not self.features:
            raise ConfigError(f"blend features: {unknown or 'none'}; choose from {', '.join(FEATURE_FAMILIES)}")
        self._used, left_out = self._usable_sources(train)
        carve = carve_validation(train, cfg.valid_share, cfg.valid_days)
        fit_part, valid = carve.train, carve.test
        self._valid = {"cutoff": carve.cutoff.isoformat(), "fit_events": fit_part.height, "valid_events": valid.height,
                       "valid_sessions": valid[Col.SESSION].n_unique()}
        if left_out:
            self._valid["left_out"] = left_out
        stage = self._fit_sources(fit_part, "validation stage", reuse=False)
        stats = ItemStats.of(fit_part)
        names = self._feature_names(stats)
        data = {}
        unions: dict[tuple[str, str], pl.DataFrame] = {}
        for i, (source, target) in enumerate(self.pairs):
            rows, groups, details, full = self._training_rows(stage, stats, valid, source, target)
            x = matrix(rows, names)
            if cfg.pool_pairs:
                x = np.column_stack([x, np.full(rows.height, i, dtype=np.float32)])
            data[(source, target)] = (x, rows[LABEL].to_numpy(), groups)
            self._details[(source, target)] = details
            if cfg.order == "auto" and not cfg.pool_pairs:  # only the order choice reads every union row
                unions[(source, target)] = full
        # A pair without a single labelled trigger (a sparse log's Cart-to-Cart) learns from the other pairs'
        # triggers: the ranker of their pooled rows. With none at all there is nothing to learn from.
        empty = [f"{s}->{t}" for (s, t), (_, y, _) in data.items() if y.size == 0]
        if len(empty) == len(data):
            wanted = sum(d.get("targets", 0) for d in self._details.values())
            if not wanted:
                raise InputError(
                    f"blend: no {', '.join(empty)} trigger of the validation window ({self._valid['valid_sessions']} "
                    f"sessions from {self._valid['cutoff']}) is followed in its session by a cart or purchase, "
                    "so there is nothing to learn from; give a longer window (--valid-share, "
                    "--valid-days) or more sessions")
            # targets followed the triggers, but no source listed one: nothing to learn an order from, and
            # fusion of the sources is the order that needs no learning (``_choose_order``)
            for pair in data:
                self._rankers[pair], self._names[pair], self._orders[pair] = None, list(names), RRF_ORDER
                self._details[pair] |= {"order": RRF_ORDER, "order_chosen_by": (
                    f"no labelled trigger: none of the {wanted} carts and purchases after a validation trigger is "
                    "among the sources' candidates")}
        elif cfg.pool_pairs:  # one ranker learns from every pair's triggers; the pair is a categorical feature
            self._train(lgb, data, [*names, PAIR])
        else:
            for pair, part in data.items():
                if part[1].size:
                    self._train(lgb, {pair: part}, names, union=unions.get(pair))
            lacking = [pair for pair, part in data.items() if not part[1].size]
            if lacking:
                self._train(lgb, {pair: part for pair, part in data.items() if part[1].size}, names, for_pairs=lacking)
        del unions
        self._sources = self._final_sources(train, stage)
        del stage
        self.prefit = {}  # fitted on this frame only: a later fit on another frame must not reuse them
        self._stats = ItemStats.of(train, stats.interactions)

    def _train(self, lgb: Any, data: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]],
               names: list[str], for_pairs: list[tuple[str, str]] | None = None,
               union: pl.DataFrame | None = None) -> None:
        """Train one ranker on the rows of ``data``'s pairs and keep it for each of them (or for ``for_pairs``).

        ``union`` (one pair's every union row of its triggers): the ranker's order is compared on triggers it did
        not learn from with the orders that learn nothing (``_choose_order``), and the best is kept."""
        t = time.perf_counter()
        x = np.concatenate([d[0] for d in data.values()])
        y = np.concatenate([d[1] for d in data.values()])
        sizes = np.concatenate([d[2] for d in data.values()])
        booster, rounds, held, stopped = self._train_ranker(lgb, x, y, sizes, names)
        order = self.methods.blend.order
        choice: dict[str, Any] = {"order": RRF_ORDER if order == RRF_ORDER else MODEL_ORDER, "order_chosen_by": order}
        if union is not None and order == "auto":
            choice = self._choose_order(lgb, union, x, y, sizes, names, held, stopped, rounds)
        gains = booster.feature_importance(importance_type="gain")
        total = float(gains.sum()) or 1.0
        importance = {n: round(float(g) / total, 4) for n, g in sorted(zip(names, gains, strict=True),
                                                                       key=lambda x: -x[1])}
        for pair in for_pairs or data:
            self._rankers[pair] = booster
            self._names[pair] = list(names)
            self._orders[pair] = choice["order"]
            self._details[pair] |= {**choice, "importance": importance, "train_rows": int(y.size),
                                    "rounds": rounds,
                                    "train_s": round(time.perf_counter() - t, 3),
                                    "learnt_from": [f"{src}->{tgt}" for src, tgt in data]}

    def _usable_sources(self, train: pl.DataFrame) -> tuple[tuple[str, ...], dict[str, str]]:
        """The configured sources, less those that need a column this log lacks (same-category without a
        ``category`` column), which are named in the manifest (``validation.left_out``). Given only such
        sources, there is nothing to blend: one error naming them."""
        from recs.candidates.registry import method_spec

        used, left_out = [], {}
        for name in self.methods.blend.sources:  # validated names: method_spec finds each
            column = method_spec(name, "sources").needs_column
            if column is not None and (column not in train.columns or train[column].null_count() == train.height):
                left_out[name] = f"the sessions have no {column!r} values"
            else:
                used.append(name)
        if not used:
            raise InputError(f"blend sources: {', '.join(f'{n} ({why})' for n, why in left_out.items())}; "
                             "give --sources that this log can fit")
        return tuple(used), left_out

    def _final_sources(self, train: pl.DataFrame, stage: dict[str, CandidateGenerator]
                       ) -> dict[str, CandidateGenerator]:
        """The sources the lists are written from (``BlendConfig.refit``): every one fitted again on the whole of
        TRAIN, or only the count-based ones, the vector sources kept as the validation stage fitted them.

        Training skip-gram is most of a source's cost, and fitting it twice made the blend 5.7x ours at 1M events.
        Kept, a vector source's lists miss what only the validation window (the last tenth) says about its items,
        but the count-based sources and the item counts are refitted, so items new in the window still get and
        are candidates; and the ranker then scores the features of the very models it learnt from."""
        from recs.candidates.registry import method_spec

        refit = self.methods.blend.refit
        if refit == "auto":
            refit = "all" if train.height < BLEND_REFIT_ALL_BELOW else "vectors-kept"
        self._valid["refit"] = refit
        kept = {} if refit == "all" else {
            name: gen for name, gen in stage.items() if method_spec(name).searches_vectors}
        if kept:
            self._valid["kept_from_validation_stage"] = sorted(kept)
        fitted = self._fit_sources(train, "final stage", reuse=True, skip=tuple(kept))
        return {name: kept[name] if name in kept else fitted[name] for name in self._used}

    def _source_methods(self) -> MethodConfig:
        """The sources' config: the blend's, with the vector sources searching as ``BlendConfig.search`` says (an
        exact scan up to 50k target rows, where it is faster than building the graph)."""
        from dataclasses import replace

        return replace(self.methods, index=replace(self.methods.index, search=self.methods.blend.search))

    def _fit_sources(self, frame: pl.DataFrame, what: str, reuse: bool, skip: tuple[str, ...] = ()
                     ) -> dict[str, CandidateGenerator]:
        from recs.candidates.registry import build_method  # the registry builds blend too: imported when used

        out: dict[str, CandidateGenerator] = {}
        for name in self._used:
            if name in skip:
                continue
            if reuse and name in self.prefit:
                out[name] = self.prefit[name]
                continue
            gen = build_method(name, self._source_methods(), self.progress)
            t = time.perf_counter()
            try:
                gen.fit(frame)
            except ConfigError as e:
                raise ConfigError(f"blend source {name} ({what}): {e}") from None
            self._valid.setdefault("fit_s", {}).setdefault(what, {})[name] = round(time.perf_counter() - t, 2)
            out[name] = gen
        return out

    def _feature_names(self, stats: ItemStats) -> list[str]:
        names = stats.feature_names(self._used)
        keep = []
        source_cols = {c for s in self._used for c in (score_col(s), rank_col(s))} | {N_SOURCES, RRF}
        for n in names:
            family = "sources" if n in source_cols else "groups" if n.startswith("same_") else "counts"
            if family in self.features:
                keep.append(n)
        if not keep:
            raise ConfigError(f"blend features {', '.join(self.features)}: none on these sessions (same_category and "
                              "same_shop need those columns)")
        return keep

    def _training_rows(
        self, stage: dict[str, CandidateGenerator], stats: ItemStats, valid: pl.DataFrame, source: str, target: str
    ) -> tuple[pl.DataFrame, np.ndarray, dict[str, Any], pl.DataFrame]:
        """The labelled union rows of the validation triggers of one pair, ordered by group: the rows the ranker
        learns from (positives, hard negatives and a sample of the rest), their group sizes, the details for the
        manifest, and every union row of those triggers (to compare orderings on, ``_choose_order``)."""
        cfg = self.methods.blend
        groups = trigger_groups(valid, source)
        labels = group_labels(valid, groups, target)
        positive = labels.filter(pl.col(LABEL) >= cfg.min_grade).select(GROUP).unique()
        groups = groups.join(positive, on=GROUP, how="semi").sort(GROUP)  # joins keep no order; samples need one
        if groups.height > cfg.max_groups:  # a seeded sample, kept in group order
            groups = groups.sample(cfg.max_groups, seed=cfg.seed).sort(GROUP)
        triggers = groups.select(Col.ITEM).unique()
        lists = {name: gen.candidates_of(source, target, self.k, triggers[Col.ITEM]) for name, gen in stage.items()}
        union = feature_frame(union_rows(lists, self._used, self._keep(self.k)), stats, target)
        rows = (
            groups.select(GROUP, Col.ITEM)
            .join(union, on=Col.ITEM)
            .join(labels, on=[GROUP, Col.CANDIDATE], how="left")
            .with_columns(pl.col(LABEL).fill_null(0))
        )
        # what the sources could find: the share of the triggers' carts and purchases (grade >= min_grade) in the union
        wanted = labels.join(groups.select(GROUP), on=GROUP, how="semi").filter(pl.col(LABEL) >= cfg.min_grade).height
        found = rows.filter(pl.col(LABEL) >= cfg.min_grade).height
        useful = rows.group_by(GROUP).agg(pl.col(LABEL).max().alias("_max")).filter(pl.col("_max") >= cfg.min_grade)
        rows = rows.join(useful.select(GROUP), on=GROUP, how="semi").sort(GROUP, Col.CANDIDATE)
        # every positive, the hard negatives (near the top of some source's list) and a seeded sample of
        # ``negatives`` of the rest: the ranker's cost grows with rows per group, and far-down negatives teach it
        # little. Rows are in (group, candidate) order first, so the sample is the same on every run.
        full = rows  # every union row of the kept triggers: what the orderings are compared on (``_orders``)
        kept = (pl.col(LABEL) > 0) | (pl.col(BEST_RANK) <= HARD_RANK)
        rows = (rows.with_columns(pl.int_range(pl.len()).shuffle(cfg.seed).over(GROUP, kept).alias("_draw"))
                .filter(kept | (pl.col("_draw") < cfg.negatives))
                .drop("_draw"))
        sizes = rows.group_by(GROUP, maintain_order=True).len()["len"].to_numpy()
        details = {"groups": int(sizes.size), "rows": rows.height, "targets": wanted, "targets_in_union": found,
                   "union_recall": round(found / wanted, 4) if wanted else None,
                   "mean_rows_per_trigger": round(rows.height / max(sizes.size, 1), 1)}
        return rows, sizes, details, full

    def _train_ranker(self, lgb: Any, x: np.ndarray, y: np.ndarray, sizes: np.ndarray, names: list[str]
                      ) -> tuple[Any, int, np.ndarray | None, Any]:
        """The ranker, with as many rounds as held-out triggers say help (``early_stop``), retrained on all rows;
        its rounds; and the held-out groups and the ranker that did not see them (None without early stopping)."""
        cfg = self.methods.blend
        rounds = cfg.rounds
        held = self._held_out(sizes)
        stopped = None
        if held is not None:
            rows = np.repeat(held, sizes)
            stopped = self._boost(lgb, x[~rows], y[~rows], sizes[~held], names, cfg.rounds,
                                  valid=(x[rows], y[rows], sizes[held]))
            rounds = max(stopped.best_iteration, 1)
        return self._boost(lgb, x, y, sizes, names, rounds), rounds, held, stopped

    def _choose_order(self, lgb: Any, union: pl.DataFrame, x: np.ndarray, y: np.ndarray, sizes: np.ndarray,
                      names: list[str], held: np.ndarray | None, stopped: Any, rounds: int) -> dict[str, Any]:
        """The order a pair's lists take: the ranker's, unless an order that learns nothing (reciprocal rank
        fusion of the sources, or one source's own order) keeps clearly more of the validation triggers'
        targets in the top k, judged on triggers the ranker did not learn from.

        A ranker is only as good as the triggers it learnt from: on a small log (a few hundred validation
        sessions, a few dozen Cart-to-Cart triggers) it can order the union worse than fusion, or than the one
        source that suits the log, and "at least the best of its methods" would not hold. So the ranker is
        judged the way the hit rate judges lists: per trigger, its carts and purchases among each order's top k
        of the whole union (not the sampled rows it learnt from), from out-of-fold predictions of ``FOLDS``
        rankers (every trigger judged, up to ``CV_MAX_GROUPS`` triggers) or, with more triggers, on the held-out
        fifth of the early stopping by the ranker that did not see it. The orders that learn nothing are judged
        on the same triggers. Picking the best of seven noisy shares would often pick noise (on 42 held-out
        Cart-to-Cart triggers fusion "won" and then lost 0.06 on the test day), so the ranker is replaced only by
        an order whose paired per-trigger gain over it is beyond ``ORDER_Z`` standard errors."""
        cfg = self.methods.blend
        groups = union[GROUP].unique(maintain_order=True)
        n = groups.len()
        if n != sizes.size:  # the rows learnt from and the union are of the same triggers, in the same order
            raise AssertionError(f"blend: {n} triggers in the union, {sizes.size} learnt from")
        if n < MIN_ORDER_GROUPS:
            return {"order": RRF_ORDER, "order_chosen_by": f"{n} labelled trigger(s): too few to judge a ranker on"}
        if n <= CV_MAX_GROUPS or held is None or stopped is None:
            how = f"{FOLDS}-fold, {rounds} rounds"
            fold = np.random.default_rng(cfg.seed).permutation(n) % FOLDS
            rows = np.repeat(fold, sizes)
            pieces = []
            for f in range(FOLDS):
                ranker = self._boost(lgb, x[rows != f], y[rows != f], sizes[fold != f], names, rounds)
                part = union.join(groups.filter(pl.Series(fold == f)).to_frame(), on=GROUP, how="semi")
                pieces.append(part.with_columns(
                    pl.Series(_PRED, ranker.predict(matrix(part, names), num_threads=cfg.workers))))
            scored = pl.concat(pieces)
        else:
            how = "held-out fifth"
            part = union.join(groups.filter(pl.Series(held)).to_frame(), on=GROUP, how="semi")
            scored = part.with_columns(pl.Series(_PRED, stopped.predict(matrix(part, names), num_threads=cfg.workers)))
        targets = scored.filter(pl.col(LABEL) >= cfg.min_grade).height
        kept = {MODEL_ORDER: _found(scored, self.k, cfg.min_grade)}
        fused = scored.with_columns(pl.col(RRF).alias(_PRED))
        kept[RRF_ORDER] = _found(fused, self.k, cfg.min_grade)
        for name in self._used:
            kept[name] = _found(fused, self.k, cfg.min_grade, first=rank_col(name))
        gains = {o: _paired_z(v, kept[MODEL_ORDER]) for o, v in kept.items() if o != MODEL_ORDER}
        better = [o for o, z in gains.items() if z > ORDER_Z]
        best = max(better, key=lambda o: kept[o].sum()) if better else MODEL_ORDER  # the first of the best
        return {"order": best, "order_chosen_by": how, "order_triggers": int(kept[MODEL_ORDER].size),
                "order_recall": {o: round(float(v.sum()) / targets, 4) if targets else None for o, v in kept.items()},
                # JSON has no infinity: a gain on every trigger alike is written as 999
                "order_gain_z": {o: round(min(z, 999.0), 2) for o, z in gains.items()}}

    def _held_out(self, sizes: np.ndarray) -> np.ndarray | None:
        """A seeded fifth of the groups, to choose the number of rounds on; None when early stopping is off or
        too few groups would be held out to say anything (then ``rounds`` as configured)."""
        cfg = self.methods.blend
        n_held = sizes.size // 5
        if cfg.early_stop <= 0 or n_held < MIN_HELD_GROUPS:
            return None
        held = np.zeros(sizes.size, dtype=bool)
        held[np.random.default_rng(cfg.seed).choice(sizes.size, n_held, replace=False)] = True
        return held

    def _boost(self, lgb: Any, x: np.ndarray, y: np.ndarray, sizes: np.ndarray, names: list[str], rounds: int,
               valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Any:
        cfg = self.methods.blend
        monotone = [-1 if n.endswith("_rank") else 1 if n.endswith("_score") else 0 for n in names]
        params = {
            "objective": "lambdarank", "learning_rate": cfg.learning_rate, "num_leaves": cfg.num_leaves,
            "min_data_in_leaf": cfg.min_data_in_leaf, "seed": cfg.seed, "deterministic": True,
            "force_row_wise": True, "num_threads": cfg.workers, "verbosity": -1,
            "label_gain": [0.0, 1.0, 3.0, 7.0, 15.0],
            "monotone_constraints": monotone, "monotone_constraints_method": "basic",
        }
        # positional names: LightGBM rewrites or refuses names with spaces or JSON characters, and interaction
        # names (hence feature names) are free text; the real names are kept beside the ranker (``_names``)
        positional = [f"f{i}" for i in range(len(names))]
        categorical = [positional[names.index(PAIR)]] if PAIR in names else "auto"
        data = lgb.Dataset(x, label=y.astype(np.int32), group=sizes, feature_name=positional, free_raw_data=True,
                           categorical_feature=categorical)
        if valid is None:
            return lgb.train(params, data, num_boost_round=rounds)
        held = lgb.Dataset(valid[0], label=valid[1].astype(np.int32), group=valid[2], reference=data,
                           feature_name=positional, categorical_feature=categorical)
        params |= {"metric": "ndcg", "eval_at": [self.k]}
        return lgb.train(params, data, num_boost_round=rounds, valid_sets=[held],
                         callbacks=[lgb.early_stopping(cfg.early_stop, first_metric_only=True, verbose=False)])

    def save_files(self, directory: Path) -> dict[str, Any]:
        """The ranker of every pair as LightGBM's text model (``blend/<source>_to_<target>.lgbm.txt``):
        it says which features it read and how, and ``lightgbm.Booster(model_file=...)`` loads it."""
        (directory / "blend").mkdir(exist_ok=True)
        files = {}
        for (source, target), booster in self._rankers.items():
            if booster is None:  # fusion: no ranker was learnt (``set_details`` says why)
                continue
            rel = f"blend/{set_name(source, target)}.lgbm.txt"
            booster.save_model(str(directory / rel))
            files[rel] = f"LightGBM {booster.params.get('objective', 'lambdarank')} ranker of {source}->{target}"
        return files

    # -- candidates ---------------------------------------------------------------------------------

    def set_details(self, source: str, target: str) -> dict[str, Any]:
        return {"blend": self._details.get((source, target), {})}

    def _spill_of(self, name: str, source: str, target: str, width: int, pair_dir: Path) -> Path:
        """Source ``name``'s lists sorted by item: an item-level source's once for every pair (in the blend's
        scratch directory), an interaction-aware one's per pair (in ``pair_dir``, removed after the pair)."""
        gen = self._sources[name]
        if gen.interaction_aware:
            return _spill(gen, source, target, width, pair_dir / f"{self._used.index(name)}.parquet")
        if (name, width) not in self._spills:
            assert self._scratch is not None
            path = Path(self._scratch.name) / f"{len(self._spills)}.parquet"
            self._spills[(name, width)] = _spill(gen, source, target, width, path)
            gen.forget_lists()  # the spill serves every pair; memory keeps no copy of the source's whole list
        return self._spills[(name, width)]

    def _candidate_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        if (source, target) not in self._rankers:
            fitted = ", ".join(f"{s}:{t}" for s, t in self._rankers)
            raise ConfigError(f"blend: no ranker for {source}:{target}; it was fitted for {fitted} (the pairs are "
                              "given before fit: --pairs, or MethodConfig.index.pairs)")
        return self._scored_blocks(source, target, k)

    def _scored_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        cfg = self.methods.blend
        assert self._stats is not None
        booster = self._rankers[(source, target)]
        names = self._names[(source, target)]
        order = self._orders.get((source, target), MODEL_ORDER)
        width = max(k, self.k)
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="recs-blend-")
        # where the pair's time goes, for the manifest (``scoring_s``): the sources' lists, their union and
        # features, the ranker's scores and the top k
        spent = dict.fromkeys(("lists", "union", "model", "top_k"), 0.0)
        with tempfile.TemporaryDirectory(prefix="pair-", dir=self._scratch.name) as scratch:
            t = time.perf_counter()
            spills = {name: self._spill_of(name, source, target, width, Path(scratch)) for name in self._used}
            spent["lists"] += time.perf_counter() - t
            items = pl.concat([pl.scan_parquet(p).select(Col.ITEM).unique() for p in spills.values()],
                              how="vertical_relaxed").unique().sort(Col.ITEM).collect()[Col.ITEM]
            empty = True
            with self.progress.stage(f"blend {source}->{target}", total=len(items), unit="item") as bar:
                for a in range(0, len(items), cfg.block_items):
                    block = items.slice(a, cfg.block_items)
                    # literals, not names: a string id would otherwise be read as a column name
                    lo, hi = pl.lit(block[0], items.dtype), pl.lit(block[-1], items.dtype)
                    t = time.perf_counter()
                    lists = {name: pl.scan_parquet(p).filter(pl.col(Col.ITEM).is_between(lo, hi)).collect()
                             for name, p in spills.items()}
                    frame = feature_frame(union_rows(lists, self._used, self._keep(k)), self._stats, target)
                    t, spent["union"] = time.perf_counter(), spent["union"] + time.perf_counter() - t
                    if order != MODEL_ORDER:  # an order that learns nothing won on the validation triggers
                        scored = frame.with_columns(pl.col(RRF).alias(_PRED))
                        first = None if order == RRF_ORDER else rank_col(order)
                    else:
                        x = matrix(frame, [n for n in names if n != PAIR])
                        if PAIR in names:
                            x = np.column_stack([x, np.full(frame.height, self.pairs.index((source, target)),
                                                            dtype=np.float32)])
                        scored, first = self._cascade(booster, x, frame, k), None
                    t, spent["model"] = time.perf_counter(), spent["model"] + time.perf_counter() - t
                    out = _top_k(scored, k, first=first)
                    spent["top_k"] += time.perf_counter() - t
                    empty = False
                    yield out
                    bar.update(len(block))
            self._details.setdefault((source, target), {})["scoring_s"] = {n: round(v, 2) for n, v in spent.items()}
            if empty:
                yield pl.DataFrame(schema={Col.ITEM: items.dtype, Col.CANDIDATE: items.dtype, Col.RANK: pl.Int32,
                                           Col.SCORE: pl.Float32})


    def _cascade(self, booster: Any, x: np.ndarray, frame: pl.DataFrame, k: int) -> pl.DataFrame:
        """``frame``'s rows that may reach an item's top k, with the model's score (``_PRED``).

        The first ``cascade_trees`` trees score every row; each item's ``cascade_keep`` best rows by that
        partial score (ties: best source rank, then candidate id, as ``_top_k``) get the remaining trees,
        added to the partial score: a gradient-boosted model's score is the sum of its trees, so a kept
        row's score is the full model's (to float rounding). The rest are dropped. Scoring is per (row,
        tree), the union holds ~3x k rows per item, and the first trees already separate the rows that
        end near the top from the long tail, so most trees are spent on the rows that compete."""
        cfg = self.methods.blend
        first, keep = cfg.cascade_trees, max(cfg.cascade_keep, k)
        if first <= 0 or first >= booster.current_iteration():
            pred = booster.predict(x, num_threads=cfg.workers)
            return frame.with_columns(pl.Series(_PRED, pred.astype(np.float32)))
        part = booster.predict(x, num_iteration=first, num_threads=cfg.workers)
        row = "_row"
        rows = (
            frame.select(Col.ITEM, BEST_RANK, Col.CANDIDATE)
            .with_columns(pl.Series(_PRED, part), pl.int_range(pl.len(), dtype=pl.UInt32).alias(row))
            .sort([Col.ITEM, _PRED, BEST_RANK, Col.CANDIDATE], descending=[False, True, False, False])
            .filter(pl.int_range(pl.len()).over(Col.ITEM) < keep)[row]
            .sort()
            .to_numpy()
        )
        rest = booster.predict(x[rows], start_iteration=first, num_threads=cfg.workers)
        full = (part[rows] + rest).astype(np.float32)
        return frame[rows].with_columns(pl.Series(_PRED, full))


def _spill(gen: CandidateGenerator, source: str, target: str, k: int, path: Path) -> Path:
    """One source's list written to ``path`` sorted by item, in row groups, so a block of query items
    reads only the row groups whose item range it overlaps (parquet statistics)."""
    unsorted = path.with_suffix(".raw.parquet")
    write_blocks((b.select(Col.ITEM, Col.CANDIDATE, Col.RANK, Col.SCORE)
                  for b in gen.candidate_blocks(source, target, k)), unsorted)
    pl.scan_parquet(unsorted).sort(Col.ITEM, Col.RANK).sink_parquet(path, row_group_size=262_144)
    unsorted.unlink()
    return path


def _order_by(first: str | None) -> tuple[list[str], list[bool]]:
    """Sort keys after the query item: ``first`` (a source's rank, best first, unlisted last), then the score
    (``_PRED``: the model's, or fusion's), then the best rank any source gave, then the candidate id."""
    keys, descending = [_PRED, BEST_RANK, Col.CANDIDATE], [True, False, False]
    return ([first, *keys], [False, *descending]) if first else (keys, descending)


def _found(scored: pl.DataFrame, k: int, min_grade: int, first: str | None = None) -> np.ndarray:
    """Per trigger (in group order), the labelled rows (grade >= ``min_grade``) among its top k of ``scored``
    ordered by ``_order_by(first)``."""
    keys, descending = _order_by(first)
    return (scored.sort([GROUP, *keys], descending=[False, *descending], nulls_last=True)
            .with_columns(((pl.int_range(pl.len()).over(GROUP) < k) & (pl.col(LABEL) >= min_grade)).alias("_found"))
            .group_by(GROUP, maintain_order=True)
            .agg(pl.col("_found").sum())["_found"].to_numpy())


def _paired_z(other: np.ndarray, base: np.ndarray) -> float:
    """How many standard errors the mean per-trigger gain of ``other`` over ``base`` is (a paired z; +inf
    for a gain on every trigger alike, 0 for none)."""
    d = other.astype(np.float64) - base
    if d.size < 2:
        return 0.0
    se = d.std(ddof=1) / np.sqrt(d.size)
    mean = float(d.mean())
    return mean / se if se > 0 else (np.inf if mean > 0 else 0.0)


def _top_k(frame: pl.DataFrame, k: int, first: str | None = None) -> pl.DataFrame:
    """Per item the k best candidates by ``_order_by(first)``: by score (model or fusion), then best source
    rank, then candidate id; with ``first``, by that source's rank before all of them."""
    keys, descending = _order_by(first)
    return (
        frame.sort([Col.ITEM, *keys], descending=[False, *descending], nulls_last=True)
        .with_columns(pl.int_range(1, pl.len() + 1).over(Col.ITEM).cast(pl.Int32).alias(Col.RANK))
        .filter(pl.col(Col.RANK) <= k)
        .select(Col.ITEM, Col.CANDIDATE, Col.RANK, pl.col(_PRED).cast(pl.Float32).alias(Col.SCORE))
    )
