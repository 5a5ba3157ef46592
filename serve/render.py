"""JSON bodies of ``recs serve``, built for speed: an 800-row answer is sent with every request, and
building it row by row as dicts took longer than the lookup itself (BENCHMARKS.md, "Serving").

Two forms of ``POST /recommend``'s answer (the request's ``format``):

* ``columns`` (the default): one array per column (``candidate_item_id``, ``score``, ``trigger``) and
  each trigger's provenance once (``triggers``: item, interaction, candidate set), so a row's
  trigger is ``triggers[trigger[i]]``. orjson writes the numpy columns in C (OPT_SERIALIZE_NUMPY):
  no Python object per row. An 800-row answer is ~16 kB instead of ~115 kB, and ~0.06 ms instead
  of ~0.5 ms to build (BENCHMARKS.md, "Serving").
* ``rows``: one object per row, ``Recommendations.to_dicts`` (rank, candidate, score and the
  trigger's item, interaction and set repeated per row). ``recommendations_json`` writes them with
  orjson, or without it straight from the arrays: ids and scores converted once per column
  (``tolist``), the few distinct strings escaped once each, each row one f-string; the bytes are
  those of ``json.dumps(to_dicts)`` with compact separators (a test holds them equal).

Scores are rounded to 6 decimals in both (a float32 0.9 is 0.9, not 0.8999999761581421), and a score
that is not a finite number is ``null`` (JSON has no NaN). orjson is in the [serve] extra; without it
every body is written by the standard library, with the same numbers.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from recs.columns import Col
from recs.recommend.recommender import CANDIDATE_SET, TRIGGER_INTERACTION, TRIGGER_ITEM, Recommendations

try:  # in the [serve] extra; the standard library writes the same values without it
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]  # tested before each use

FORMATS = ("columns", "rows")  # POST /recommend's answer; the first is the default
TRIGGERS, TRIGGER = "triggers", "trigger"


def dumps(value: Any) -> bytes:
    if orjson is not None:
        return orjson.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _ids(values: np.ndarray) -> list[str]:
    """Ids as JSON text: integers as digits, anything else as an escaped string."""
    if values.dtype.kind in "iu":
        return list(map(str, values.tolist()))
    cache: dict[Any, str] = {}
    return [cache.get(v) or cache.setdefault(v, _text(v)) for v in values.tolist()]


def _scores(values: np.ndarray) -> list[str]:
    """Scores as ``to_dicts`` rounds them (6 decimals); ``repr`` is how json.dumps writes a float."""
    rounded = values.astype(np.float64).round(6)
    out = list(map(repr, rounded.tolist()))
    if not np.isfinite(rounded).all():
        for i in np.flatnonzero(~np.isfinite(rounded)):
            out[i] = "null"
    return out


def _labels(values: list[str]) -> list[str]:
    cache = {v: _text(v) for v in set(values)}
    return [cache[v] for v in values]


def recommendations_json(module: str, k: int, recs: Recommendations, note: str | None) -> bytes:
    """``{"module", "k", "items": [{rank, candidate_item_id, score, trigger_item_id,
    trigger_interaction, candidate_set}, ...], "note"?}``."""
    if orjson is not None:  # C: half the time of the f-strings below
        out: dict[str, Any] = {"module": module, "k": k, "items": recs.to_dicts()}
        if note is not None:
            out["note"] = note
        return orjson.dumps(out)
    cand, score, trig = _ids(recs.items), _scores(recs.scores), _ids(recs.trigger_items)
    inter, sets = _labels(recs.trigger_interactions), _labels(recs.candidate_sets)
    # the keys as locals: a lookup of Col.RANK per row would cost more than the row's formatting
    a, b, c, d, e, f = (f'{{"{Col.RANK}":', f',"{Col.CANDIDATE}":', f',"{Col.SCORE}":', f',"{TRIGGER_ITEM}":',
                        f',"{TRIGGER_INTERACTION}":', f',"{CANDIDATE_SET}":')
    rows = ",".join([f"{a}{r}{b}{x}{c}{s}{d}{t}{e}{n}{f}{z}}}" for r, x, s, t, n, z
                     in zip(range(1, len(cand) + 1), cand, score, trig, inter, sets, strict=True)])
    tail = "" if note is None else f',"note":{_text(note)}'
    return f'{{"module":{_text(module)},"k":{k},"items":[{rows}]{tail}}}'.encode()


def recommendations_columns(module: str, k: int, recs: Recommendations, note: str | None) -> bytes:
    """``{"module", "k", "format": "columns", "candidate_item_id": [...], "score": [...], "trigger": [...],
    "triggers": [{item_id, interaction, candidate_set}, ...], "note"?}``: row i is rank i + 1, from
    trigger ``triggers[trigger[i]]``; ``triggers`` lists those that put a row in the list, in the order
    of their first row."""
    table, row_trigger = _trigger_table(recs)
    scores = recs.scores.astype(np.float64).round(6)  # as to_dicts rounds them
    out: dict[str, Any] = {"module": module, "k": k, "format": FORMATS[0]}
    if orjson is not None:  # numeric columns as numpy: written in C
        out |= {Col.CANDIDATE: recs.items if recs.items.dtype.kind in "iu" else recs.items.tolist(),
                Col.SCORE: scores, TRIGGER: row_trigger, TRIGGERS: table}
        if note is not None:
            out["note"] = note
        return orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)
    out |= {Col.CANDIDATE: recs.items.tolist(), Col.SCORE: [None if s != s or abs(s) == np.inf else s
                                                           for s in scores.tolist()],
            TRIGGER: row_trigger.tolist(), TRIGGERS: table}
    if note is not None:
        out["note"] = note
    return dumps(out)


def _trigger_table(recs: Recommendations) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The distinct triggers of ``recs``' rows in the order of their first row, and each row's
    position in that list. From the per-trigger arrays ``Recommender.recommend`` returns (a few numpy
    calls over the rows), else (a list built by hand) from the rows' own provenance."""
    keys = (Col.ITEM, Col.INTERACTION, CANDIDATE_SET)
    if recs.trigger is None or recs.triggers is None:
        seen: dict[tuple[Any, str, str], int] = {}
        rows = [seen.setdefault(t, len(seen)) for t in zip(recs.trigger_items.tolist(), recs.trigger_interactions,
                                                            recs.candidate_sets, strict=True)]
        return [dict(zip(keys, t, strict=True)) for t in seen], np.asarray(rows, dtype=np.int64)
    ids, inters, sets = recs.triggers
    n = len(recs.trigger)
    first = np.full(len(ids), n, dtype=np.int64)  # each trigger's first row (n: none)
    np.minimum.at(first, recs.trigger, np.arange(n, dtype=np.int64))
    used = np.flatnonzero(first < n)
    used = used[np.argsort(first[used])]  # by their first row (distinct)
    position = np.empty(len(ids), dtype=np.int64)
    position[used] = np.arange(len(used))
    table = [dict(zip(keys, (item, inters[t], sets[t]), strict=True))
             for item, t in zip(ids[used].tolist(), used.tolist(), strict=True)]
    return table, position[recs.trigger]


def recommendations_body(fmt: str, module: str, k: int, recs: Recommendations, note: str | None) -> bytes:
    """The answer of ``POST /recommend`` in ``fmt`` (one of FORMATS)."""
    render = recommendations_columns if fmt == FORMATS[0] else recommendations_json
    return render(module, k, recs, note)


def candidate_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """rank, candidate_item_id, score rows of ``Recommender.candidates``, scores rounded as in
    ``Recommendations.to_dicts`` (a float32 0.9 is 0.9, not 0.8999999761581421)."""
    scores = frame[Col.SCORE].to_numpy().astype(np.float64).round(6).tolist()
    return [{Col.RANK: r, Col.CANDIDATE: c, Col.SCORE: s}
            for r, c, s in zip(frame[Col.RANK].to_list(), frame[Col.CANDIDATE].to_list(), scores, strict=True)]
