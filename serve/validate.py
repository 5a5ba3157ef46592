"""Request checks of ``recs serve``: a body or query string either becomes typed arguments of the
``Recommender`` or a ``BadRequest`` (status and a message naming the field), never a traceback.

Kept apart from the routes so the rules read as one list and are tested without HTTP.

``POST /recommend`` body (a JSON object; unknown fields are refused, so a typo'd ``"modul"`` is not
silently ignored)::

    {"history": [{"item_id": 42, "interaction": "click", "timestamp": 1700000000}, ...
                 or [42, "click", 1700000000], ...],      # required, oldest first or any order
     "module": "click",                                   # required: click, cart, both, recent, cart-page
     "k": 800, "merge": "score", "drop_bought": false,    # optional, the RecommendConfig defaults
     "at": 1700000500,                                    # optional: only events before it
     "format": "columns"}                                 # optional: or "rows" (recs.serve.render)

* ``item_id``: a JSON integer or string. The index's own kind is not required: ``"42"`` finds item 42
  of an integer index (ids of the other kind are compared as text, as everywhere in recs).
* ``interaction``: one the index's candidate sets read or write, or a canonical one (click,
  favorite, cart, purchase); anything else is a typo (``"clik"``) and is refused, naming the known ones.
* ``timestamp``: a number (any unit: only its order and ``at`` use it) or an ISO-8601 string, one
  kind for the whole history and ``at``; omitted or null in every event, the history's order is its
  time order (and ``at`` cannot be used).
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from recs.artifacts import json_type
from recs.columns import Col, Interaction
from recs.config import MERGE_RULES, MODULES, ServeConfig
from recs.errors import ConfigError, InputError
from recs.instants import parse_instant
from recs.serve.render import FORMATS

FIELDS = ("history", "module", "k", "merge", "drop_bought", "at", "format")
EVENT_FIELDS = (Col.ITEM, Col.INTERACTION, Col.TIMESTAMP)
CANDIDATE_PARAMS = ("set", "k")
INT64 = 2**63
BYTES_PER_EVENT = 1024  # the body limit: a generous event (long text ids, ISO times) is ~150 bytes
MAX_ID_CHARS = 1024


class BadRequest(InputError):
    """A request the service refuses: ``status`` (400 not JSON, 413 too large, 422 invalid, 404 unknown
    set) and the message the client gets as ``{"error": ...}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RecommendRequest:
    """A checked ``POST /recommend`` body, as ``Recommender.recommend`` arguments."""

    events: list[tuple[Any, str, Any]]
    module: str
    k: int | None
    merge: str | None
    drop_bought: bool | None
    at: Any
    format: str = FORMATS[0]


def max_body_bytes(limits: ServeConfig) -> int:
    """Largest body read: enough for max_events generous events, so a huge body is refused (413)
    before it is parsed into memory."""
    return limits.max_events * BYTES_PER_EVENT + 64 * 1024


def known_interactions(sources_targets: list[tuple[str, str]]) -> frozenset[str]:
    """The interactions a history may name: the canonical ones and those of the index's sets."""
    return frozenset(Interaction.CANONICAL) | {x for pair in sources_targets for x in pair}


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise BadRequest(400, "empty body: send a JSON object with a history and a module")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise BadRequest(400, f"body is not JSON ({e})") from None


def _invalid(path: str, what: str) -> BadRequest:
    return BadRequest(422, f"{path}: {what}")


def _choice(path: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise _invalid(path, f"expected a string, got {json_type(value)}")
    if value not in choices:
        raise _invalid(path, f"unknown {path} {value!r}; one of {', '.join(choices)}")
    return value


def check_k(path: str, value: Any, limits: ServeConfig) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(path, f"expected an integer, got {json_type(value)}")
    if not 1 <= value <= limits.max_k:
        raise _invalid(path, f"must be in 1..{limits.max_k:,} (got {value})")
    return value


def _item(path: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _invalid(path, f"expected an integer or a string, got {json_type(value)}")
    if isinstance(value, int) and not -INT64 <= value < INT64:
        raise _invalid(path, f"{value} is outside 64-bit integers")
    if isinstance(value, str):
        check_id_text(path, value)
    return value


def check_id_text(path: str, text: str) -> str:
    """The one check of an id given as text, in a body or in a URL path (both routes): 1..MAX_ID_CHARS
    characters (bounds a lookup's work whatever the index), and no control character or unpaired
    surrogate (``"sku-1\\u0000"`` once matched ``"sku-1"``; no id recs reads has them, and a lone
    surrogate cannot even be written back as JSON). Whether it names an item is the store's rule
    (``CandidateStore.codes``: ``"42"`` and ``"-7"`` find integer items, compared exactly)."""
    if not 0 < len(text) <= MAX_ID_CHARS:
        raise _invalid(path, f"an id of 1..{MAX_ID_CHARS:,} characters (got {len(text):,})")
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        raise _invalid(path, f"an id without control characters or unpaired surrogates (U+{ord(bad):04X} at "
                             f"position {text.index(bad)})")
    return text


def _time(path: str, value: Any) -> tuple[str, Any]:
    """(kind, comparable value): ``number``, ``iso`` (an aware UTC datetime) or ``none``."""
    if value is None:
        return "none", None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _invalid(path, f"expected a number or an ISO-8601 string, got {json_type(value)}")
    if isinstance(value, str):
        # the one parser of ISO instants (recs.instants, as --at and --cutoff): a time whose offset takes
        # it past year 1 or 9999 in UTC (0001-01-01T00:00:00+01:00) is refused, not an OverflowError
        try:
            return "iso", parse_instant(value, path)
        except ConfigError as e:
            raise BadRequest(422, str(e)) from None
    if not math.isfinite(value):
        raise _invalid(path, f"{value} is not a finite number")
    return "number", value


def _event(path: str, raw: Any) -> tuple[Any, Any, Any]:
    """One event as raw (item, interaction, time), from an object or an [item, interaction, time] triple."""
    if isinstance(raw, dict):
        extra = [f for f in raw if f not in EVENT_FIELDS]
        if extra:
            raise _invalid(path, f"unknown field {extra[0]!r}; an event has {', '.join(EVENT_FIELDS)}")
        for f in (Col.ITEM, Col.INTERACTION):
            if f not in raw:
                raise _invalid(f"{path}.{f}", "required")
        return raw[Col.ITEM], raw[Col.INTERACTION], raw.get(Col.TIMESTAMP)
    if isinstance(raw, list):
        if len(raw) != 3:
            raise _invalid(path, f"an [item_id, interaction, timestamp] triple has 3 values, got {len(raw)}")
        return raw[0], raw[1], raw[2]
    raise _invalid(path, f"expected an object {{item_id, interaction, timestamp}} or a triple, got {json_type(raw)}")


def _history(value: Any, known: frozenset[str], limits: ServeConfig) -> tuple[list[tuple[Any, str, Any]], str]:
    """The checked events and the kind of their times (one kind for all)."""
    if not isinstance(value, list):
        raise _invalid("history", f"expected a list of events, got {json_type(value)}")
    if len(value) > limits.max_events:
        raise _invalid("history", f"{len(value):,} events; at most {limits.max_events:,} per request")
    events, kind, first = [], None, ""
    for i, raw in enumerate(value):
        path = f"history[{i}]"
        item, inter, when = _event(path, raw)
        item = _item(f"{path}.{Col.ITEM}", item)
        if not isinstance(inter, str):
            raise _invalid(f"{path}.{Col.INTERACTION}", f"expected a string, got {json_type(inter)}")
        if inter not in known:
            raise _invalid(f"{path}.{Col.INTERACTION}",
                           f"unknown interaction {inter!r}; this index knows {', '.join(sorted(known))}")
        this, when = _time(f"{path}.{Col.TIMESTAMP}", when)
        if kind is None:
            kind, first = this, path
        elif this != kind:
            raise _invalid(f"{path}.{Col.TIMESTAMP}", f"{_KINDS[this]}, but {first} has {_KINDS[kind]}; "
                           "one kind of time per history")
        events.append((item, inter, when))
    return events, kind or "none"


_KINDS = {"none": "no time", "number": "a number", "iso": "an ISO-8601 time"}


def recommend_request(body: Any, known: frozenset[str], limits: ServeConfig) -> RecommendRequest:
    """Check a parsed ``POST /recommend`` body (see the module doc)."""
    if not isinstance(body, dict):
        raise _invalid("body", f"expected a JSON object with a history and a module, got {json_type(body)}")
    extra = [f for f in body if f not in FIELDS]
    if extra:
        raise _invalid("body", f"unknown field {extra[0]!r}; the fields are {', '.join(FIELDS)}")
    for f in ("history", "module"):
        if f not in body:
            raise _invalid(f, "required")
    events, kind = _history(body["history"], known, limits)
    module = _choice("module", body["module"], MODULES)
    k = check_k("k", body["k"], limits) if body.get("k") is not None else None
    merge = _choice("merge", body["merge"], MERGE_RULES) if body.get("merge") is not None else None
    drop = body.get("drop_bought")
    if drop is not None and not isinstance(drop, bool):
        raise _invalid("drop_bought", f"expected true or false, got {json_type(drop)}")
    at = None
    if body.get("at") is not None:
        at_kind, at = _time("at", body["at"])
        if kind == "none" and events:
            raise _invalid("at", "the history's events have no timestamp to compare with")
        if kind not in ("none", at_kind):
            raise _invalid("at", f"{_KINDS[at_kind]}, but history[0].timestamp is {_KINDS[kind]}; "
                           "one kind of time per request")
    fmt = _choice("format", body["format"], FORMATS) if body.get("format") is not None else FORMATS[0]
    return RecommendRequest(events, module, k, merge, drop, at, fmt)


def candidates_query(params: dict[str, str], set_names: tuple[str, ...], limits: ServeConfig) -> tuple[str, int]:
    """Check ``GET /items/{id}/candidates``'s query: ``set`` (required) and ``k`` (default 200, or the server's
    ``--max-k`` if lower: a request that names no k must not be refused for a k it did not ask for)."""
    extra = [p for p in params if p not in CANDIDATE_PARAMS]
    if extra:
        raise _invalid("query", f"unknown parameter {extra[0]!r}; the parameters are {', '.join(CANDIDATE_PARAMS)}")
    name = params.get("set")
    if not name:
        raise _invalid("set", f"required: one of {', '.join(set_names)}")
    if name not in set_names:
        raise BadRequest(404, f"no candidate set {name!r}; this index has {', '.join(set_names)}")
    k = min(200, limits.max_k)
    if "k" in params:
        text = params["k"].strip()
        # ASCII digits only: str.isdigit() is also true of "²" (int() refuses it: a 500) and of "٣"/"３"
        if not (text.isascii() and text.isdigit() and len(text) < 19):
            raise _invalid("k", f"expected an integer, got {params['k']!r}")
        k = check_k("k", int(text), limits)
    return name, k
