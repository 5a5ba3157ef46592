"""JSON bodies of ``recs serve``, built for speed: a list of 800 rows is ~115 kB, and building it
row by row as dicts for ``json.dumps`` took longer than the lookup itself (BENCHMARKS.md, "Serving").

``recommendations_json`` writes the rows of ``Recommendations.to_dicts`` straight from its arrays:
ids and scores are converted once per column (``tolist``), the few distinct strings (interactions,
set names) are escaped once each, and each row is one f-string. The bytes are exactly those of
``json.dumps(to_dicts)`` with compact separators (a test holds them equal), except that a score that
is not a finite number is ``null`` (JSON has no NaN), as orjson writes it. When orjson is installed
(it is not a dependency) it writes every body, this one too: it takes half the time.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from recs.columns import Col
from recs.recommend.recommender import CANDIDATE_SET, TRIGGER_INTERACTION, TRIGGER_ITEM, Recommendations

try:  # optional: faster, same output for these bodies
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None


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
    if orjson is not None:  # C: half the time of the f-strings below (BENCHMARKS.md)
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


def candidate_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """rank, candidate_item_id, score rows of ``Recommender.candidates``, scores rounded as in
    ``Recommendations.to_dicts`` (a float32 0.9 is 0.9, not 0.8999999761581421)."""
    scores = frame[Col.SCORE].to_numpy().astype(np.float64).round(6).tolist()
    return [{Col.RANK: r, Col.CANDIDATE: c, Col.SCORE: s}
            for r, c, s in zip(frame[Col.RANK].to_list(), frame[Col.CANDIDATE].to_list(), scores, strict=True)]
