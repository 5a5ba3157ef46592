"""``GET /openapi.json`` and ``GET /metrics`` of ``recs serve`` (issue 20, "The service, as operators expect it").

The OpenAPI document is checked three ways: it is valid OpenAPI 3.1 (openapi-spec-validator), it names
exactly the app's routes, and real answers of every route validate against the schemas it gives (so the
document cannot drift from what the routes send). docs/api.md carries its table of routes.

/metrics is read with prometheus_client's own parser: counts go up by exactly the requests sent, per
route template and module, the latency histogram has its buckets, errors are counted by status, and
the index gauges say its size and age. One test runs the real server with two workers on loopback: a
scrape on either worker reports the whole service.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import recs
from recs.config import ServeConfig
from recs.recommend.recommender import Recommender

from hand_index import hand_index
from helpers import planted_covisit_split, start_server

starlette_testclient = pytest.importorskip("starlette.testclient",
                                           reason="starlette is not installed: pip install -e '.[serve]'")
pytest.importorskip("prometheus_client", reason="prometheus_client is not installed: pip install -e '.[serve]'")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from recs.serve.app import create_app  # noqa: E402
from recs.serve.openapi import markdown_table, openapi_spec  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`:DeprecationWarning")

REPO = Path(__file__).resolve().parents[1]
LISTS = {
    "click_to_cart": {1: [(10, 0.9), (11, 0.8), (12, 0.7)], 2: [(13, 0.5), (11, 0.4)]},
    "cart_to_cart": {10: [(20, 0.95), (21, 0.3)], 11: [(21, 0.85)]},
}
LIMITS = ServeConfig(max_events=5, max_k=50)


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return hand_index(tmp_path_factory.mktemp("api") / "index", LISTS)


@pytest.fixture
def client(index):
    """A new app per test: its in-process metrics start from zero."""
    return starlette_testclient.TestClient(create_app(Recommender.open(index), LIMITS))


# ---- the OpenAPI document --------------------------------------------------------------------------

def _template(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def test_the_document_is_valid_openapi(client):
    validator = pytest.importorskip("openapi_spec_validator",
                                    reason="openapi-spec-validator is not installed: pip install -e '.[test]'")
    served = client.get("/openapi.json")
    assert served.status_code == 200 and served.headers["content-type"] == "application/json"
    spec = served.json()
    validator.validate(spec)
    validator.validate(openapi_spec())  # the generic one, the docs page's
    # the served one is the index's: its sets and the server's limits
    params = {p["name"]: p for p in spec["paths"]["/items/{item_id}/candidates"]["get"]["parameters"]}
    assert params["set"]["schema"]["enum"] == ["click_to_cart", "cart_to_cart"]
    assert params["k"]["schema"]["maximum"] == 50
    assert spec["components"]["schemas"]["RecommendRequest"]["properties"]["history"]["maxItems"] == 5


def test_the_document_names_every_route_and_only_those(client):
    spec = client.get("/openapi.json").json()
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    served = {(_template(r.path), m) for r in client.app.routes for m in r.methods if m != "HEAD"}
    assert documented == served
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["responses"]["200"]["description"], (method, path)
            for status, answer in op["responses"].items():
                if status != "200":  # every refusal is the one error object
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def _validator(spec: dict[str, Any], schema: dict[str, Any]):
    """A JSON Schema validator of ``schema`` whose $refs resolve inside ``spec`` (OpenAPI 3.1 schemas
    are JSON Schema 2020-12; the document is the root they point into)."""
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (with openapi-spec-validator) is not installed")
    return jsonschema.Draft202012Validator({**spec, **schema})


def _answer_schema(spec: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    answer = spec["paths"][path][method]["responses"][str(status)]
    return answer["content"]["application/json"]["schema"]


EXCHANGES = [
    ("post", "/recommend", "/recommend", {"history": [[1, "click", 1], [10, "cart", 2]], "module": "both"}, 200),
    ("post", "/recommend", "/recommend", {"history": [[1, "click", 1]], "module": "click", "format": "rows"}, 200),
    ("post", "/recommend", "/recommend", {"history": [[999, "click", 1]], "module": "click"}, 200),  # a note
    ("post", "/recommend", "/recommend", {"history": [[1, "clik", 1]], "module": "click"}, 422),
    ("post", "/recommend", "/recommend", {"history": [[1, "click", 1]] * 6, "module": "click"}, 422),
    ("get", "/items/{item_id}/candidates", "/items/1/candidates?set=click_to_cart&k=2", None, 200),
    ("get", "/items/{item_id}/candidates", "/items/999/candidates?set=click_to_cart", None, 200),
    ("get", "/items/{item_id}/candidates", "/items/1/candidates?set=nope", None, 404),
    ("get", "/items/{item_id}/candidates", "/items/1/candidates?set=click_to_cart&k=x", None, 422),
    ("get", "/items/active", "/items/active?k=3", None, 200),
    ("get", "/items/active", "/items/active?q=1", None, 200),
    ("get", "/items/active", "/items/active?k=0", None, 422),
    ("get", "/items/active", "/items/active?top=3", None, 422),
    ("get", "/items/facts", "/items/facts?id=1&id=20&id=nope", None, 200),
    ("get", "/items/facts", "/items/facts", None, 200),
    ("get", "/items/facts", "/items/facts?ids=1", None, 422),
    ("get", "/health", "/health", None, 200),
    ("get", "/openapi.json", "/openapi.json", None, 200),
]


@pytest.mark.parametrize(("method", "template", "url", "body", "status"), EXCHANGES,
                         ids=[f"{m} {u} {s}" for m, _, u, _, s in EXCHANGES])
def test_answers_validate_against_the_document(client, method, template, url, body, status):
    spec = client.get("/openapi.json").json()
    r = client.request(method.upper(), url, json=body)
    assert r.status_code == status, r.text
    assert str(status) in spec["paths"][template][method]["responses"]
    errors = sorted(_validator(spec, _answer_schema(spec, method, template, status)).iter_errors(r.json()),
                    key=str)
    assert not errors, (r.json(), [e.message for e in errors])
    if method == "post" and status == 200:  # and the request itself is one the document allows
        request_schema = spec["paths"][template]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert not list(_validator(spec, request_schema).iter_errors(body))


def test_the_document_refuses_what_the_service_refuses(client):
    """The request schema is not looser than the checks: bodies the service refuses fail it too."""
    spec = client.get("/openapi.json").json()
    schema = spec["paths"]["/recommend"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    for body in ({"history": [[1, "click", 1]]}, {"history": [], "module": "nope"},
                 {"history": [], "module": "click", "modul": 1}, {"history": [[1, "click"]], "module": "click"},
                 {"history": [], "module": "click", "k": 0}, {"history": [{"item_id": 1}], "module": "click"}):
        assert client.post("/recommend", json=body).status_code == 422, body
        assert list(_validator(spec, schema).iter_errors(body)), body


def test_the_docs_page_carries_the_table_of_routes():
    page = (REPO / "docs" / "api.md").read_text()
    table = markdown_table()
    assert table in page, "docs/api.md is stale: paste `python -m recs.serve.openapi --markdown` into it"
    nav = (REPO / "mkdocs.yml").read_text()
    assert "api.md" in nav


def test_the_page_and_the_non_json_routes(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy  # nothing from another host
    text = page.text
    assert "<script>" in text and "<script src" not in text and "<link" not in text
    for host in ("http://", "https://", "//cdn"):
        assert host not in text, host  # no CDN, no remote font: the machine may be offline
    # ... and every route it calls is a JSON route the document describes
    spec = client.get("/openapi.json").json()
    called = set(re.findall(r'getJSON\(["`]([^"`?$]+)', text))
    assert {"/health", "/openapi.json", "/items/active", "/items/facts", "/recommend", "/items/"} <= called
    for prefix in called:
        path = next(p for p in spec["paths"] if p.startswith(prefix))
        method = next(iter(spec["paths"][path]))
        assert "application/json" in spec["paths"][path][method]["responses"]["200"]["content"], path


# ---- explorer's JSON routes ------------------------------------------------------------------------

def test_active_and_facts_without_any_source(client):
    """A hand-made index names no model, catalogue or sessions: no shops or categories, and activity is
    how many lists an item is a candidate in (11: in 1's and 2's Click-to-Cart lists; 21: in 10's and 11's)."""
    body = client.get("/items/active?k=50").json()
    assert body["source"].startswith("none") and body["activity"] == "lists the item is a candidate in"
    # only items with a list are offered: 1, 2, 10, 11; 11 is in 1's and 2's lists, 10 in 1's
    assert [(i["item_id"], i["activity"]) for i in body["items"]] == [(11, 2), (10, 1), (1, 0), (2, 0)]
    assert body["items"][0]["lists"] == {"click_to_cart": 0, "cart_to_cart": 1}
    assert "shop_id" not in body["items"][0] and "category" not in body["items"][0]
    assert [i["item_id"] for i in client.get("/items/active?q=1").json()["items"]] == [11, 10, 1]
    assert [i["item_id"] for i in client.get("/items/active?k=1").json()["items"]] == [11]
    facts = client.get("/items/facts?id=21&id=nope&id=1").json()["items"]  # 21: in 10's and 11's lists
    assert facts[0] == {"item_id": 21, "known": True, "activity": 2, "lists": {"click_to_cart": 0, "cart_to_cart": 0}}
    assert facts[1] == {"item_id": "nope", "known": False} and facts[2]["item_id"] == 1
    too_many = "&".join(["id=1"] * 1001)
    r = client.get("/items/facts?" + too_many)
    assert r.status_code == 422 and "at most 1,000" in r.json()["error"]


def test_facts_from_the_training_sessions(tmp_path):
    """A co-visitation index names its training sessions: shops, categories and event counts come from them
    (each item's last shop and category, all its events), checked against the log itself."""
    import polars as pl

    planted_covisit_split(tmp_path)
    train = pl.read_parquet(tmp_path / "train.parquet")
    expected = (train.sort("timestamp", maintain_order=True).group_by("item_id")
                .agg(pl.col("shop_id").last(), pl.col("category").last(), pl.len().alias("n")))
    truth = {r["item_id"]: r for r in expected.iter_rows(named=True)}
    client = starlette_testclient.TestClient(create_app(Recommender.open(tmp_path / "index")))
    body = client.get("/items/active?k=5").json()
    assert body["source"] == f"the training sessions {tmp_path / 'train.parquet'}"
    assert body["activity"] == "events of the item in the training sessions"
    top = max(truth.values(), key=lambda r: (r["n"], -r["item_id"]))
    assert body["items"][0]["item_id"] == top["item_id"]
    counts = [i["activity"] for i in body["items"]]
    assert counts == sorted(counts, reverse=True)
    for item in body["items"]:
        t = truth[item["item_id"]]
        assert (item["shop_id"], item["category"], item["activity"]) == (t["shop_id"], t["category"], t["n"])


# ---- /metrics in process ---------------------------------------------------------------------------

def scrape(get) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}, read by prometheus_client's parser."""
    r = get("/metrics")
    assert r[0] == 200, r
    out = {}
    for family in text_string_to_metric_families(r[1]):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _in_process(client):
    def get(path: str) -> tuple[int, str]:
        r = client.get(path)
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        return r.status_code, r.text
    return get


RECOMMEND = "/recommend"
CANDIDATES = "/items/{item_id}/candidates"


def test_metrics_count_time_and_refuse_in_process(client, index):
    get = _in_process(client)
    before = scrape(get)
    for _ in range(3):
        assert client.post("/recommend", json={"history": [[1, "click", 1]], "module": "click"}).status_code == 200
    assert client.post("/recommend", json={"history": [[10, "cart", 1]], "module": "cart"}).status_code == 200
    assert client.post("/recommend", json={"history": [[1, "clik", 1]], "module": "click"}).status_code == 422
    assert client.get("/items/1/candidates?set=click_to_cart").status_code == 200
    assert client.get("/items/2/candidates?set=click_to_cart").status_code == 200
    assert client.get("/items/1/candidates?set=nope").status_code == 404
    assert client.get("/no/such/route").status_code == 404
    assert client.get("/recommend").status_code == 405
    after = scrape(get)
    req = "recs_http_requests_total"
    assert value(after, req, route=RECOMMEND, method="POST", module="click", status="200") == 3
    assert value(after, req, route=RECOMMEND, method="POST", module="cart", status="200") == 1
    # a refused body never reaches a module: it is counted without one
    assert value(after, req, route=RECOMMEND, method="POST", module="", status="422") == 1
    assert value(after, req, route=CANDIDATES, method="GET", module="", status="200") == 2
    assert value(after, req, route="unmatched", method="GET", module="", status="404") == 1  # never the raw path
    errors = "recs_http_errors_total"
    assert value(after, errors, route=RECOMMEND, status="422") == 1
    assert value(after, errors, route=CANDIDATES, status="404") == 1
    assert value(after, errors, route="unmatched", status="404") == 1
    assert value(after, errors, route=RECOMMEND, status="405") == 1
    assert not any("/items/1" in str(k) or "/no/such" in str(k) for k in after)
    assert sum(v for (n, _), v in before.items() if n == req) == 0  # a new app counts from zero
    # the histogram: buckets from 0.5 ms, cumulative, +Inf = count, per route and module
    h = "recs_http_request_duration_seconds"
    buckets = sorted((float(dict(labels)["le"]), v) for (n, labels), v in after.items()
                     if n == h + "_bucket" and dict(labels)["route"] == RECOMMEND and dict(labels)["module"] == "click")
    assert buckets[0][0] == 0.0005 and buckets[-1] == (float("inf"), 3) and len(buckets) >= 10
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert value(after, h + "_count", route=RECOMMEND, module="click") == 3
    assert 0 < value(after, h + "_sum", route=RECOMMEND, module="click") < 3 * 5
    # the index: its size and age
    assert value(after, "recs_index_items") == 8 == client.get("/health").json()["items"]  # 1, 2, 10-13, 20, 21
    assert value(after, "recs_index_candidate_rows", set="click_to_cart") == 5
    assert value(after, "recs_index_candidate_rows", set="cart_to_cart") == 3
    assert value(after, "recs_index_bytes") > 0
    created = value(after, "recs_index_created_timestamp_seconds")
    assert abs(time.time() - created - value(after, "recs_index_age_seconds")) < 60
    assert value(after, "recs_info", version=recs.__version__, method="hand", index=str(index)) == 1


# ---- /metrics of a real server with two workers --------------------------------------------------------

def _start(index: Path, tmp: Path, *options: str) -> tuple[subprocess.Popen, str, int]:
    """``recs serve --port 0`` in a subprocess (its temporary files under ``tmp``): the process, host, port."""
    proc, url = start_server(index, tmp, *options)
    host, port = url.removeprefix("http://").split(":")
    return proc, host, int(port)


def _request(host: str, port: int, method: str, path: str, body: Any = None) -> tuple[int, str]:
    """One request on a new connection (so the supervisor hands it to the next worker in turn)."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        data = None if body is None else json.dumps(body)
        conn.request(method, path, body=data, headers={"content-type": "application/json"} if data else {})
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def _wait_for_workers(proc: subprocess.Popen, host: str, port: int, want: int, timeout: float = 60) -> set[int]:
    pids, deadline = set(), time.monotonic() + timeout
    while len(pids) < want:
        try:
            status, text = _request(host, port, "GET", "/health")
            if status == 200:
                pids.add(json.loads(text)["pid"])
        except OSError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else pids
        time.sleep(0.05)
    return pids


def test_metrics_of_every_worker_on_loopback(index, tmp_path):
    """``recs serve --workers 2``: 20 recommendations, 4 candidate lists, a 404 and a 422, each on a new
    connection (so both workers answer some): a scrape on either worker counts exactly those, once."""
    proc, host, port = _start(index, tmp_path, "--workers", "2")
    try:
        pids = _wait_for_workers(proc, host, port, 2)
        get = lambda path: _request(host, port, "GET", path)  # noqa: E731
        before = scrape(get)
        assert value(before, "recs_http_requests_total", route=RECOMMEND, method="POST", module="click",
                     status="200") == 0
        served = set()
        for _ in range(20):
            status, text = _request(host, port, "POST", "/recommend",
                                    {"history": [[1, "click", 1]], "module": "click", "k": 2})
            assert status == 200 and json.loads(text)["candidate_item_id"] == [10, 11]
        for _ in range(4):
            assert _request(host, port, "GET", "/items/1/candidates?set=click_to_cart")[0] == 200
        assert _request(host, port, "GET", "/nowhere")[0] == 404
        assert _request(host, port, "POST", "/recommend", {"history": [], "module": "nope"})[0] == 422
        for _ in range(4):
            served.add(json.loads(_request(host, port, "GET", "/health")[1])["pid"])
        assert served == pids  # both workers served
        after = [scrape(get) for _ in range(2)]
        req = "recs_http_requests_total"
        for a in after:  # whichever worker answered the scrape
            assert value(a, req, route=RECOMMEND, method="POST", module="click", status="200") == 20
            assert value(a, req, route=CANDIDATES, method="GET", module="", status="200") == 4
            assert value(a, "recs_http_errors_total", route="unmatched", status="404") == 1
            assert value(a, "recs_http_errors_total", route=RECOMMEND, status="422") == 1
            assert value(a, "recs_http_request_duration_seconds_count", route=RECOMMEND, module="click") == 20
            assert value(a, "recs_http_request_duration_seconds_bucket", route=RECOMMEND, module="click",
                         le="+Inf") == 20
            assert value(a, "recs_index_items") == 8 and value(a, "recs_index_candidate_rows", set="click_to_cart") == 5
            assert value(a, "recs_index_age_seconds") > 0
        metrics_dir = list(tmp_path.glob("recs-serve-*/metrics"))
        assert len(metrics_dir) == 1 and len(list(metrics_dir[0].glob("*.db"))) >= 2  # a file per worker
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        err = proc.stderr.read()
    assert "Traceback" not in err
    assert not list(tmp_path.glob("recs-serve-*"))  # the metrics' files went with the server's directory


def test_metrics_can_be_turned_off(index, monkeypatch):
    """RECS_SERVE_METRICS=off (the benchmark's A/B): nothing is counted and /metrics says why, in JSON."""
    monkeypatch.setenv("RECS_SERVE_METRICS", "off")
    client = starlette_testclient.TestClient(create_app(Recommender.open(index), LIMITS))
    assert client.post("/recommend", json={"history": [[1, "click", 1]], "module": "click"}).status_code == 200
    r = client.get("/metrics")
    assert r.status_code == 503 and r.json() == {"error": "metrics are off (RECS_SERVE_METRICS=off)"}


def test_candidates_default_k_is_capped_by_max_k():
    """A request that names no k asks for 200 rows, or the server's --max-k if that is lower: never refused
    for a k it did not send."""
    from recs.serve.validate import candidates_query

    sets = ("click_to_cart",)
    assert candidates_query({"set": "click_to_cart"}, sets, ServeConfig(max_k=50)) == ("click_to_cart", 50)
    assert candidates_query({"set": "click_to_cart"}, sets, ServeConfig()) == ("click_to_cart", 200)
