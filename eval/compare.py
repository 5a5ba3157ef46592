"""``recs compare``: every method of the paper's Table 1 trained on one split and scored one way.

Each method is a ``CandidateGenerator``: fitted on the training sessions, asked for its Click-to-Cart
and Cart-to-Cart sets with the same ``k``, and scored with the same purchase-intent hit rate
(``recs.eval.hitrate``) on the same test sessions. Fit and candidate generation are timed per method;
scoring is not part of a method's time.

How item-level methods (one list per item, interaction ignored) are scored. Their one list serves
every column, and the *trigger* interaction still selects the triggers, as the hit-rate definition
says: in the Click-to-Cart column the triggers are the last clicked items, in Cart-to-Cart the last
carted items. So those two columns compare all methods on exactly the same targets and triggers.
The extra **Item-to-Item** column (item-level methods only) is their hit rate when the triggers are
the last N distinct items with *any* earlier event, the way an item-level system is served ("items
you looked at or acted on").

The result is a dict of plain tables (lists of row dicts), ready for the CLI, JSON and HTML:
``table1`` (methods x columns, plus time), ``table3`` (our model's trigger x candidate interaction),
``table2`` (category cosine similarity, when the sessions have a category), ``coverage`` and
``hits`` (counts behind every hit rate), ``intervals`` (each hit rate's bootstrap interval, sessions
resampled) and ``differences`` (each method's hit rate minus ours', and minus blend's when blend is
compared, with the paired bootstrap interval and a verdict: ``recs.eval.intervals``).

This module only fits, asks and scores: the methods are built by ``recs.candidates.registry``, every
set is scored by ``recs.eval.report.evaluate_sets`` (the scorer of ``recs eval-hitrate``), the
settings are ``recs.config.CompareConfig`` and Table 2 comes from ``recs.embeddings.similarity``.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import polars as pl

from recs.candidates.base import CandidateGenerator
from recs.candidates.blend import BlendCandidates
from recs.candidates.embedding import EmbeddingCandidates
from recs.candidates.registry import INTERACTION, METHODS, NO_INTERACTION, OURS, PEER
from recs.checks import check_interactions
from recs.columns import Col, Interaction
from recs.config import BLEND, CompareConfig, config_dict
from recs.embeddings.similarity import category_similarity, item_categories
from recs.errors import RecsError
from recs.eval.hitrate import ANY, any_trigger_view
from recs.eval.intervals import bootstrap
from recs.eval.report import evaluate_sets
from recs.progress import NullProgress, Progress

CLICK, CART = Interaction.CLICK, Interaction.CART
ITEM_TO_ITEM, CLICK_TO_CART, CART_TO_CART = "item_to_item", "click_to_cart", "cart_to_cart"
SETS: dict[str, tuple[str, str]] = {CLICK_TO_CART: (CLICK, CART), CART_TO_CART: (CART, CART)}
# the fields of an evaluate_sets row that go to the coverage table; the others go to the hits table
COVERAGE_FIELDS = ("active_items", "covered_items", "coverage", "mean_list_length", "catalogue_reach")
# methods every other method's hit rate is compared with (paired bootstrap), those of them compared
REFERENCES: tuple[str, ...] = (OURS, BLEND)
TUNED = "ours-tuned"  # the row of our model with ``CompareConfig.tuned_*`` settings (``recs compare --tuned``)

# the registry's names, the config and Table 2 are re-exported: the CLI, the HTML report and the tests read them here
__all__ = ["ANY", "CART_TO_CART", "CLICK_TO_CART", "INTERACTION", "ITEM_TO_ITEM", "METHODS", "NO_INTERACTION", "OURS",
           "PEER", "SETS", "CompareConfig", "any_trigger_view", "category_similarity", "compare", "item_categories"]


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _score(
    test: pl.DataFrame, any_view: pl.DataFrame, frames: dict[str, pl.DataFrame], cfg: CompareConfig,
    catalogue: int, units: dict[str, pl.DataFrame],
) -> tuple[dict[str, float | None], list[dict[str, Any]], list[dict[str, Any]]]:
    """Hit rate per column, plus the rows of the hits and coverage tables, all from ``evaluate_sets``
    (the scorer of ``recs eval-hitrate``). Item-to-Item is scored on the any-trigger view. ``units``
    receives each column's per-session sums: the intervals are drawn for all methods at once
    (``_intervals``), so they are not drawn here."""
    rates: dict[str, float | None] = {}
    hits, cover = [], []
    for column, frame in frames.items():
        source, data = (ANY, any_view) if column == ITEM_TO_ITEM else (SETS[column][0], test)
        (row,) = evaluate_sets(data, {column: (source, frame)}, replace(cfg.eval, bootstrap=0), catalogue,
                               units=units)
        row = {k: _nan_to_none(v) for k, v in row.items() if k != "candidate_set"}
        rates[column] = row["hit_rate"]
        hits.append({"set": column, **{k: v for k, v in row.items() if k not in COVERAGE_FIELDS}})
        cover.append({"set": column, **{k: row[k] for k in COVERAGE_FIELDS}})
    return rates, hits, cover


def _intervals(
    units: dict[str, dict[str, pl.DataFrame]], hits: list[dict[str, Any]], cfg: CompareConfig
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``intervals`` and ``differences`` tables, and each hits row's ``hit_rate_low/high``.

    ``units``: column -> method -> per-session sums. Per column, every method is resampled with the
    same replicate weights (seed ``cfg.seed``), so each difference to a reference is paired; the sessions
    of a column are the same for every method (the triggers do not depend on the candidates), so a
    method's interval is the one ``recs eval-hitrate --seed`` gives its set alone."""
    names = list(cfg.methods)
    if TUNED in units.get(CLICK_TO_CART, {}) or TUNED in units.get(CART_TO_CART, {}):
        names.insert(names.index(OURS) + 1 if OURS in names else len(names), TUNED)
    order = {name: i for i, name in enumerate(names)}
    columns = (ITEM_TO_ITEM, CLICK_TO_CART, CART_TO_CART)
    intervals: list[dict[str, Any]] = []
    differences: list[dict[str, Any]] = []
    for column in columns:
        if not units.get(column):
            continue
        result = bootstrap(units[column], REFERENCES, cfg.eval.bootstrap, cfg.eval.confidence, cfg.seed)
        intervals.extend({"method": m, "column": column, **r} for m, r in result["rates"].items())
        differences.extend({"method": d["method"], "reference": d["reference"], "column": column,
                            **{k: d[k] for k in ("diff", "low", "high", "verdict")}} for d in result["differences"])
    intervals.sort(key=lambda r: (order.get(r["method"], len(order)), columns.index(r["column"])))
    differences.sort(key=lambda r: (REFERENCES.index(r["reference"]), order.get(r["method"], len(order)),
                                    columns.index(r["column"])))
    bounds = {(r["method"], r["column"]): r for r in intervals}
    for row in hits:
        b = bounds.get((row["method"], row["set"]), {})
        row["hit_rate_low"], row["hit_rate_high"] = b.get("low"), b.get("high")
    return intervals, differences


def _table3(
    gen: EmbeddingCandidates, test: pl.DataFrame, cfg: CompareConfig, known: dict[tuple[str, str], pl.DataFrame]
) -> list[dict[str, Any]]:
    """Our model's hit rate for trigger interaction (rows) x candidate interaction (columns); the sets
    Table 1 already asked for (``known``, by pair) are not searched again."""
    rows = []
    for trigger in (CLICK, CART):
        row: dict[str, Any] = {"trigger": trigger}
        for cand in (CLICK, CART):
            frame = known.get((trigger, cand))
            frame = gen.candidates(trigger, cand, cfg.k) if frame is None else frame
            (scored,) = evaluate_sets(test, {cand: (trigger, frame)}, replace(cfg.eval, bootstrap=0))
            row[cand] = _nan_to_none(scored["hit_rate"])
        rows.append(row)
    return rows


def compare(
    train: pl.DataFrame, test: pl.DataFrame, cfg: CompareConfig | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Fit, time and score every method of ``cfg.methods``; return the tables (see module docstring).

    A method that cannot run on this data or in this environment (an optional library missing, no
    purchase events for co-purchase) is listed with status ``skipped`` and its reason; the others run.
    """
    cfg = (cfg or CompareConfig()).resolved()
    cfg.validate()
    # a typo'd target would score zero targets after minutes of fitting every method
    check_interactions("--targets", cfg.eval.targets, test[Col.INTERACTION].unique(), "the test sessions")
    progress = progress or NullProgress()
    methods = cfg.method_config()
    catalogue = train[Col.ITEM].n_unique()
    any_view = any_trigger_view(test)
    table1: list[dict[str, Any]] = []
    hits: list[dict[str, Any]] = []
    cover: list[dict[str, Any]] = []
    table3: list[dict[str, Any]] | None = None
    table2: list[dict[str, Any]] | None = None
    notes: list[str] = []
    fitted: dict[str, CandidateGenerator] = {}  # the blend's sources, kept for its final stage
    units: dict[str, dict[str, pl.DataFrame]] = {}  # column -> method -> per-session sums, for the intervals
    runs = list(cfg.methods)
    if cfg.tuned_train is not None or cfg.tuned_index is not None:  # beside ours (or last, without it)
        runs.insert(runs.index(OURS) + 1 if OURS in runs else len(runs), TUNED)
    with progress.stage("compare", total=len(runs), unit="method") as bar:
        for name in runs:
            if name == TUNED:
                spec = METHODS[OURS]
                row: dict[str, Any] = {"method": name, "label": f"{spec.label}, tuned ({cfg.tuned_from or 'settings'})",
                                       "group": spec.group}
                gen = spec.build(replace(methods, train=cfg.tuned_train or methods.train,
                                         index=cfg.tuned_index or methods.index), progress)
            else:
                spec = METHODS[name]
                row = {"method": name, "label": spec.label, "group": spec.group}
                gen = spec.build(methods, progress)
            if isinstance(gen, BlendCandidates):
                # its final stage is these same methods fitted on this same frame: reuse, do not refit
                gen.prefit = {n: g for n, g in fitted.items() if n in cfg.blend.sources}
            try:
                t = time.perf_counter()
                gen.fit(train)
                fit_s = time.perf_counter() - t
                if BLEND in cfg.methods and name in cfg.blend.sources:
                    fitted[name] = gen
                t = time.perf_counter()
                if gen.interaction_aware:
                    frames = {col: gen.candidates(src, tgt, cfg.k) for col, (src, tgt) in SETS.items()}
                else:  # one item-to-item list serves every column
                    frame = gen.candidates(CLICK, CART, cfg.k)
                    frames = {ITEM_TO_ITEM: frame, CLICK_TO_CART: frame, CART_TO_CART: frame}
                cand_s = time.perf_counter() - t
            except RecsError as e:
                table1.append({**row, ITEM_TO_ITEM: None, CLICK_TO_CART: None, CART_TO_CART: None, "time_s": None,
                               "status": "skipped", "reason": str(e)})
                notes.append(f"{name} skipped: {e}")
                bar.update(1)
                continue
            scored_units: dict[str, pl.DataFrame] = {}
            rates, h, c = _score(test, any_view, frames, cfg, catalogue, scored_units)
            for column, sums in scored_units.items():
                units.setdefault(column, {})[name] = sums
            if isinstance(gen, BlendCandidates):  # what the blend learnt and which order each set took (JSON only)
                row["blend"] = {col: gen.set_details(*SETS[col])["blend"] for col in SETS}
            table1.append({**row, ITEM_TO_ITEM: rates.get(ITEM_TO_ITEM), CLICK_TO_CART: rates[CLICK_TO_CART],
                           CART_TO_CART: rates[CART_TO_CART], "time_s": fit_s + cand_s, "fit_s": fit_s,
                           "candidates_s": cand_s, "status": "ok", "reason": None})
            hits.extend({"method": name, **r} for r in h)
            cover.extend({"method": name, **r} for r in c)
            if name == OURS and isinstance(gen, EmbeddingCandidates) and gen.model is not None:
                table3 = _table3(gen, test, cfg, {SETS[col]: frame for col, frame in frames.items() if col in SETS})
                if Col.CATEGORY in train.columns:
                    table2 = category_similarity(gen.model, item_categories(train), cfg.category_pairs, cfg.seed)
                else:
                    notes.append("table 2 needs a 'category' column in the sessions; it has none")
            bar.update(1)
    intervals, differences = _intervals(units, hits, cfg)
    return {
        "settings": {
            "k": cfg.k,
            "seed": cfg.seed,
            "workers": cfg.workers,
            "methods": list(cfg.methods),
            "train": config_dict(cfg.train),
            "index": config_dict(cfg.index),
            "eval": config_dict(cfg.eval),
            "als": config_dict(cfg.als),
            "covisit": config_dict(cfg.covisit),
            **({"tuned": {"from": cfg.tuned_from, "train": config_dict(cfg.tuned_train or cfg.train),
                          "index": config_dict(cfg.tuned_index or cfg.index)}}
               if cfg.tuned_train is not None or cfg.tuned_index is not None else {}),
        },
        "data": {
            "train_events": train.height,
            "train_sessions": train[Col.SESSION].n_unique(),
            "train_items": catalogue,
            "test_events": test.height,
            "test_sessions": test[Col.SESSION].n_unique(),
        },
        "table1": table1,
        "table3": table3,
        "table2": table2,
        "coverage": cover,
        "hits": hits,
        "intervals": intervals,
        "differences": differences,
        "notes": notes,
    }
