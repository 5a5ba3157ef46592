"""The explorer page of ``recs serve`` (``GET /``) and the two JSON routes it needs beside the API's.

The paper's first figure shows one item's Click-to-Cart list beside its Cart-to-Cart list: substitutes
against complements. The page (``static/explorer.html``, one file: its script and style inline, no
build step and nothing fetched from another host, the machine may be offline) lets one pick an item,
shows its list in every candidate set side by side, and a history's merged list with the trigger of
each row. It reads only JSON routes: ``/health``, ``/items/{id}/candidates``, ``POST /recommend`` and

* ``GET /items/active?k=20&q=PREFIX``: the most active items (those with a list in some set), most
  active first, optionally only ids starting with ``q``: what the page offers to pick;
* ``GET /items/facts?id=A&id=B...``: shop, category and activity of the given items, where the index
  knows them: what the page shows beside each row.

**Where shops and categories come from.** A candidate set holds ids and scores only. The index's
manifest names what it was built from, and the first of these that is still there and unchanged
(its fingerprint matches the manifest's) gives each item's shop, category and event count:

1. ``ours``: the model directory's item table (``MODEL_DIR/items.parquet``, recs.embeddings.items);
2. a catalogue the index was built with (``--catalog``): shop and category, no counts;
3. other methods: the training sessions (``--sessions``), counted once.

A relative path is tried from the working directory and beside the index. Failing all three, the
routes still answer, without shops and categories, and "activity" is how many lists an item is a
candidate in (the index's own notion of a popular item). The facts are loaded on first use, off the
event loop, once per process: a server that is never asked pays nothing.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from recs.columns import Col
from recs.config import ServeConfig
from recs.serve.validate import BadRequest, check_id_text, check_k

ACTIVE_PARAMS = ("k", "q")
DEFAULT_ACTIVE_K = 20
MAX_FACT_IDS = 1000  # ids per GET /items/facts: a page shows a few lists of at most a few hundred rows
PAGE = "explorer.html"
# the page may load nothing from elsewhere: its own inline script and style, and JSON from this origin
PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
               "img-src 'self' data:; base-uri 'none'; form-action 'none'")


@dataclass
class Facts:
    """Per item code: shop, category (None where unknown) and activity, and where they came from."""

    source: str  # in words, for the answers ("the model's item table runs/model/items.parquet", ...)
    activity: str  # what "activity" counts
    shop: list[Any] | None = None
    category: list[Any] | None = None
    activity_count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # codes, most active first
    order_text: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))  # their ids as text


def page_html() -> bytes:
    """The page, read from the package (setup.cfg's package_data ships it in a non-editable install)."""
    return resources.files("recs.serve").joinpath("static").joinpath(PAGE).read_bytes()  # one name a call: 3.10's API


def _candidate_paths(text: str, index_dir: Path) -> list[Path]:
    path = Path(text)
    if path.is_absolute():
        return [path]
    return list(dict.fromkeys([path, index_dir.parent / path.name, index_dir.parent / path]))


def _table_from_manifest(store: Any) -> tuple[Any, str] | None:
    """(polars frame with item_id and some of shop_id, category, count; words naming it), or None."""
    import polars as pl

    from recs.artifacts import fingerprint_json
    from recs.sessions.files import fingerprint_sessions, session_files

    manifest, index_dir = store.manifest, Path(store.index_dir)
    model = manifest.get("model") or {}
    for model_dir in _candidate_paths(str(model.get("path", "")), index_dir) if model.get("path") else []:
        try:
            own = json.loads((model_dir / "manifest.json").read_text())
            if fingerprint_json(own) == model.get("fingerprint") and (model_dir / "items.parquet").is_file():
                return pl.read_parquet(model_dir / "items.parquet"), f"the model's item table {model_dir}/items.parquet"
        except (OSError, ValueError, pl.exceptions.PolarsError):
            continue
    catalog = manifest.get("catalog") or {}
    if isinstance(catalog, dict) and catalog.get("path"):
        from recs.candidates.catalog import read_catalog

        for path in _candidate_paths(str(catalog["path"]), index_dir):
            try:
                if path.is_file() and fingerprint_sessions(path) == catalog.get("fingerprint"):
                    return read_catalog(path), f"the catalogue {path}"
            except Exception:  # any unreadable catalogue: the next source
                continue
    sessions = manifest.get("sessions") or {}
    for path in _candidate_paths(str(sessions.get("path", "")), index_dir) if sessions.get("path") else []:
        try:
            if not path.exists() or fingerprint_sessions(path) != sessions.get("fingerprint"):
                continue
            files = session_files(path).files
            scan = pl.scan_parquet([str(f) for f in files])
            names = scan.collect_schema().names()
            groups = [c for c in (Col.SHOP, Col.CATEGORY) if c in names]
            table = (scan.group_by(Col.ITEM).agg(*(pl.col(c).drop_nulls().last() for c in groups),
                                                 pl.len().cast(pl.Int64).alias(Col.COUNT)).collect())
            return table, f"the training sessions {path}"
        except Exception:  # CSV sessions, a moved file: no facts, the page still works
            continue
    return None


def load_facts(store: Any) -> Facts:
    """Every item's facts (see the module doc), ordered by activity."""
    n = len(store.ids)
    listed = np.zeros(n, dtype=np.int64)  # how many lists each item is a candidate in, over every set
    has_list = np.zeros(n, dtype=bool)
    for cs in store.sets.values():
        listed += np.bincount(np.asarray(cs.cands, dtype=np.int64), minlength=n)[:n]
        has_list |= np.diff(np.asarray(cs.offsets)) > 0
    found = None
    try:
        found = _table_from_manifest(store)
    except Exception:  # the facts are a courtesy of the page: never a failed server
        found = None
    facts = Facts(source="none (the index's manifest names no model, catalogue or sessions that are still there "
                         "unchanged)", activity="lists the item is a candidate in")
    count = listed
    if found is not None:
        table, facts.source = found
        codes = store.codes(table[Col.ITEM].to_numpy())
        ok = codes >= 0
        for column in (Col.SHOP, Col.CATEGORY):
            if column in table.columns:
                values: list[Any] = [None] * n
                for code, value in zip(codes[ok].tolist(), table[column].to_numpy()[ok].tolist(), strict=True):
                    values[code] = value
                setattr(facts, "shop" if column == Col.SHOP else "category", values)
        if Col.COUNT in table.columns:
            count = np.zeros(n, dtype=np.int64)
            count[codes[ok]] = table[Col.COUNT].to_numpy()[ok]
            facts.activity = "events of the item in the training sessions"
    facts.activity_count = count
    pickable = np.flatnonzero(has_list)
    # most active first; ties by code (the ids' order), so the offer is the same on every worker
    facts.order = pickable[np.lexsort((pickable, -count[pickable]))]
    facts.order_text = np.asarray([str(x) for x in store.ids[facts.order].tolist()], dtype=str)
    return facts


def routes(recommender: Any, limits: ServeConfig) -> list[Any]:
    """``GET /items/active``, ``GET /items/facts`` and ``GET /`` over ``recommender``'s store."""
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from recs.serve.render import dumps

    store = recommender.store
    loaded: list[Facts] = []
    lock = asyncio.Lock()
    html = page_html()

    async def facts() -> Facts:
        if not loaded:
            async with lock:
                if not loaded:  # polars and numpy in a thread: other requests go on meanwhile
                    loaded.append(await asyncio.to_thread(load_facts, store))
        return loaded[0]

    def describe(f: Facts, code: int) -> dict[str, Any]:
        out: dict[str, Any] = {Col.ITEM: store.ids[code].item(), "known": True,
                               "activity": int(f.activity_count[code])}
        if f.shop is not None and f.shop[code] is not None:
            out[Col.SHOP] = f.shop[code]
        if f.category is not None and f.category[code] is not None:
            out[Col.CATEGORY] = f.category[code]
        out["lists"] = {name: int(cs.offsets[code + 1] - cs.offsets[code]) for name, cs in store.sets.items()}
        return out

    def about(f: Facts) -> dict[str, Any]:
        return {"source": f.source, "activity": f.activity}

    async def active(request: Request) -> Response:
        params = dict(request.query_params)
        extra = [p for p in params if p not in ACTIVE_PARAMS]
        if extra:
            raise BadRequest(422, f"query: unknown parameter {extra[0]!r}; the parameters are "
                                  f"{', '.join(ACTIVE_PARAMS)}")
        k = min(DEFAULT_ACTIVE_K, limits.max_k)
        if "k" in params:
            text = params["k"].strip()
            if not (text.isascii() and text.isdigit() and len(text) < 19):
                raise BadRequest(422, f"k: expected an integer, got {params['k']!r}")
            k = check_k("k", int(text), limits)
        prefix = params.get("q", "")
        if prefix:
            check_id_text("q", prefix)
        f = await facts()
        codes = f.order
        if prefix:
            codes = codes[np.char.startswith(f.order_text, prefix)]
        return JSONResponse(dumps({**about(f), "q": prefix, "k": k,
                                   "items": [describe(f, c) for c in codes[:k].tolist()]}))

    async def facts_route(request: Request) -> Response:
        extra = [p for p in request.query_params if p != "id"]
        if extra:
            raise BadRequest(422, f"query: unknown parameter {extra[0]!r}; the parameter is id (repeated)")
        asked = request.query_params.getlist("id")
        if len(asked) > MAX_FACT_IDS:
            raise BadRequest(422, f"id: {len(asked):,} ids; at most {MAX_FACT_IDS:,} per request")
        for i, text in enumerate(asked):
            check_id_text(f"id[{i}]", text)
        f = await facts()
        codes = store.codes(asked).tolist() if asked else []
        items = [describe(f, c) if c >= 0 else {Col.ITEM: text, "known": False}
                 for text, c in zip(asked, codes, strict=True)]
        return JSONResponse(dumps({**about(f), "items": items}))

    async def page(request: Request) -> Response:
        return Response(html, media_type="text/html; charset=utf-8",
                        headers={"content-security-policy": PAGE_POLICY, "cache-control": "no-cache"})

    class JSONResponse(Response):
        media_type = "application/json"

    return [Route("/items/active", active, methods=["GET"]), Route("/items/facts", facts_route, methods=["GET"]),
            Route("/", page, methods=["GET"])]
