"""``recs serve``'s API on a hand-made index (tests/hand_index.py): every list asserted here is worked
out from LISTS by hand, and every bad body gets its 4xx and a message naming the field, never a 500.

Requests go through starlette's TestClient (in process; no socket); one test starts the real
server on a loopback port and stops it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recs.config import ServeConfig
from recs.errors import ConfigError
from recs.recommend.recommender import Recommender

from hand_index import hand_index
from helpers import one_line_error, run_cli, start_server

starlette_testclient = pytest.importorskip("starlette.testclient",
                                           reason="starlette is not installed: pip install -e '.[serve]'")
from recs.serve.app import create_app  # noqa: E402  (needs the [serve] extra)

# starlette 1.x would rather drive its TestClient with httpx2; httpx (the test extra) still works
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`:DeprecationWarning")

# explicit scores, so that the score merge and round-robin give different orders
LISTS = {
    "click_to_cart": {1: [(10, 0.9), (11, 0.8), (12, 0.7)], 2: [(13, 0.5), (11, 0.4)], 3: [(14, 0.6)]},
    "cart_to_cart": {10: [(20, 0.95), (21, 0.3)], 11: [(21, 0.85)]},
    "cart_to_purchase": {10: [(30, 0.5)]},
    "click_to_purchase": {11: [(31, 0.5)]},
}
LIMITS = ServeConfig(max_events=5, max_k=50)


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return hand_index(tmp_path_factory.mktemp("serve") / "index", LISTS)


@pytest.fixture(scope="module")
def client(index):
    return starlette_testclient.TestClient(create_app(Recommender.open(index), LIMITS))


def post(client, body):
    r = client.post("/recommend", json=body)
    assert r.headers["content-type"] == "application/json"
    return r


def ranked(response) -> list[tuple[object, object]]:
    """(candidate, trigger item) per row of a columnar answer (the default form)."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["format"] == "columns"
    cands, trigger, triggers = body["candidate_item_id"], body["trigger"], body["triggers"]
    assert len(body["score"]) == len(trigger) == len(cands)
    assert sorted(set(trigger)) == list(range(len(triggers)))  # every trigger listed has a row
    return [(c, triggers[t]["item_id"]) for c, t in zip(cands, trigger, strict=True)]


def as_rows(body: dict) -> list[dict]:
    """A columnar answer row by row, as the rows form writes it."""
    return [{"rank": i + 1, "candidate_item_id": c, "score": s, "trigger_item_id": body["triggers"][t]["item_id"],
             "trigger_interaction": body["triggers"][t]["interaction"],
             "candidate_set": body["triggers"][t]["candidate_set"]}
            for i, (c, s, t) in enumerate(zip(body["candidate_item_id"], body["score"], body["trigger"], strict=True))]


# ---- the lists, known by construction ------------------------------------------------------------

CLICKS = [[1, "click", 100], [2, "click", 200]]


def test_click_module_merges_by_score(client):
    r = post(client, {"history": CLICKS, "module": "click"})
    # best score per candidate over both triggers: 10 (.9, via 1), 11 (.8 via 1 beats .4 via 2), 12, 13
    assert ranked(r) == [(10, 1), (11, 1), (12, 1), (13, 2)]
    assert r.json() == {"module": "click", "k": 800, "format": "columns", "candidate_item_id": [10, 11, 12, 13],
                        "score": [0.9, 0.8, 0.7, 0.5], "trigger": [0, 0, 0, 1], "triggers": [
                            {"item_id": 1, "interaction": "click", "candidate_set": "click_to_cart"},
                            {"item_id": 2, "interaction": "click", "candidate_set": "click_to_cart"}]}
    rows = post(client, {"history": CLICKS, "module": "click", "format": "rows"}).json()
    assert rows["module"] == "click" and rows["k"] == 800 and "note" not in rows and "format" not in rows
    assert rows["items"][0] == {"rank": 1, "candidate_item_id": 10, "score": 0.9, "trigger_item_id": 1,
                                "trigger_interaction": "click", "candidate_set": "click_to_cart"}
    assert rows["items"] == as_rows(r.json())


@pytest.mark.parametrize("body", [
    {"history": [[1, "click", 1], [10, "cart", 2], [11, "cart", 3], [1, "cart", 4]], "module": "both"},
    {"history": [[1, "click", 1], [10, "cart", 2], [11, "cart", 3]], "module": "both", "merge": "round-robin"},
    {"history": [[2, "click", 1], [3, "favorite", 2], [1, "click", 3]], "module": "recent", "k": 4},
    {"history": [[10, "cart", 2], [11, "cart", 3]], "module": "cart-page"},
])
def test_columns_and_rows_are_the_same_list(client, body):
    """Both forms of one answer say the same rows; triggers are listed once, in the order of their first row."""
    cols, rows = post(client, body).json(), post(client, {**body, "format": "rows"}).json()
    assert as_rows(cols) == rows["items"]
    assert len(rows["items"]) > (0 if body["module"] == "cart-page" else 1)
    assert [t["item_id"] for t in cols["triggers"]] == list(dict.fromkeys(r["trigger_item_id"] for r in rows["items"]))


def test_round_robin_and_k(client):
    # rank 1 of the newest trigger (2: 13), of the older (1: 10), rank 2 of 2 (11), 1's 11 taken, 1's 12
    r = post(client, {"history": CLICKS, "module": "click", "merge": "round-robin"})
    assert ranked(r) == [(13, 2), (10, 1), (11, 2), (12, 1)]
    r = post(client, {"history": CLICKS, "module": "click", "merge": "round-robin", "k": 2})
    assert ranked(r) == [(13, 2), (10, 1)] and r.json()["k"] == 2


def test_events_ordered_by_time_not_by_position(client):
    # the same two clicks given newest first: round-robin still starts from item 2 (the later click)
    r = post(client, {"history": CLICKS[::-1], "module": "click", "merge": "round-robin"})
    assert ranked(r) == [(13, 2), (10, 1), (11, 2), (12, 1)]
    iso = [[1, "click", "2026-01-01T10:00:00Z"], [2, "click", "2026-01-01T09:00:00+00:00"]]
    r = post(client, {"history": iso, "module": "click", "merge": "round-robin"})
    assert ranked(r)[0] == (10, 1)  # now item 1 is the later click


def test_objects_and_triples_are_the_same_history(client):
    objects = [{"item_id": i, "interaction": x, "timestamp": t} for i, x, t in CLICKS]
    assert post(client, {"history": objects, "module": "click"}).json() == \
        post(client, {"history": CLICKS, "module": "click"}).json()


def test_no_timestamps_means_the_order_given(client):
    r = post(client, {"history": [{"item_id": 2, "interaction": "click"}, [1, "click", None]],
                      "module": "click", "merge": "round-robin"})
    assert ranked(r)[0] == (10, 1)  # 1 given last: the most recent


def test_at_keeps_earlier_events(client):
    r = post(client, {"history": CLICKS, "module": "click", "at": 150})
    assert ranked(r) == [(10, 1), (11, 1), (12, 1)]


def test_both_cart_page_and_drop_bought(client):
    history = [[1, "click", 1], [10, "cart", 2], [11, "cart", 3], [20, "purchase", 4]]
    r = post(client, {"history": history, "module": "both"})
    # click 1 -> 10 .9, 11 .8, 12 .7; cart 11 -> 21 .85; cart 10 -> 20 .95, (21 .3)
    assert ranked(r) == [(20, 10), (10, 1), (21, 11), (11, 1), (12, 1)]
    assert [t["candidate_set"] for t in r.json()["triggers"]] == ["cart_to_cart", "click_to_cart", "cart_to_cart"]
    r = post(client, {"history": history, "module": "both", "drop_bought": True})
    assert [c for c, _ in ranked(r)] == [10, 21, 11, 12]  # 20 was bought
    # the cart page reads the last carted item: 11 has no cart_to_purchase list -> click_to_purchase
    r = post(client, {"history": history, "module": "cart-page"})
    assert ranked(r) == [(31, 11)] and r.json()["triggers"][0]["candidate_set"] == "click_to_purchase"
    r = post(client, {"history": history[:2], "module": "cart-page"})
    assert ranked(r) == [(30, 10)] and r.json()["triggers"][0]["candidate_set"] == "cart_to_purchase"


def test_text_ids_find_integer_items_and_come_back_as_the_index_holds_them(client):
    r = post(client, {"history": [["1", "click", 100], ["2", "click", 200]], "module": "click"})
    assert ranked(r) == [(10, 1), (11, 1), (12, 1), (13, 2)]  # trigger ids are integers again


def test_unknown_items_and_empty_lists_answer_200_with_a_note(client):
    r = post(client, {"history": [[99, "click", 1], ["x", "click", 2], [1, "click", 3]], "module": "click"})
    assert ranked(r) == [(10, 1), (11, 1), (12, 1)]  # the trigger id an integer, whatever else the history has
    assert r.json()["note"] == "2 item(s) of the history are in no candidate set of this index: 99, 'x'"
    r = post(client, {"history": [[1, "click", 1]], "module": "cart"})
    assert ranked(r) == [] and "no event of this history triggers module 'cart'" in r.json()["note"]
    r = post(client, {"history": [], "module": "click"})
    assert ranked(r) == [] and r.json()["note"] == "the history is empty"


def test_item_candidates(client):
    r = client.get("/items/1/candidates", params={"set": "click_to_cart", "k": 2})
    assert r.status_code == 200
    assert r.json() == {"item_id": 1, "set": "click_to_cart", "k": 2, "items": [
        {"rank": 1, "candidate_item_id": 10, "score": 0.9}, {"rank": 2, "candidate_item_id": 11, "score": 0.8}]}
    assert [row["candidate_item_id"] for row in
            client.get("/items/10/candidates?set=cart_to_cart").json()["items"]] == [20, 21]
    r = client.get("/items/999/candidates?set=click_to_cart").json()
    assert r["items"] == [] and r["note"] == "item '999' is in no candidate set of this index"
    r = client.get("/items/10/candidates?set=click_to_cart").json()  # known item, no list in this set
    assert r["items"] == [] and r["note"] == "item '10' has no list in click_to_cart"


def test_health(client, index):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["index"] == str(index) and h["method"] == "hand"
    assert h["format_version"] == 1 and h["items"] == 12  # 1, 2, 3, 10-14, 20, 21, 30, 31
    assert h["sets"]["click_to_cart"] == {"source": "click", "target": "cart", "items_with_lists": 3, "rows": 6}
    assert set(h["sets"]) == set(LISTS) and h["uptime_s"] >= 0
    assert h["limits"]["max_events"] == 5 and h["limits"]["max_k"] == 50


def test_the_store_is_read_only(client, index):
    store = Recommender.open(index).store
    create_app(Recommender(store), LIMITS)
    with pytest.raises(ValueError, match="read-only"):
        store.sets["click_to_cart"].cands[0] = 5


def test_the_fast_body_is_json_dumps_of_to_dicts(monkeypatch):
    """The hand-written encoder writes what json.dumps(to_dicts) writes, text ids and a note included;
    a score that is not finite becomes null (JSON has no NaN)."""

    from recs.recommend.recommender import Recommendations
    from recs.serve import render

    monkeypatch.setattr(render, "orjson", None)
    recs = Recommendations(np.array(["a\"b", "é", "7"]), np.array([0.9, 1 / 3, -2.5e-7], dtype=np.float32),
                           np.array(["x", "y", "x"]), ["click", "cart", "click"], ["click_to_cart"] * 3)
    want = {"module": "both", "k": 3, "items": recs.to_dicts(), "note": "n\u00f6te \"q\""}
    body = render.recommendations_json("both", 3, recs, want["note"])
    assert body == json.dumps(want, separators=(",", ":"), ensure_ascii=False).encode()
    assert json.loads(body)["items"][1]["score"] == 0.333333
    ints = Recommendations(np.array([10, 11]), np.array([np.nan, 0.5], dtype=np.float32), np.array([1, 2]),
                           ["click"] * 2, ["click_to_cart"] * 2)
    items = json.loads(render.recommendations_json("click", 2, ints, None))["items"]
    assert [r["score"] for r in items] == [None, 0.5] and items[0]["candidate_item_id"] == 10


def test_the_columnar_body_with_and_without_orjson(monkeypatch, index):
    """orjson (numpy columns) and the standard library write the same bytes; the triggers table from
    recommend's per-trigger arrays is the one read off the rows of a hand-made list."""
    import dataclasses

    from recs.recommend.recommender import Recommendations
    from recs.serve import render

    rec = Recommender.open(index)
    recs = rec.recommend([(1, "click", 1), (10, "cart", 2), (11, "cart", 3), (2, "click", 4)], module="both")
    by_hand = dataclasses.replace(recs, trigger=None, triggers=None)
    fast = render.recommendations_columns("both", 800, recs, "a n\u00f6te")
    assert render.recommendations_columns("both", 800, by_hand, "a n\u00f6te") == fast
    body = json.loads(fast)
    assert body["candidate_item_id"] == [20, 10, 21, 11, 12, 13] and body["trigger"] == [0, 1, 2, 1, 1, 3]
    assert [t["item_id"] for t in body["triggers"]] == [10, 1, 11, 2] and body["note"] == "a n\u00f6te"
    text = Recommendations(np.array(["a\"b", "é", "7"]), np.array([0.9, np.nan, -2.5e-7], dtype=np.float32),
                           np.array(["x", "y", "x"]), ["click", "cart", "click"], ["click_to_cart"] * 3)
    with_orjson = [render.recommendations_columns("m", 3, r, None) for r in (recs, text)]
    monkeypatch.setattr(render, "orjson", None)
    assert [render.recommendations_columns("m", 3, r, None) for r in (recs, text)] == with_orjson
    assert json.loads(with_orjson[1]) == {
        "module": "m", "k": 3, "format": "columns", "candidate_item_id": ["a\"b", "é", "7"], "score": [0.9, None, -0.0],
        "trigger": [0, 1, 0], "triggers": [{"item_id": "x", "interaction": "click", "candidate_set": "click_to_cart"},
                                           {"item_id": "y", "interaction": "cart", "candidate_set": "click_to_cart"}]}


# ---- refusals: status and the message ------------------------------------------------------------

OK = {"history": CLICKS, "module": "click"}
BAD_BODIES = [
    # (body, status, fragment of the message)
    ({"history": [[1, "clik", 1]], "module": "click"}, 422,
     "history[0].interaction: unknown interaction 'clik'; this index knows cart, click, favorite, purchase"),
    ({"history": [[1, "click", i] for i in range(6)], "module": "click"}, 422, "history: 6 events; at most 5"),
    ({"module": "click"}, 422, "history: required"),
    ({"history": CLICKS}, 422, "module: required"),
    ({"history": "1,2", "module": "click"}, 422, "history: expected a list of events, got a string"),
    ({"history": [5], "module": "click"}, 422, "history[0]: expected an object"),
    ({"history": [[1, "click"]], "module": "click"}, 422, "history[0]: an [item_id, interaction, timestamp] triple"),
    ({"history": [{"item_id": 1}], "module": "click"}, 422, "history[0].interaction: required"),
    ({"history": [{"item": 1, "interaction": "click"}], "module": "click"}, 422, "history[0]: unknown field 'item'"),
    ({"history": [[1.5, "click", 1]], "module": "click"}, 422,
     "history[0].item_id: expected an integer or a string, got a number"),
    ({"history": [[True, "click", 1]], "module": "click"}, 422, "history[0].item_id: expected an integer or a string"),
    ({"history": [[2**70, "click", 1]], "module": "click"}, 422, "outside 64-bit integers"),
    ({"history": [["", "click", 1]], "module": "click"}, 422, "history[0].item_id: an id of 1..1,024 characters"),
    ({"history": [[1, 5, 1]], "module": "click"}, 422, "history[0].interaction: expected a string, got an integer"),
    ({"history": [[1, "click", "yesterday"]], "module": "click"}, 422, "history[0].timestamp: 'yesterday' is not"),
    ({"history": [[1, "click", [1]]], "module": "click"}, 422, "history[0].timestamp: expected a number or an ISO"),
    ({"history": [[1, "click", 1], [2, "click", "2026-01-01"]], "module": "click"}, 422,
     "history[1].timestamp: an ISO-8601 time, but history[0] has a number"),
    ({"history": [[1, "click", 1], [2, "click", None]], "module": "click"}, 422,
     "history[1].timestamp: no time, but history[0] has a number"),
    ({**OK, "module": "clicks"}, 422, "module: unknown module 'clicks'; one of click, cart, both, recent, cart-page"),
    ({**OK, "module": 1}, 422, "module: expected a string, got an integer"),
    ({**OK, "k": 0}, 422, "k: must be in 1..50 (got 0)"),
    ({**OK, "k": 51}, 422, "k: must be in 1..50 (got 51)"),
    ({**OK, "k": "10"}, 422, "k: expected an integer, got a string"),
    ({**OK, "k": 1.0}, 422, "k: expected an integer, got a number"),
    ({**OK, "k": True}, 422, "k: expected an integer, got a boolean"),
    ({**OK, "merge": "best"}, 422, "merge: unknown merge 'best'; one of score, round-robin"),
    ({**OK, "format": "csv"}, 422, "format: unknown format 'csv'; one of columns, rows"),
    ({**OK, "format": ["rows"]}, 422, "format: expected a string, got a list"),
    ({**OK, "drop_bought": "yes"}, 422, "drop_bought: expected true or false, got a string"),
    ({**OK, "at": "soon"}, 422, "at: 'soon' is not an ISO-8601 date or time"),
    ({**OK, "at": "2026-01-01"}, 422, "at: an ISO-8601 time, but history[0].timestamp is a number"),
    ({"history": [[1, "click", None]], "module": "click", "at": 5}, 422, "at: the history's events have no timestamp"),
    ({**OK, "modul": "click"}, 422, "body: unknown field 'modul'; the fields are history, module, k"),
    ([OK], 422, "body: expected a JSON object with a history and a module, got a list"),
    ("click", 422, "body: expected a JSON object"),
]
BAD_BYTES = [
    (b"{bad", 400, "body is not JSON (Expecting property name"),
    (b"", 400, "empty body"),
    (b"\xff\xfe{", 400, "body is not JSON"),
    (b"[" * 30_000 + b"]" * 30_000, 400, "body is not JSON"),  # deeper than Python's recursion limit
    (b'{"history": [[1, "click", NaN]], "module": "click"}', 422, "history[0].timestamp: nan is not a finite number"),
    (b" " * 6 * 1024 + b"x" * (6 * 1024 + 64 * 1024), 413, "body of 77,824 bytes; at most 70,656 (5 events)"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_BODIES, ids=lambda v: None)
def test_bad_body_is_refused_with_the_field(client, body, status, message):
    r = client.post("/recommend", content=json.dumps(body), headers={"content-type": "application/json"})
    assert (r.status_code, r.headers["content-type"]) == (status, "application/json")
    assert message in r.json()["error"], r.json()


@pytest.mark.parametrize(("raw", "status", "message"), BAD_BYTES, ids=lambda v: None)
def test_bad_bytes_are_refused(client, raw, status, message):
    r = client.post("/recommend", content=raw)
    assert r.status_code == status and message in r.json()["error"], r.json()


def test_a_streamed_body_over_the_limit_is_refused(client):
    chunks = (b" " * 8192 for _ in range(100))  # chunked: no content-length to refuse up front
    r = client.post("/recommend", content=chunks)
    assert r.status_code == 413 and r.json()["error"] == "body over 70,656 bytes (5 events)"


def test_a_declared_length_over_the_limit_is_refused_before_reading(client):
    r = client.post("/recommend", content=b"{}", headers={"content-length": str(10**9)})
    assert r.status_code == 413 and r.json()["error"].startswith("body of 1,000,000,000 bytes; at most 70,656")


@pytest.mark.parametrize(("url", "status", "message"), [
    ("/items/1/candidates?set=click_to_carts", 404,
     "no candidate set 'click_to_carts'; this index has click_to_cart, cart_to_cart, cart_to_purchase"),
    ("/items/1/candidates", 422, "set: required: one of click_to_cart"),
    ("/items/1/candidates?set=click_to_cart&k=abc", 422, "k: expected an integer, got 'abc'"),
    ("/items/1/candidates?set=click_to_cart&k=-1", 422, "k: expected an integer, got '-1'"),
    ("/items/1/candidates?set=click_to_cart&k=0", 422, "k: must be in 1..50 (got 0)"),
    ("/items/1/candidates?set=click_to_cart&k=99999999999999999999", 422, "k: expected an integer"),
    ("/items/1/candidates?set=click_to_cart&n=5", 422, "query: unknown parameter 'n'; the parameters are set, k"),
    ("/items/1", 404, "Not Found"),
])
def test_bad_candidate_queries(client, url, status, message):
    r = client.get(url)
    assert r.status_code == status and message in r.json()["error"], r.json()


def test_wrong_method_is_405_json(client):
    r = client.get("/recommend")
    assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"}


def test_library_errors_are_4xx_with_their_message(tmp_path):
    # an index without cart sets: the library refuses the cart module, naming the missing set
    small = hand_index(tmp_path / "index", {"click_to_cart": LISTS["click_to_cart"]})
    c = starlette_testclient.TestClient(create_app(Recommender.open(small), LIMITS))
    r = c.post("/recommend", json={"history": [[10, "cart", 1]], "module": "cart"})
    assert r.status_code == 422
    assert re.search(r"module 'cart' reads candidate set 'cart_to_cart', which index .* does not have",
                     r.json()["error"])
    # its known interactions are its sets' and the canonical ones: "purchase" is known, "view" is not
    assert c.post("/recommend", json={"history": [[1, "purchase", 1]], "module": "click"}).status_code == 200
    assert "'view'" in c.post("/recommend", json={"history": [[1, "view", 1]], "module": "click"}).json()["error"]


def test_an_index_of_text_ids(tmp_path):
    """Text ids are looked up as they are; a JSON integer 42 finds the text id "42"."""
    text = hand_index(tmp_path / "index", {"click_to_cart": {"42": ["a b", "é"], "x/y": ["42"]}})
    c = starlette_testclient.TestClient(create_app(Recommender.open(text), LIMITS))
    r = c.post("/recommend", json={"history": [[42, "click", 1]], "module": "click"})
    assert ranked(r) == [("a b", "42"), ("é", "42")]
    r = c.get("/items/x%2Fy/candidates?set=click_to_cart").json()  # an id with a slash
    assert r["item_id"] == "x/y" and [row["candidate_item_id"] for row in r["items"]] == ["42"]
    assert c.get("/items/%C3%A9/candidates?set=click_to_cart").json()["note"] == "item 'é' has no list in click_to_cart"
    assert c.get("/items/%FF/candidates?set=click_to_cart").status_code == 200


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**80, 2**80) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
EVENTS = st.lists(st.one_of(
    st.tuples(st.integers(-3, 40) | st.text(max_size=3), st.sampled_from(["click", "cart", "purchase", "x"]),
              st.integers(0, 5) | st.none() | st.just("2026-01-01")).map(list),
    JSON_VALUES), max_size=7)
BODIES = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries({"history": EVENTS}, optional={
        "module": st.sampled_from(["click", "cart", "both", "recent", "cart-page", "nope"]) | JSON_VALUES,
        "k": st.integers(-2, 60) | JSON_VALUES, "merge": st.sampled_from(["score", "round-robin"]) | JSON_VALUES,
        "drop_bought": st.booleans() | JSON_VALUES, "at": st.integers(0, 5) | JSON_VALUES}),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_no_body_gives_a_500(client, body):
    r = client.post("/recommend", content=json.dumps(body))
    assert r.status_code in (200, 400, 413, 422), (body, r.status_code, r.text)
    assert r.status_code == 200 or r.json()["error"]


# ---- configuration and the command ---------------------------------------------------------------

def test_serve_config_limits():
    ServeConfig().validate()
    for bad, option in [(ServeConfig(port=70_000), "--port"), (ServeConfig(max_events=0), "--max-events"),
                        (ServeConfig(max_k=0), "--max-k"), (ServeConfig(host=" "), "--host"),
                        (ServeConfig(workers=0), "--workers")]:
        with pytest.raises(ConfigError, match=option):
            bad.validate()


def test_serve_help():
    r = run_cli("serve", "--help")
    assert r.exit_code == 0
    for option in ("--index", "--host", "--port", "--max-events", "--max-k", "--workers", "--access-log"):
        assert option in r.output


def test_missing_extra_is_one_error_line(monkeypatch, index):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    line = one_line_error(run_cli("serve", "--index", index))
    assert line == ("Error: recs serve needs uvicorn (the [serve] extra): pip install 'recs[serve]'  "
                    "(or, in a clone: pip install '.[serve]')")


def test_bad_options_and_a_port_in_use(index, tmp_path):
    assert "--port must be in 0..65,535" in one_line_error(run_cli("serve", "--index", index, "--port", "70000"))
    assert "no such recs.index directory" in one_line_error(run_cli("serve", "--index", tmp_path / "none"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        for workers in (1, 2):  # 2: the index is copied for the workers first, then removed
            line = one_line_error(run_cli("serve", "--index", index, "--port", port, "--workers", workers))
            assert line.startswith(f"Error: cannot listen on 127.0.0.1:{port} ("), workers


def _start(index, tmp: Path, *options: str) -> tuple[subprocess.Popen, str]:
    """``recs serve --port 0`` in a subprocess (temporary files under ``tmp``), and its URL."""
    return start_server(index, tmp, *options)


def _health_pids(proc, url: str, want: int, exclude: frozenset = frozenset(), timeout: float = 60,
                 check_items: bool = True) -> set[int]:
    """Worker pids answering /health (a new connection each time) until ``want`` of them (not in ``exclude``)."""
    import httpx

    pids, deadline = set(), time.monotonic() + timeout
    while len(pids - exclude) < want:  # uvicorn starts its loop after the line is printed
        try:
            health = httpx.get(url + "/health", timeout=5).json()
            assert health["items"] == 12 or not check_items
            pids.add(health["pid"])
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else pids
        time.sleep(0.02)
    return pids - exclude


@pytest.mark.parametrize("workers", [1, 2])
def test_the_real_server_answers_on_loopback(index, tmp_path, workers):
    """``recs serve --port 0`` in a subprocess: it prints its URL, answers from every worker, and Ctrl-C
    stops it (exit 0). With 2 workers the index's arrays are shared through one temporary directory,
    removed at the end, and a worker that dies is replaced."""
    import httpx

    proc, url = _start(index, tmp_path, "--workers", str(workers))
    try:
        pids = _health_pids(proc, url, workers)
        r = httpx.post(url + "/recommend", json={"history": CLICKS, "module": "click", "k": 1}, timeout=5)
        assert r.json()["candidate_item_id"] == [10]
        shared = list(tmp_path.glob("recs-serve-*"))
        assert len(shared) == (workers > 1) and (workers == 1 or (shared[0] / "store.json").exists())
        if workers > 1:  # connections go to the workers in turn: 8 opened at once are split 4/4
            host, port = url.removeprefix("http://").rsplit(":", 1)
            conns = [http.client.HTTPConnection(host, int(port), timeout=5) for _ in range(8)]
            for conn in conns:
                conn.connect()
            held = []
            for conn in conns:
                conn.request("GET", "/health")
                held.append(json.loads(conn.getresponse().read())["pid"])
                conn.close()
            assert sorted(Counter(held).values()) == [4, 4] and set(held) == pids
            gone = min(pids)
            os.kill(gone, signal.SIGKILL)
            _health_pids(proc, url, 1, frozenset(pids))  # its replacement answers
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        err = proc.stderr.read()
    assert "Finished server process" in err and "Traceback" not in err
    assert not list(tmp_path.glob("recs-serve-*"))
    if workers > 1:
        assert f"Worker process [{gone}] died (exit code -9); restarting it" in err


def test_a_worker_that_cannot_start_stops_the_server(tmp_path):
    """The supervisor's rule: a worker whose app fails to load (uvicorn's exit code 3) stops every
    worker and is one error, not a loop of restarts."""
    import uvicorn

    from recs.errors import OutputError
    from recs.serve.server import WORKER_ENV, bind
    from recs.serve.workers import supervise

    with bind(ServeConfig(port=0, workers=2)) as sock:
        config = uvicorn.Config("recs.serve.server:worker_app", factory=True, lifespan="off")
        with pytest.raises(OutputError, match="could not start"):  # RECS_SERVE_WORKER names no file
            supervise(config, sock, 2, {WORKER_ENV: str(tmp_path / "none.json")})


def test_the_shared_store_is_the_loaded_one_mapped_read_only(index, tmp_path):
    from recs.serve.shared import export_store, open_store

    loaded = Recommender.open(index)
    mapped = Recommender(open_store(export_store(loaded.store, tmp_path)))
    assert mapped.set_names == loaded.set_names and mapped.store.manifest == loaded.store.manifest
    for name, cs in loaded.store.sets.items():
        other = mapped.store.sets[name]
        assert not other.cands.flags.writeable and type(other.cands) is np.ndarray  # a view, not np.memmap
        for a in ("offsets", "cands", "scores"):
            assert np.array_equal(getattr(cs, a), getattr(other, a))
    history = [(1, "click", 1), (10, "cart", 2), (11, "cart", 3)]
    assert mapped.recommend(history, module="both").to_dicts() == loaded.recommend(history, module="both").to_dicts()


# ---- hostile requests (issue 21: items 4, 7, 9, 10, 11) -------------------------------------------

NEG = {"click_to_cart": {-103339: [(-7, 0.9), (5, 0.8)], 5: [(-103339, 0.7)]}}
SKU = {"click_to_cart": {"sku-100604": ["sku-1", "sku-2"], "sku-1006040": ["sku-3"]}}


@pytest.fixture(scope="module")
def neg_index(tmp_path_factory):
    return hand_index(tmp_path_factory.mktemp("neg") / "index", NEG)


@pytest.fixture(scope="module")
def sku_index(tmp_path_factory):
    return hand_index(tmp_path_factory.mktemp("sku") / "index", SKU)


Q = "?set=click_to_cart"
LONG_ID = "x" * 60_000
EDGE_TIMES = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")
# (issue 21 item, index: "neg" integer ids / "sku" text ids, method, path, JSON body or None, status, the
# answer (its repr) contains)
HOSTILE = [
    *((4, kind, "GET", f"/items/{LONG_ID}/candidates{Q}", None, 422,
       "item_id: an id of 1..1,024 characters (got 60,000)") for kind in ("neg", "sku")),
    (4, "sku", "POST", "/recommend", {"history": [[LONG_ID, "click", 1]], "module": "click"}, 422,
     "history[0].item_id: an id of 1..1,024 characters (got 60,000)"),
    (7, "neg", "GET", f"/items/-103339/candidates{Q}", None, 200,
     # k is 200, or the server's --max-k if lower, when the query names none: in process it is 50
     "'item_id': -103339, 'set': 'click_to_cart', 'k': "),
    (7, "neg", "GET", f"/items/-103339/candidates{Q}", None, 200, "'items': [{'rank': 1, 'candidate_item_id': -7"),
    (7, "neg", "POST", "/recommend", {"history": [["-103339", "click", 1]], "module": "click"}, 200,
     "'candidate_item_id': [-7, 5]"),
    (7, "neg", "POST", "/recommend", {"history": [[-103339, "click", 1]], "module": "click"}, 200,
     "'candidate_item_id': [-7, 5]"),
    # not an integer's text ("-0", "+5", "05"): no item of an integer index, and no 500
    (7, "neg", "GET", f"/items/-0/candidates{Q}", None, 422, "item_id: '-0' cannot be an item of this index"),
    (7, "neg", "POST", "/recommend", {"history": [["+5", "click", 1], ["05", "click", 2]], "module": "click"}, 200,
     "2 item(s) of the history are in no candidate set of this index: '+5', '05'"),
    (9, "sku", "GET", f"/items/sku-100604%00/candidates{Q}", None, 422,
     "item_id: an id without control characters or unpaired surrogates (U+0000 at position 10)"),
    (9, "sku", "POST", "/recommend", {"history": [["sku-100604\u0000", "click", 1]], "module": "click"}, 422,
     "history[0].item_id: an id without control characters"),
    (9, "sku", "POST", "/recommend", {"history": [["sku-100604\t", "click", 1]], "module": "click"}, 422,
     "U+0009 at position 10"),
    (9, "sku", "GET", f"/items/sku-100604/candidates{Q}", None, 200, "'candidate_item_id': 'sku-1'"),
    (10, "neg", "GET", f"/items/5/candidates{Q}&k=%C2%B2", None, 422, "k: expected an integer, got '²'"),
    (10, "neg", "GET", f"/items/5/candidates{Q}&k=%D9%A3", None, 422, "k: expected an integer, got '٣'"),  # Arabic 3
    (10, "neg", "GET", f"/items/5/candidates{Q}&k=%EF%BC%93", None, 422, "k: expected an integer, got '３'"),
    (10, "neg", "GET", f"/items/5/candidates{Q}&k=3", None, 200, "'k': 3"),
    *((11, "neg", "POST", "/recommend", {"history": [[1, "click", t]], "module": "click"}, 422,
       f"history[0].timestamp: '{t}' is outside the times") for t in EDGE_TIMES),
    *((11, "neg", "POST", "/recommend", {"history": [[1, "click", "2026-01-01T00:00:00Z"]], "module": "click",
                                        "at": t}, 422, f"at: '{t}' is outside the times") for t in EDGE_TIMES),
]
HOSTILE_IDS = [f"item{c[0]}-{c[1]}-{c[2]}-{i}" for i, c in enumerate(HOSTILE)]


def _answer(status: int, body: bytes) -> str:
    return f"{status} {json.loads(body)!r}"


@pytest.fixture(scope="module")
def hostile_clients(neg_index, sku_index):
    return {kind: starlette_testclient.TestClient(create_app(Recommender.open(ix), LIMITS))
            for kind, ix in (("neg", neg_index), ("sku", sku_index))}


@pytest.fixture(scope="module")
def hostile_servers(neg_index, sku_index, tmp_path_factory):
    """``recs serve --workers 1`` on loopback over either index, for the module's tests."""
    servers = {}
    try:
        for kind, ix in (("neg", neg_index), ("sku", sku_index)):
            proc, url = _start(ix, tmp_path_factory.mktemp(kind), "--workers", "1")
            servers[kind] = (proc, url)
            _health_pids(proc, url, 1, check_items=False)
        yield {kind: url for kind, (_, url) in servers.items()}
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


@pytest.mark.parametrize(("item", "kind", "method", "path", "body", "status", "says"), HOSTILE, ids=HOSTILE_IDS)
def test_hostile_requests_in_process(hostile_clients, item, kind, method, path, body, status, says):
    """Long ids are refused at the edge (and cost nothing), negative ids are found from text as from
    integers, ids compare exactly (a NUL is refused), k is ASCII digits only, and ISO times outside
    what a datetime holds in UTC are a 422: never a 500."""
    r = hostile_clients[kind].request(method, path, content=None if body is None else json.dumps(body))
    got = _answer(r.status_code, r.content)
    assert r.status_code == status and says in got, got[:300]


@pytest.mark.parametrize(("item", "kind", "method", "path", "body", "status", "says"), HOSTILE, ids=HOSTILE_IDS)
def test_hostile_requests_on_loopback(hostile_servers, item, kind, method, path, body, status, says):
    """The same requests sent to ``recs serve`` on loopback (raw bytes: no client library normalises
    the path), each answered within a second."""
    host, port = hostile_servers[kind].removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    t0 = time.monotonic()
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"content-type": "application/json"})
        r = conn.getresponse()
        got = _answer(r.status, r.read())
    finally:
        conn.close()
    assert r.status == status and says in got, got[:300]
    assert time.monotonic() - t0 < 1.0


def test_a_long_text_id_does_not_widen_the_id_table():
    """A query 1,024 characters long against 20,000 ids of 10: main copied the table at the query's
    width (80 MB here; 1.46 GB at 302k ids); now the query is known not to be an id without a copy,
    and a trailing NUL no longer finds the id without it."""
    import tracemalloc

    from recs.recommend.store import CandidateStore

    ids = np.array([f"sku-{i:06d}" for i in range(20_000)])
    store = CandidateStore(Path("none"), {}, ids, {})
    tracemalloc.start()
    try:
        codes = store.codes(["x" * 1024, "sku-000042", "sku-000042\u0000", "sku-00004", 42])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert codes.tolist() == [-1, 42, -1, -1, -1]
    assert peak < 4 * 2**20, peak
    ints = CandidateStore(Path("none"), {}, np.array([-103339, -7, 5], dtype=np.int64), {})
    assert ints.codes(["-103339", -7, "5", "-0", "05", "+5", "５", 2**70, "x" * 5000]).tolist() == \
        [0, 1, 2, -1, -1, -1, -1, -1, -1]
    assert [ints.typed_id(t) for t in ("-103339", "-0", "9223372036854775808")] == [-103339, None, None]


# ---- hostile clients and unlucky operators (issue 21: items 5, 6, 16, 17, 18) ----------------------

def _stop(proc: subprocess.Popen) -> str:
    """SIGINT the server, wait for it (exit 0) and return its stderr."""
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    return proc.stderr.read()


def _get(host: str, port: int, path: str = "/health", timeout: float = 10) -> tuple[int, dict]:
    """One request on a new connection: (status, JSON body)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def test_a_stopped_worker_does_not_stop_the_service(index, tmp_path):
    """SIGSTOP one of two workers: 200 requests, each on a new connection, are all answered within
    the deadline (main: the supervisor blocked in send_fds to it, and everything timed out); the
    stopped worker is killed and replaced after --worker-timeout, and the connections it never read
    are answered by the others."""
    proc, url = _start(index, tmp_path, "--workers", "2", "--worker-timeout", "1")
    stopped = None
    try:
        pids = _health_pids(proc, url, 2)
        stopped = min(pids)
        os.kill(stopped, signal.SIGSTOP)
        host, port = _host_port(url)
        deadline, answered = time.monotonic() + 60, Counter()
        for _ in range(200):
            status, body = _get(host, port, timeout=15)
            assert status == 200 and time.monotonic() < deadline
            answered[body["pid"]] += 1
        assert stopped not in answered and sum(answered.values()) == 200
        assert len(_health_pids(proc, url, 1, frozenset(pids))) == 1  # the replacement serves
    finally:
        if stopped is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stopped, signal.SIGCONT)
        err = _stop(proc)
    assert f"Worker process [{stopped}] left a hand-off unanswered for" in err
    assert f"Worker process [{stopped}] was killed (exit code -9); restarting it" in err
    assert "Traceback" not in err


def _slow_clients(host: str, port: int, n: int) -> list[socket.socket]:
    """``n`` connections of each kind: silent, half a header, a header and half a body."""
    socks = []
    for kind in range(3):
        for _ in range(n):
            s = socket.create_connection((host, port), timeout=10)
            if kind == 1:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            elif kind == 2:
                s.sendall(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 200\r\n\r\n{\"history\": [")
            socks.append(s)
    return socks


def _closed_within(s: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing ``s`` within ``seconds``, or None if it is still open."""
    s.settimeout(0.2)
    got, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk
    return None


@pytest.mark.parametrize("workers", [1, 2])
def test_slow_clients_are_closed_and_others_served(index, tmp_path, workers):
    """Silent connections, half headers and half bodies are closed after the (short, here) header and
    body timeouts, with a 408 for those that had begun a request; requests meanwhile are answered
    (main kept every one of them open for ever)."""
    proc, url = _start(index, tmp_path, "--workers", str(workers), "--header-timeout", "1.5",
                       "--body-timeout", "1.5")
    socks = []
    try:
        _health_pids(proc, url, workers)
        host, port = _host_port(url)
        t0 = time.monotonic()
        socks = _slow_clients(host, port, 10)
        for _ in range(10):
            assert _get(host, port)[0] == 200
        ends = [_closed_within(s, 10) for s in socks]
        assert all(e is not None for e in ends), [i for i, e in enumerate(ends) if e is None]
        assert time.monotonic() - t0 < 12
        assert all(e == b"" for e in ends[:10])  # silent: closed without a word
        assert all(e.startswith(b"HTTP/1.1 408 ") and b"(--header-timeout)" in e for e in ends[10:20]), ends[10]
        assert all(e.startswith(b"HTTP/1.1 408 ") and b"(--body-timeout)" in e for e in ends[20:]), ends[20]
        assert _get(host, port)[0] == 200
    finally:
        for s in socks:
            s.close()
        err = _stop(proc)
    assert "Traceback" not in err


def test_a_full_server_refuses_with_503(index, tmp_path):
    """A process holding --max-connections answers the next connection 503 (JSON, Retry-After) at
    once; when connections close, requests are served again."""
    proc, url = _start(index, tmp_path, "--workers", "1", "--max-connections", "5")
    held = []
    try:
        _health_pids(proc, url, 1)
        host, port = _host_port(url)
        held = [socket.create_connection((host, port), timeout=10) for _ in range(5)]
        time.sleep(0.3)
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", "/health")
        r = conn.getresponse()
        assert r.status == 503 and r.getheader("retry-after") == "1"
        assert "holds 5 open connections, its limit (--max-connections)" in json.loads(r.read())["error"]
        conn.close()
        for s in held:
            s.close()
        time.sleep(0.3)
        assert _get(host, port)[0] == 200
    finally:
        for s in held:
            s.close()
        _stop(proc)


@pytest.mark.parametrize(("workers", "delay"), [(2, 0.3), (2, 0.0), (1, 0.0)])
def test_ctrl_c_while_workers_start_is_quiet(index, tmp_path, workers, delay):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) right after the start line,
    while the workers still import or uvicorn still starts: a clean exit 0, no KeyboardInterrupt
    traceback from any worker and no "Aborted!"."""
    proc = subprocess.Popen([str(Path(sys.executable).with_name("recs")), "serve", "--index", str(index), "--port", "0",
                             "--workers", str(workers), "--no-access-log"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path)})
    try:
        assert "serving" in proc.stdout.readline()
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    err = proc.stderr.read()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "Aborted!" not in err, err
    assert not list(tmp_path.glob("recs-serve-*"))


def _gone(pids: set[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p in pids if Path(f"/proc/{p}").exists() and "zombie" not in _state(p)]:
            return True
        time.sleep(0.1)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def test_a_killed_servers_index_copy_is_removed_at_the_next_start(index, tmp_path):
    """kill -9 of the supervisor leaves its copy of the index (its workers end when it is gone); the
    next recs serve removes it (a live server's copy is never touched)."""
    first, url = _start(index, tmp_path, "--workers", "2")
    pids = _health_pids(first, url, 2)
    left = list(tmp_path.glob("recs-serve-*"))
    first.kill()
    first.wait(timeout=10)
    assert _gone(pids, 20), "the workers outlived their supervisor"
    assert [p.exists() for p in left] == [True]
    second, url = _start(index, tmp_path, "--workers", "2")
    try:
        _health_pids(second, url, 2)
        assert not left[0].exists()
        assert len(list(tmp_path.glob("recs-serve-*"))) == 1  # its own
    finally:
        err = _stop(second)
    assert f"removed {left[0]} (the index copy of a recs serve that was killed)" in err
    assert not list(tmp_path.glob("recs-serve-*"))


def test_a_worker_that_cannot_be_restarted_leaves_the_others_serving(index, tmp_path):
    """A /tmp cleaner removes the workers' copy of the index, then a worker dies: the other keeps
    serving, the log and /health say what is missing (main: the whole server stopped with
    FileNotFoundError .../worker.json)."""
    import shutil

    proc, url = _start(index, tmp_path, "--workers", "2")
    try:
        pids = _health_pids(proc, url, 2)
        (copy,) = tmp_path.glob("recs-serve-*")
        shutil.rmtree(copy)
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        host, port = _host_port(url)
        deadline = time.monotonic() + 30
        while True:
            status, health = _get(host, port)
            assert status == 200 and health["pid"] != victim
            if health["status"] == "degraded":
                break
            assert time.monotonic() < deadline, health
            time.sleep(0.1)
        assert health["workers"]["configured"] == 2 and health["workers"]["serving"] == 1
        assert f"{copy} (the workers' copy of the index) is gone" in health["workers"]["problems"][0]
        for _ in range(20):
            assert _get(host, port)[0] == 200
        assert proc.poll() is None
    finally:
        err = _stop(proc)
    assert "Worker process 1 of 2 cannot be restarted" in err or "Worker process 2 of 2 cannot be restarted" in err
    assert f"{copy} (the workers' copy of the index) is gone" in err and "FileNotFoundError" not in err
