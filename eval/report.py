"""``recs eval-hitrate``: every candidate set of an index directory scored on test sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from recs.artifacts import reading_artifact
from recs.candidates.build import load_candidates, load_index_manifest
from recs.candidates.registry import METHODS, OURS
from recs.checks import check_interactions
from recs.columns import Col
from recs.config import EvalConfig, config_dict
from recs.eval.cold import cold_counts
from recs.eval.hitrate import ANY, any_trigger_view, coverage, hit_counts, hit_table, split_counts
from recs.eval.ids import mixed_kinds_note
from recs.eval.intervals import DEFAULT_SEED, bootstrap, unit_sums
from recs.eval.novelty import event_refinding
from recs.sessions.io import read_sessions
from recs.sessions.times import DEFAULT_TIME_UNIT


def index_score(manifest: dict[str, Any]) -> str | None:
    """The score setting an index's lists were ranked by, as its manifest records it, or None for a
    method that never reads one (counts-based baselines: co-visitation, co-purchase, same-shop ...).

    Every manifest's ``config`` holds ``IndexConfig``'s ``score`` default, used or not; a report that
    printed it for co-visitation would credit a baseline with a setting it does not have. An index
    written before methods were recorded is our model's."""
    spec = METHODS.get(manifest.get("method", {}).get("name", OURS))
    if spec is None or not spec.searches_vectors:
        return None
    return manifest["config"].get("score")


def evaluate_sets(
    test: pl.DataFrame,
    sets: dict[str, tuple[str, pl.DataFrame | pl.LazyFrame]],
    cfg: EvalConfig | None = None,
    catalogue_items: int | None = None,
    known: pl.Series | None = None,
    seed: int = DEFAULT_SEED,
    units: dict[str, pl.DataFrame] | None = None,
) -> list[dict[str, Any]]:
    """One row per candidate set: name -> (source interaction, candidate table).

    The one scorer of recs: ``eval-hitrate`` scores an index with it and ``compare`` every method, so
    a number in one is the number in the other. A row holds ``hitrate.hit_rate``'s counts, the same
    counts for the re-finding and the discovery targets (``hitrate.split_counts``), and coverage.
    ``known``: the training items; then also the counts of targets whose item or a trigger is new to
    training, and the coverage of new items (``recs.eval.cold``).

    ``hit_rate_low`` and ``hit_rate_high`` bound the hit rate's ``cfg.confidence`` bootstrap interval,
    sessions resampled (``recs.eval.intervals``; None with ``cfg.bootstrap`` 0 or no scored target).
    Each set is resampled on its own sessions with ``seed``, so its interval does not depend on which
    other sets are scored with it. ``units``: a dict that receives each set's per-session sums
    (``intervals.unit_sums``), for a caller that resamples several sets together (``recs compare``)."""
    cfg = cfg or EvalConfig()
    cfg.validate()
    rows = []
    refinding = event_refinding(test) if sets else None  # one pass for every set: it depends on the events only
    for name, (source, frame) in sets.items():
        scored = hit_table(test, frame, source, cfg, refinding)
        sums = unit_sums(scored)
        if units is not None:
            units[name] = sums
        counts = hit_counts(scored)
        interval = {"hit_rate_low": None, "hit_rate_high": None}
        if cfg.bootstrap:
            rate = bootstrap({name: sums}, (), cfg.bootstrap, cfg.confidence, seed)["rates"][name]
            interval = {"hit_rate_low": rate["low"], "hit_rate_high": rate["high"]}
        rows.append({"candidate_set": name, **counts, **interval, **split_counts(scored),
                     **coverage(test, frame, source, catalogue_items),
                     **(cold_counts(test, scored, frame, source, known, cfg) if known is not None else {})})
    return rows


def evaluate_index(
    index_dir: str | Path,
    sessions_path: str | Path,
    cfg: EvalConfig | None = None,
    names: list[str] | None = None,
    time_unit: str = DEFAULT_TIME_UNIT,
    any_trigger: bool = False,
    train_path: str | Path | None = None,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Evaluate the candidate sets of INDEX_DIR on a test sessions file; returns rows + settings.

    ``time_unit`` is the unit of integer timestamps in the sessions file (``read_sessions``). With
    ``any_trigger`` the triggers of a target are the last N distinct items with *any* earlier event,
    not those with the set's source interaction: how an item-level list is served, and the
    Item-to-Item column of ``recs compare`` (``hitrate.any_trigger_view``). ``train_path``: the
    training sessions, whose items are "known"; every set then also gets the cold-start split
    (``recs.eval.cold``: targets whose item or a trigger is new to training, coverage of new items).
    ``seed``: of the bootstrap intervals (``evaluate_sets``).
    """
    cfg = cfg or EvalConfig()
    cfg.validate()
    manifest = load_index_manifest(index_dir)
    test = read_sessions(sessions_path, time_unit=time_unit)
    check_interactions("--targets", cfg.targets, test[Col.INTERACTION].unique(), f"the test sessions {sessions_path}")
    known = read_sessions(train_path, time_unit=time_unit)[Col.ITEM].unique() if train_path is not None else None
    available = manifest["candidate_sets"]
    chosen = names or list(available)
    # lazy scans: the hit rate reads only rows that can match (400M rows at 10M events with backoff)
    # (a clear error for unknown names)
    frames = {n: load_candidates(index_dir, n, lazy=True, manifest=manifest) for n in chosen}
    built_from = (f"sessions {manifest['sessions'].get('path')}" if "sessions" in manifest
                  else f"model {manifest.get('model', {}).get('path', 'an unrecorded model')}")
    method = manifest.get("method", {}).get("name", "ours")
    notes = []
    for frame in frames.values():
        schema = frame.collect_schema()
        note = mixed_kinds_note(test.schema[Col.ITEM], schema[Col.ITEM], schema[Col.CANDIDATE],
                                what=f"the index {index_dir} ({method}, built from {built_from})")
        if note and note not in notes:
            notes.append(note)
    sets = {n: (ANY if any_trigger else available[n]["source"], frame) for n, frame in frames.items()}
    scored = any_trigger_view(test) if any_trigger else test
    # catalogue reach's denominator: the items the index can list (training items plus a catalogue's new
    # listings); an index written before it was recorded knew the training items only
    catalogue = manifest.get("catalogue_items", manifest.get("training_catalogue_items"))
    with reading_artifact(index_dir):  # the scans are collected here: a damaged data page fails here
        rows = evaluate_sets(scored, sets, cfg, catalogue, known, seed)
    return {
        "index": str(index_dir),
        "sessions": str(sessions_path),
        "config": config_dict(cfg),
        "any_trigger": any_trigger,
        "bootstrap": {"replicates": cfg.bootstrap, "confidence": cfg.confidence, "seed": seed, "unit": Col.SESSION},
        "train": str(train_path) if train_path is not None else None,
        "method": method,
        "k": manifest["config"]["k"],
        "score": index_score(manifest),
        "results": rows,
        "notes": notes,
    }
