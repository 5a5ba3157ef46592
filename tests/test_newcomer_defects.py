"""Issue 20's defects, each pinned by a test that failed before its fix: what a newcomer met on a
first day with recs (a README command's JSON that browsers refuse, a share above 1, a cut-off chart
label, typos scored silently, a Spark master that takes 82 s to be named unreachable, tables split
inside a number or a file name, an id whose JSON type depends on whether the item is known, an
error naming one of two columns, ``--quiet`` on some commands only, a score a baseline never had).

Small data only: one 5,000-event planted log, split, shared by the module.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
import socket
import time
from pathlib import Path

import polars as pl
import pytest

from recs.candidates.registry import METHODS
from recs.display import set_name

from helpers import one_line_error, planted_covisit_split, run_cli


def strict_json(text: str) -> object:
    """``text`` parsed as browsers and Node parse JSON: NaN and Infinity are not JSON."""
    def refuse(name: str) -> object:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """A 5,000-event planted log (every target re-finds an item: discovery has none), split, and a
    co-visitation index of its training part."""
    d = tmp_path_factory.mktemp("newcomer")
    planted_covisit_split(d, "covisit")
    return d


# ---- 1: --json never writes NaN ------------------------------------------------------------------

def test_eval_hitrate_json_parses_strictly_with_null_for_no_discovery_target(planted):
    d = planted
    r = run_cli("eval-hitrate", "--index", d / "covisit", "--sessions", d / "test.parquet", "--json", d / "e.json")
    assert r.exit_code == 0, r.output
    report = strict_json((d / "e.json").read_text())
    for row in report["results"]:
        assert row["discovery_targets"] == 0  # the planted log: every target re-finds
        assert row["discovery_hit_rate"] is None


# ---- 10: the header says the index's score setting, none for a baseline -------------------------

def test_eval_hitrate_header_of_a_baseline_names_no_score(planted):
    d = planted
    r = run_cli("eval-hitrate", "--index", d / "covisit", "--sessions", d / "test.parquet", "--json", d / "e10.json")
    assert r.exit_code == 0, r.output
    title = next(ln for ln in r.output.splitlines() if ln.startswith("purchase-intent"))
    assert title.startswith("purchase-intent hit rate, k=20,") and "score" not in title, title
    assert strict_json((d / "e10.json").read_text())["score"] is None


@pytest.fixture(scope="module")
def cold(tmp_path_factory) -> Path:
    """A cold-start set-up: 70% of the planted items listed on the last day, a small trained model, and
    an index of ours rolled up over the world's catalogue (most of its items never seen in training)."""
    d = tmp_path_factory.mktemp("cold")
    assert run_cli("synth", "--events", 5_000, "--seed", 2, "--new-items", 0.7, "--out", d / "s.parquet",
                   "--catalog", d / "catalog.parquet").exit_code == 0
    r = run_cli("split", d / "s.parquet", "--train", d / "train.parquet", "--test", d / "test.parquet")
    assert r.exit_code == 0, r.output
    r = run_cli("train-embeddings", d / "train.parquet", "--out", d / "model", "--dim", 16, "--epochs", 2,
                "--workers", 1, "--quiet")
    assert r.exit_code == 0, r.output
    r = run_cli("build-index", "--model", d / "model", "--catalog", d / "catalog.parquet", "--out", d / "index",
                "--k", 200, "--threads", 1, "--quiet")
    assert r.exit_code == 0, r.output
    return d


def test_eval_hitrate_header_of_our_index_names_its_score(cold):
    r = run_cli("eval-hitrate", "--index", cold / "index", "--sessions", cold / "test.parquet")
    assert r.exit_code == 0, r.output
    assert ", score=prob, " in next(ln for ln in r.output.splitlines() if ln.startswith("purchase-intent"))


# ---- 2: catalogue reach is a share of the catalogue the index can list ---------------------------

def test_catalogue_reach_of_a_rolled_up_index_is_a_share(cold):
    d = cold
    r = run_cli("eval-hitrate", "--index", d / "index", "--sessions", d / "test.parquet", "--train",
                d / "train.parquet", "--json", d / "e.json")
    assert r.exit_code == 0, r.output
    train_items = set(pl.read_parquet(d / "train.parquet")["item_id"].to_list())
    listable = train_items | set(pl.read_parquet(d / "catalog.parquet")["item_id"].to_list())
    assert len(listable) > len(train_items)  # new listings the index rolls up
    for row in strict_json((d / "e.json").read_text())["results"]:
        cands = pl.read_parquet(d / "index" / "candidates" / f"{row['candidate_set']}.parquet")["candidate_item_id"]
        reached = set(cands.to_list())
        assert reached <= listable
        assert len(reached) > len(train_items)  # more than the training catalogue: the old share went above 1
        assert row["catalogue_reach"] == pytest.approx(len(reached) / len(listable))
        assert 0 < row["catalogue_reach"] <= 1
    assert "catalogue the index can list" in " ".join(run_cli("eval-hitrate", "--help").output.split())


# ---- 8: a history without user_id and session_id is refused naming both ------------------------

@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_recommend_history_without_either_key_names_both(planted, tmp_path, suffix):
    history = tmp_path / f"h.{suffix}"
    frame = pl.read_parquet(planted / "train.parquet").drop("session_id", "user_id", strict=False)
    frame.write_parquet(history) if suffix == "parquet" else frame.write_csv(history)
    r = run_cli("recommend", "--index", planted / "covisit", "--history", history, "--out", tmp_path / "r.parquet",
                "--quiet")
    line = one_line_error(r)
    assert "'user_id'" in line and "'session_id'" in line, line
    assert not (tmp_path / "r.parquet").exists()


# ---- 7: GET /items/ID/candidates answers the item id in the index's one type ---------------------

def test_item_route_answers_ids_of_the_index_type_known_or_not(tmp_path):
    testclient = pytest.importorskip("starlette.testclient",
                                     reason="starlette is not installed: pip install -e '.[serve]'")
    from recs.recommend.recommender import Recommender
    from recs.serve.app import create_app

    from hand_index import hand_index

    integers = hand_index(tmp_path / "int", {"click_to_cart": {1: [10, 11]}})
    c = testclient.TestClient(create_app(Recommender.open(integers)))
    known, unknown = (c.get(f"/items/{i}/candidates?set=click_to_cart").json() for i in (1, 42))
    assert known["item_id"] == 1 and unknown["item_id"] == 42  # numbers both: the index's ids are integers
    assert unknown["items"] == [] and "42" in unknown["note"]
    for text in ("abc", "007", "-0", "+1", "99999999999999999999"):  # can be no item of an integer index
        r = c.get(f"/items/{text}/candidates?set=click_to_cart")
        assert r.status_code == 422 and text in r.json()["error"] and "integer" in r.json()["error"], r.text
    # a negative integer's own text names it (hashed ids often are negative; issue 21 item 7)
    assert c.get("/items/-1/candidates?set=click_to_cart").json()["item_id"] == -1
    texts = hand_index(tmp_path / "text", {"click_to_cart": {"a": ["b"]}})
    c = testclient.TestClient(create_app(Recommender.open(texts)))
    assert [c.get(f"/items/{i}/candidates?set=click_to_cart").json()["item_id"] for i in ("a", "42")] == ["a", "42"]


# ---- 4: an interaction an option names that no data has is refused, with the known ones ---------

KNOWN = "cart, click, favorite, purchase"


@pytest.mark.parametrize("targets, unknown", [("buy", "'buy'"), ("cart,purchse", "'purchse'"),
                                              ("buy,cart,purchse", "'buy', 'purchse'")])
def test_unknown_targets_are_refused_wherever_they_are_named(planted, tmp_path, targets, unknown):
    d = planted
    runs = {
        "eval-hitrate": ["eval-hitrate", "--index", d / "covisit", "--sessions", d / "test.parquet",
                         "--json", tmp_path / "e.json"],
        "compare": ["compare", d / "train.parquet", d / "test.parquet", "--methods", "co-visitation", "--quiet",
                    "--json", tmp_path / "c.json"],
        "eval-recommend": ["eval-recommend", "--index", d / "covisit", "--history", d / "train.parquet",
                           "--sessions", d / "test.parquet", "--arms", "click,cart", "--quiet",
                           "--json", tmp_path / "r.json"],
    }
    for name, args in runs.items():
        line = one_line_error(run_cli(*args, "--targets", targets))
        assert re.search(f"--targets: unknown interactions? {unknown}; known: {KNOWN} ", line), (name, line)
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_canonical_target_absent_from_the_data_is_still_scored(planted):
    # favorite is canonical: a log without it scores zero of them rather than refusing the name
    r = run_cli("eval-hitrate", "--index", planted / "covisit", "--sessions", planted / "test.parquet",
                "--targets", "cart,favorite", "--bootstrap", 0)
    assert r.exit_code == 0, r.output


# ---- 5: an unreachable Spark master fails in seconds, naming the cause --------------------------

def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_spark_master_fails_in_seconds_with_the_cause(planted, tmp_path):
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]' (and Java 17+)")
    from recs.spark.session import active_session

    if active_session() is not None:
        pytest.skip("a SparkSession already runs in this process: its master would be refused first")
    master = f"spark://127.0.0.1:{closed_port()}"
    start = time.monotonic()
    r = run_cli("train-embeddings", planted / "train.parquet", "--out", tmp_path / "model", "--engine", "spark",
                "--spark-master", master, "--quiet")
    line = one_line_error(r)
    assert time.monotonic() - start < 20, "Spark retried the master instead of failing fast"
    assert master in line and "no master is reachable" in line and "refused" in line.lower(), line
    assert not (tmp_path / "model").exists()


# ---- 3: the HTML report's chart shows every label whole, ticks at round values, a page margin ----

CHAR_PX = 0.62  # a generous average glyph width of a sans-serif font, in em: real labels are narrower


def test_html_chart_labels_whole_ticks_round_and_a_page_margin():
    from recs.eval.compare import CART_TO_CART, CLICK_TO_CART, ITEM_TO_ITEM
    from recs.eval.html_report import CSS, bar_chart

    labels = [spec.label for spec in METHODS.values()]
    rows = [{"method": name, "label": spec.label, ITEM_TO_ITEM: 0.091 + 0.01 * i, CLICK_TO_CART: 0.17 + 0.005 * i,
             CART_TO_CART: 0.26 - 0.01 * i} for i, (name, spec) in enumerate(METHODS.items())]
    svg = bar_chart(rows)
    texts = re.findall(r'<text x="([\d.]+)" y="[\d.]+"([^>]*)>(.*?)</text>', svg)
    # every method label is there whole: its lines (tspans) joined give it back, and none starts left
    # of the picture (text-anchor end: the text runs leftwards from x)
    for label in labels:
        shown = [(float(x), attrs, body) for x, attrs, body in texts
                 if html.unescape(" ".join(re.findall(r">([^<]*)</tspan>", body) or [body])) == label]
        assert len(shown) == 1, (label, svg[:2000])
        x, attrs, body = shown[0]
        size = float(re.search(r'font-size="([\d.]+)"', attrs).group(1)) if "font-size" in attrs else 12.0
        assert 'text-anchor="end"' in attrs
        for line in re.findall(r">([^<]*)</tspan>", body) or [body]:
            assert x - CHAR_PX * size * len(html.unescape(line)) >= 0, (label, line, x)
    # axis ticks at round values: equal steps of 1, 2 or 5 times a power of ten, covering every bar
    ticks = [float(body) for _, attrs, body in texts if 'class="tick"' in attrs]
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1 and ticks[0] == 0, ticks
    (step,) = steps
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 5), ticks
    assert ticks[-1] >= max(r[c] for r in rows for c in (ITEM_TO_ITEM, CLICK_TO_CART, CART_TO_CART))
    # the page keeps a margin on a narrow window, where margin:auto alone leaves none
    body = re.search(r"body\{([^}]*)\}", CSS).group(1)
    assert re.search(r"padding:[^;]*\d(em|px)", body), body


# ---- 6: at 80 columns no table splits a number or a file name ------------------------------------

NUMBER = re.compile(r"\d[\d,.]*")


def assert_whole(output: str, words: list[str]) -> None:
    """Each of ``words`` (a file name, a number as shown) is on one line of ``output``, and no line
    is wider than 80 columns."""
    lines = output.splitlines()
    assert max(len(ln) for ln in lines) <= 80, output
    for word in words:
        assert any(word in ln for ln in lines), (word, output)


def test_check_at_80_columns_keeps_file_names_whole(tmp_path):
    from hand_index import hand_index

    long_set = "add-to-wishlist-app_to_add-to-cart-app"  # its file name fits 80 columns, its path does not
    index = hand_index(tmp_path / "index", {long_set: {1: [2, 3]}, "click_to_cart": {1: [2]}})
    r = run_cli("check", index)
    assert r.exit_code == 0, r.output
    sizes = [f"{p.stat().st_size:,}" for p in (index / "candidates").iterdir()]
    assert_whole(r.output, [f"{long_set}.parquet", "click_to_cart.parquet", *sizes])


def test_table_helper_folds_paths_at_slashes_and_never_inside_a_number():
    from recs.cli.render import console, table

    rows = [{"file": f"candidates/click_to_cart/part-{i:05d}.parquet", "bytes": 12_345_678 + i,
             "recorded_bytes": 12_345_678 + i, "status": "ok"} for i in range(3)]
    assert console.width == 80
    with console.capture() as captured:
        console.print(table("an index of parts", rows, ["file", "bytes", "recorded_bytes", "status"]))
    assert_whole(captured.get(), [f"part-{i:05d}.parquet" for i in range(3)]
                 + [f"{12_345_678 + i:,}" for i in range(3)])


def test_build_index_cold_start_counts_stay_beside_their_level(cold, tmp_path):
    r = run_cli("build-index", "--model", cold / "model", "--catalog", cold / "catalog.parquet", "--out",
                tmp_path / "index", "--k", 20, "--threads", 1, "--quiet")
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    lines = r.output.splitlines()
    assert max(len(ln) for ln in lines) <= 80, r.output
    at = next(i for i, ln in enumerate(lines) if "popular" in ln)  # the cold-start table's header
    for name, entry in manifest["candidate_sets"].items():
        queries = entry["rollup"]["queries"]
        assert all(level in lines[at] for level in queries), lines[at]
        row = next(ln for ln in lines[at:] if set_name(name) in ln)
        # every level's count on its set's line, in the levels' order
        assert NUMBER.findall(row) == [f"{n:,}" for n in queries.values()], (row, r.output)


# ---- 9: --quiet on every command that reports progress, --verbose on every command ---------------

# recs serve reports requests, not stages: its log is --access-log / --no-access-log
NO_PROGRESS = {"serve"}


def test_every_command_with_progress_takes_quiet_and_every_command_verbose():
    from recs.cli.main import cli

    for name, command in cli.commands.items():
        options = {o for p in command.params for o in p.opts}
        assert "--verbose" in options, name
        assert ("--quiet" in options) != (name in NO_PROGRESS), name


def test_synth_reports_its_stages_and_quiet_silences_them(tmp_path):
    from click.testing import CliRunner

    from recs.cli.main import cli

    runner = CliRunner()
    loud = runner.invoke(cli, ["synth", "--events", "2000", "--out", str(tmp_path / "a.parquet")])
    assert loud.exit_code == 0, loud.output
    assert re.search(r"^generating: 2,000 events in [\d.]+ s$", loud.stderr, re.M), loud.stderr
    quiet = runner.invoke(cli, ["synth", "--events", "2000", "--out", str(tmp_path / "b.parquet"), "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.stderr
    verbose = runner.invoke(cli, ["synth", "--events", "2000", "--out", str(tmp_path / "c.parquet"), "--verbose"])
    assert verbose.exit_code == 0, verbose.output
