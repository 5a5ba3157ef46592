"""``GET /openapi.json``: every route of ``recs serve``, its parameters, body and answers, as OpenAPI 3.1.

Written by hand from one table (``OPERATIONS``), not inferred from the code: the request rules live in
``recs.serve.validate`` and the answers in ``recs.serve.render`` / ``recs.serve.app``, and a test holds
the three together (tests/test_serve_api.py: every route of the app is in the table and the reverse,
the document passes openapi-spec-validator, and real answers of every route validate against the
schemas given here). ``docs/api.md`` carries ``markdown_table()``'s output, checked by the same test.

The served document is built for the index served: the ``set`` parameter lists its candidate sets,
``k`` and the history length carry the server's limits. ``openapi_spec()`` without an index gives
the generic one (the docs page's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recs._version import __version__
from recs.columns import Col, Interaction
from recs.config import MERGE_RULES, MODULES, ServeConfig
from recs.serve.render import FORMATS

ID = {"type": ["integer", "string"], "description": "An item id: the index's type (integers or text); "
      "a text id asked of an integer index is read as digits"}
SCORE = {"type": ["number", "null"], "description": "Rounded to 6 decimals; null for a score that is not a "
         "finite number"}
ERROR = {"$ref": "#/components/schemas/Error"}

REFUSALS = {
    400: "The body is not JSON, or the client closed the connection before its end",
    404: "An unknown candidate set or route",
    405: "A route asked with the wrong method",
    408: "The body did not arrive within --body-timeout",
    413: "A body over the limit (--max-events events of ~1 kB)",
    422: "A field is wrong: the message names it",
    503: "The server is full (--max-connections) or no worker could take the connection; retry",
}


@dataclass(frozen=True)
class Operation:
    """One route of the API: what the docs table and the OpenAPI document say about it."""

    method: str
    path: str
    summary: str
    answer: str  # the 200's description
    schema: dict[str, Any] | None  # the 200's JSON schema; None: not JSON (media)
    media: str = "application/json"
    params: tuple[dict[str, Any], ...] = ()
    body: dict[str, Any] | None = None
    refusals: tuple[int, ...] = (405, 503)
    tags: tuple[str, ...] = ("recommendations",)
    extra: dict[str, Any] = field(default_factory=dict)


def _query(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def _schemas(limits: ServeConfig, sets: list[str] | None) -> dict[str, Any]:
    """The components' schemas, with the limits (and the set names) of the server that serves them."""
    k = {"type": "integer", "minimum": 1, "maximum": limits.max_k}
    set_name = {"type": "string", **({"enum": sets} if sets else {})}
    time = {"type": ["number", "string", "null"], "description": "A number (any unit: only the order counts) or an "
            "ISO-8601 string; one kind per history; null or omitted in every event: the history's order is "
            "its time order"}
    lists = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
             "description": "The length of the item's list in each candidate set"}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}},
                  "additionalProperties": False, "description": "Every refusal: a 4xx or 503 with a message"},
        "Event": {"oneOf": [
            {"type": "object", "required": [Col.ITEM, Col.INTERACTION], "additionalProperties": False,
             "properties": {Col.ITEM: ID, Col.INTERACTION: {"type": "string", "description": "One of "
                            f"{', '.join(Interaction.CANONICAL)} or an interaction of the index's sets"},
                            Col.TIMESTAMP: time}},
            {"type": "array", "minItems": 3, "maxItems": 3, "prefixItems": [ID, {"type": "string"}, time],
             "description": "[item_id, interaction, timestamp]"}]},
        "RecommendRequest": {
            "type": "object", "required": ["history", "module"], "additionalProperties": False, "properties": {
                "history": {"type": "array", "maxItems": limits.max_events,
                            "items": {"$ref": "#/components/schemas/Event"},
                            "description": "The user's events, in any order (sorted by timestamp)"},
                "module": {"type": "string", "enum": list(MODULES), "description": "Which events trigger lists "
                           "(docs/recommending.md)"},
                "k": {**k, "description": "The list's length (default: the server's recommend k, 800)"},
                "merge": {"type": "string", "enum": list(MERGE_RULES), "description": "How several triggers' "
                          "lists are merged (default score)"},
                "drop_bought": {"type": "boolean", "description": "Leave out items the history bought"},
                "at": {"type": ["number", "string", "null"], "description": "Only events before this time count"},
                "format": {"type": "string", "enum": list(FORMATS), "description": "The answer's form: columns "
                           "(default) or rows"}}},
        "Trigger": {"type": "object", "required": [Col.ITEM, Col.INTERACTION, "candidate_set"],
                    "additionalProperties": False, "properties": {
                        Col.ITEM: ID, Col.INTERACTION: {"type": "string"}, "candidate_set": {"type": "string"}}},
        "RecommendColumns": {
            "type": "object", "required": ["module", "k", "format", Col.CANDIDATE, Col.SCORE, "trigger", "triggers"],
            "additionalProperties": False, "description": "Row i (rank i + 1) is candidate_item_id[i], score[i], "
            "from the trigger triggers[trigger[i]]", "properties": {
                "module": {"type": "string"}, "k": {"type": "integer"}, "format": {"const": FORMATS[0]},
                Col.CANDIDATE: {"type": "array", "items": ID}, Col.SCORE: {"type": "array", "items": SCORE},
                "trigger": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "triggers": {"type": "array", "items": {"$ref": "#/components/schemas/Trigger"},
                             "description": "Each trigger with a row, once, in the order of its first row"},
                "note": {"type": "string", "description": "Why the list is short or empty (unknown items, "
                         "no trigger)"}}},
        "RecommendRow": {
            "type": "object", "additionalProperties": False,
            "required": [Col.RANK, Col.CANDIDATE, Col.SCORE, "trigger_item_id", "trigger_interaction", "candidate_set"],
            "properties": {Col.RANK: {"type": "integer", "minimum": 1}, Col.CANDIDATE: ID, Col.SCORE: SCORE,
                           "trigger_item_id": ID, "trigger_interaction": {"type": "string"},
                           "candidate_set": {"type": "string"}}},
        "RecommendRows": {
            "type": "object", "required": ["module", "k", "items"], "additionalProperties": False, "properties": {
                "module": {"type": "string"}, "k": {"type": "integer"},
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/RecommendRow"}},
                "note": {"type": "string"}}},
        "Candidates": {
            "type": "object", "required": [Col.ITEM, "set", "k", "items"], "additionalProperties": False,
            "properties": {
                Col.ITEM: ID, "set": set_name, "k": {"type": "integer"},
                "items": {"type": "array", "items": {
                    "type": "object", "required": [Col.RANK, Col.CANDIDATE, Col.SCORE], "additionalProperties": False,
                    "properties": {Col.RANK: {"type": "integer", "minimum": 1}, Col.CANDIDATE: ID, Col.SCORE: SCORE}}},
                "note": {"type": "string", "description": "The item is unknown, or has no list in this set"}}},
        "Health": {
            "type": "object", "additionalProperties": True,
            "required": ["status", "recs_version", "pid", "index", "method", "items", "sets", "uptime_s", "limits"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded"]}, "recs_version": {"type": "string"},
                "pid": {"type": "integer"}, "index": {"type": "string"},
                "format_version": {"type": ["integer", "null"]}, "method": {"type": ["string", "null"]},
                "items": {"type": "integer"}, "uptime_s": {"type": "number"},
                "sets": {"type": "object", "additionalProperties": {
                    "type": "object", "required": ["source", "target", "items_with_lists", "rows"],
                    "properties": {"source": {"type": "string"}, "target": {"type": "string"},
                                   "items_with_lists": {"type": "integer"}, "rows": {"type": "integer"}}}},
                "limits": {"type": "object", "additionalProperties": {"type": ["integer", "number"]},
                           "required": ["max_events", "max_k", "max_body_bytes"]},
                "workers": {"type": "object", "description": "With --workers 2 or more: how many serve, and "
                            "what is wrong with the others", "properties": {
                                "configured": {"type": "integer"}, "serving": {"type": "integer"},
                                "problems": {"type": "array", "items": {"type": "string"}}}}}},
        "ItemFacts": {
            "type": "object", "required": [Col.ITEM, "known"], "additionalProperties": False,
            "description": "An item and what the index's sources know of it (recs.serve.explorer)", "properties": {
                Col.ITEM: ID, "known": {"type": "boolean", "description": "In some candidate set of the index"},
                "activity": {"type": "integer", "description": "Its events in the training sessions, or the "
                             "number of lists it is a candidate in (the answer's activity says which)"},
                Col.SHOP: ID, Col.CATEGORY: ID, "lists": lists}},
        "ItemsAnswer": {
            "type": "object", "required": ["source", "activity", "items"], "additionalProperties": False,
            "properties": {
                "source": {"type": "string", "description": "Where shops and categories come from, or none"},
                "activity": {"type": "string", "description": "What an item's activity counts"},
                "q": {"type": "string"}, "k": {"type": "integer"},
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/ItemFacts"}}}},
    }


def operations(limits: ServeConfig | None = None, sets: list[str] | None = None) -> list[Operation]:
    """The API, one entry per route (the table the document, the docs page and the tests read)."""
    limits = limits or ServeConfig()
    k = {"type": "integer", "minimum": 1, "maximum": limits.max_k}
    ref = "#/components/schemas/"
    return [
        Operation("post", "/recommend", "One merged list for a history and a module",
                  "The list, as columns (default) or rows; a note when it is short or empty",
                  {"oneOf": [{"$ref": ref + "RecommendColumns"}, {"$ref": ref + "RecommendRows"}]},
                  body={"$ref": ref + "RecommendRequest"}, refusals=(400, 404, 405, 408, 413, 422, 503)),
        Operation("get", "/items/{item_id}/candidates", "One item's list in one candidate set",
                  "Its rows by rank; item_id in the index's id type, known item or not",
                  {"$ref": ref + "Candidates"},
                  params=({"name": Col.ITEM, "in": "path", "required": True, "schema": {"type": "string"},
                           "description": "The item (a text id with a slash sent as %2F)"},
                          _query("set", "A candidate set of the index (GET /health lists them)",
                                 {"type": "string", **({"enum": sets} if sets else {})}, required=True),
                          _query("k", "Rows at most (200, or --max-k if lower, when omitted)", k)),
                  refusals=(404, 405, 422, 503)),
        Operation("get", "/items/active", "The most active items, most active first (the explorer's offer)",
                  "Items with a list in some set, with shop, category and list lengths where known",
                  {"$ref": ref + "ItemsAnswer"},
                  params=(_query("k", "Items at most (20, or --max-k if lower, when omitted)", k),
                          _query("q", "Only ids that start with this text", {"type": "string"})),
                  refusals=(405, 422, 503), tags=("explorer",)),
        Operation("get", "/items/facts", "Shop, category and activity of the given items",
                  "One entry per id asked, in order (known: false for an id of no set)",
                  {"$ref": ref + "ItemsAnswer"},
                  params=({"name": "id", "in": "query", "required": False, "style": "form", "explode": True,
                           "description": "An item id; repeat for more (at most 1,000)",
                           "schema": {"type": "array", "items": {"type": "string"}, "maxItems": 1000}},),
                  refusals=(405, 422, 503), tags=("explorer",)),
        Operation("get", "/health", "The index served, uptime, limits and the workers",
                  "status ok (or degraded: a worker cannot be restarted)", {"$ref": ref + "Health"},
                  tags=("operations",)),
        Operation("get", "/metrics", "Prometheus metrics of the whole service (every worker)",
                  "Prometheus' text format: requests, latency and errors per route and module, index age "
                  "and size", None, media="text/plain; version=0.0.4", tags=("operations",)),
        Operation("get", "/openapi.json", "This document", "OpenAPI 3.1", {"type": "object"},
                  tags=("operations",)),
        Operation("get", "/", "The explorer page (paper, Figure 1): an item's lists side by side",
                  "One HTML page, its script inline; it reads only the JSON routes", None,
                  media="text/html", tags=("explorer",)),
    ]


def openapi_spec(limits: ServeConfig | None = None, sets: list[str] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``recs serve`` (for a served index: its sets and the server's limits)."""
    limits = limits or ServeConfig()
    paths: dict[str, Any] = {}
    for op in operations(limits, sets):
        content = ({op.media: {"schema": op.schema}} if op.schema is not None
                   else {op.media: {"schema": {"type": "string"}}})
        answers: dict[str, Any] = {"200": {"description": op.answer, "content": content}}
        for status in op.refusals:
            answers[str(status)] = {"description": REFUSALS[status], "content": {"application/json": {
                "schema": ERROR}}}
        entry: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(op), "tags": list(op.tags),
                                 "responses": answers}
        if op.params:
            entry["parameters"] = list(op.params)
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.body}}}
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "recs serve", "version": __version__, "license": {"name": "MIT", "identifier": "MIT"},
                 "description": "Recommendations from an index of interaction-specific candidate sets "
                                "(Click-to-Cart, Cart-to-Cart, ...). Every refusal is {\"error\": message}."},
        "tags": [{"name": "recommendations"}, {"name": "explorer"}, {"name": "operations"}],
        "paths": paths,
        "components": {"schemas": _schemas(limits, sets)},
    }


def _operation_id(op: Operation) -> str:
    words = [w.strip("{}") for w in op.path.replace(".", "_").split("/") if w] or ["page"]
    return op.method + "_" + "_".join(words)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(spec: dict[str, Any] | None = None) -> str:
    """The routes as a Markdown table (docs/api.md holds it; a test compares): method and path, what it
    does, its parameters or body, and its answers by status."""
    spec = spec or openapi_spec()
    lines = ["| Route | What | Parameters / body | Answers |", "| --- | --- | --- | --- |"]
    for path, methods in spec["paths"].items():
        for method, entry in methods.items():
            params = [f"`{p['name']}`{'' if p.get('required') else '?'} ({p['in']})"
                      for p in entry.get("parameters", [])]
            if "requestBody" in entry:
                ref = entry["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                name = ref.rsplit("/", 1)[1]
                fields = spec["components"]["schemas"][name]
                required = set(fields.get("required", []))
                params.append("JSON body: " + ", ".join(f"`{f}`{'' if f in required else '?'}"
                                                        for f in fields["properties"]))
            answers = []
            for status, answer in entry["responses"].items():
                media = next(iter(answer["content"]))
                if status == "200":
                    answers.append(f"200 {media}: {answer['description']}")
            answers.append(", ".join(s for s in entry["responses"] if s != "200") + " `{\"error\": ...}`")
            lines.append(f"| `{method.upper()} {path}` | {_cell(entry['summary'])} | "
                         f"{_cell('; '.join(params) or '-')} | {_cell('; '.join(answers))} |")
    return "\n".join(lines) + "\n"


def route(limits: ServeConfig, sets: list[str]) -> Any:
    """``GET /openapi.json`` of the index served (built once: the document does not change while it runs)."""
    from starlette.responses import Response
    from starlette.routing import Route

    from recs.serve.render import dumps

    body = dumps(openapi_spec(limits, sets))

    async def document(request: Any) -> Response:
        return Response(body, media_type="application/json")

    return Route("/openapi.json", document, methods=["GET"])


if __name__ == "__main__":  # python -m recs.serve.openapi [--markdown]: the generic document, or the table
    import json
    import sys

    print(markdown_table() if "--markdown" in sys.argv[1:] else json.dumps(openapi_spec(), indent=2))
