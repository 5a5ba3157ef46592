"""Bootstrap intervals (``recs.eval.intervals``): hand-built per-unit sums whose right answer is known,
then the wiring into ``evaluate_sets``, ``compare`` and the CLI on a tiny planted log."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recs.cli.render import write_json
from recs.config import CompareConfig, EvalConfig
from recs.errors import ConfigError
from recs.eval.compare import CART_TO_CART, CLICK_TO_CART, ITEM_TO_ITEM, _intervals
from recs.eval.intervals import AHEAD, BEHIND, WITHIN_NOISE, align, bootstrap, replicate_rates, unit_sums
from recs.eval.report import evaluate_sets

from helpers import planted_covisit_split, run_cli, sessions_frame


def sums(hits: list[int], scored: list[int], ids: list[object] | None = None) -> pl.DataFrame:
    """A ``unit_sums`` frame: one row per session."""
    ids = list(range(len(hits))) if ids is None else ids
    return pl.DataFrame({"session_id": ids, "hits": hits, "scored": scored},
                        schema_overrides={"hits": pl.Int64, "scored": pl.Int64} if ids else {
                            "session_id": pl.Int64, "hits": pl.Int64, "scored": pl.Int64})


# 40 sessions of 1 to 3 scored targets, 40 hits of 80 targets: rate 0.5
PATTERN_HITS, PATTERN_SCORED = [1, 0, 2, 1, 0, 3, 0, 1] * 5, [2, 1, 3, 1, 2, 3, 1, 3] * 5


def test_interval_contains_the_rate_and_shrinks_with_more_units():
    few = bootstrap({"m": sums(PATTERN_HITS, PATTERN_SCORED)}, seed=1)["rates"]["m"]
    many = bootstrap({"m": sums(PATTERN_HITS * 10, PATTERN_SCORED * 10)}, seed=1)["rates"]["m"]
    assert few["rate"] == many["rate"] == sum(PATTERN_HITS) / sum(PATTERN_SCORED)
    for r in (few, many):
        assert r["low"] < r["rate"] < r["high"]
    # ten times the sessions: about sqrt(10) = 3.2 times narrower
    assert (many["high"] - many["low"]) < 0.45 * (few["high"] - few["low"])


def test_the_same_seed_gives_the_same_interval():
    data = {"m": sums(PATTERN_HITS, PATTERN_SCORED)}
    assert bootstrap(data, seed=7) == bootstrap(data, seed=7)
    assert bootstrap(data, seed=7)["rates"] != bootstrap(data, seed=8)["rates"]
    # the unit order of the frames does not matter: units are sorted by id before weights are drawn
    shuffled = sums(PATTERN_HITS[::-1], PATTERN_SCORED[::-1], list(range(40))[::-1])
    assert bootstrap({"m": shuffled}, seed=7) == bootstrap(data, seed=7)


def test_identical_methods_differ_by_exactly_zero():
    frame = sums(PATTERN_HITS, PATTERN_SCORED)
    (d,) = bootstrap({"a": frame, "ours": frame}, references=("ours",))["differences"]
    assert (d["method"], d["reference"]) == ("a", "ours")
    assert d["diff"] == d["low"] == d["high"] == 0.0 and d["verdict"] == WITHIN_NOISE


def test_a_method_that_hits_everything_is_ahead_of_one_that_hits_nothing():
    scored = [1, 2, 3] * 100
    result = bootstrap({"all": sums(scored, scored), "none": sums([0] * 300, scored)}, references=("none", "all"))
    by_pair = {(d["method"], d["reference"]): d for d in result["differences"]}
    assert by_pair[("all", "none")]["verdict"] == AHEAD and by_pair[("all", "none")]["diff"] == 1.0
    assert by_pair[("none", "all")]["verdict"] == BEHIND and by_pair[("none", "all")]["high"] == -1.0
    assert result["rates"]["all"] == {"rate": 1.0, "low": 1.0, "high": 1.0}


def test_pairing_narrows_the_interval_of_correlated_methods():
    # session difficulty varies a lot and both methods follow it; b hits one more target in 1 session of 10
    rng = np.random.default_rng(0)
    scored = rng.integers(1, 6, size=400)
    a = rng.binomial(scored, rng.uniform(0, 1, size=400))
    b = np.minimum(a + (np.arange(400) % 10 == 0), scored)
    paired = bootstrap({"b": sums(list(b), list(scored)), "a": sums(list(a), list(scored))}, references=("a",),
                       seed=3)["differences"][0]
    hits, tot = align({"a": sums(list(a), list(scored)), "b": sums(list(b), list(scored))})
    ra, rb = replicate_rates(hits[:1], tot[:1], 1000, 1), replicate_rates(hits[1:], tot[1:], 1000, 2)
    low, high = np.quantile(rb[:, 0] - ra[:, 0], [0.025, 0.975])  # two independent bootstraps
    assert paired["verdict"] == AHEAD and low < 0 < high  # only the paired test sees that b is ahead
    assert paired["high"] - paired["low"] < 0.5 * (high - low)


def test_no_scored_target_is_none_and_null_in_json(tmp_path):
    empty = sums([], [])
    result = bootstrap({"m": sums(PATTERN_HITS, PATTERN_SCORED), "nothing": empty, "zeros": sums([0, 0], [0, 0])},
                       references=("nothing",))
    for name in ("nothing", "zeros"):
        assert result["rates"][name] == {"rate": None, "low": None, "high": None}
    assert {d["method"]: d["verdict"] for d in result["differences"]} == {"m": None, "zeros": None}
    assert all(d["diff"] is None and d["low"] is None for d in result["differences"])
    assert bootstrap({"nothing": empty})["rates"]["nothing"]["rate"] is None  # no units at all
    off = bootstrap({"m": sums(PATTERN_HITS, PATTERN_SCORED)}, replicates=0)["rates"]["m"]
    assert off["rate"] == 0.5 and off["low"] is None and off["high"] is None
    # a NaN that reaches a JSON file (a hit rate with no denominator) is written as null
    text = write_json(tmp_path / "r.json", {**result, "hit_rate": float("nan")}).read_text()
    assert "NaN" not in text and json.loads(text)["hit_rate"] is None
    assert json.loads(text)["rates"]["nothing"] == {"rate": None, "low": None, "high": None}


def test_units_are_aligned_on_their_ids_with_zeros():
    hits, scored = align({"a": sums([1, 2], [1, 2], ["s2", "s1"]), "b": sums([1], [3], ["s3"])})
    assert hits.tolist() == [[2, 1, 0], [0, 0, 1]] and scored.tolist() == [[2, 1, 0], [0, 0, 3]]


def test_unit_sums_count_only_scored_targets():
    table = pl.DataFrame({"session_id": [1, 1, 1, 2, 3], "hit": [True, False, None, None, False]})
    got = unit_sums(table).sort("session_id")
    assert got.rows() == [(1, 1, 2), (3, 0, 1)]  # session 2 has no scored target: left out


def test_config_checks_name_the_field():
    with pytest.raises(ConfigError, match=r"--bootstrap must be in 0\.\.100,000"):
        EvalConfig(bootstrap=-1).validate()
    for bad in (0.0, 1.0, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="confidence must be between 0 and 1"):
            EvalConfig(confidence=bad).validate()
    with pytest.raises(ConfigError, match="--seed must be in"):
        bootstrap({"m": sums([1], [1])}, seed=-1)


def test_a_narrower_confidence_gives_a_narrower_interval():
    data = {"m": sums(PATTERN_HITS, PATTERN_SCORED)}
    wide, narrow = bootstrap(data, confidence=0.95)["rates"]["m"], bootstrap(data, confidence=0.5)["rates"]["m"]
    assert wide["low"] <= narrow["low"] < narrow["high"] <= wide["high"]


def test_evaluate_sets_rows_carry_the_interval_of_their_sessions():
    # 30 sessions "click 1, cart 2": the candidate list 1 -> [2] hits every target, 1 -> [3] none
    test = sessions_frame({s: [(1, "click"), (2, "cart")] for s in range(30)})
    cands = {name: pl.DataFrame({"item_id": [1], "candidate_item_id": [c], "rank": pl.Series([1], dtype=pl.Int32),
                                 "score": pl.Series([1.0], dtype=pl.Float32)}) for name, c in (("hit", 2), ("miss", 3))}
    units: dict[str, pl.DataFrame] = {}
    rows = evaluate_sets(test, {n: ("click", f) for n, f in cands.items()}, units=units)
    by = {r["candidate_set"]: r for r in rows}
    assert (by["hit"]["hit_rate"], by["hit"]["hit_rate_low"], by["hit"]["hit_rate_high"]) == (1.0, 1.0, 1.0)
    assert (by["miss"]["hit_rate_low"], by["miss"]["hit_rate_high"]) == (0.0, 0.0)
    assert units["hit"].height == 30 and units["hit"]["scored"].sum() == 30
    off = evaluate_sets(test, {"hit": ("click", cands["hit"])}, EvalConfig(bootstrap=0))[0]
    assert off["hit_rate_low"] is None and off["hit_rate_high"] is None


def test_compare_intervals_pair_every_method_with_ours_and_blend():
    a, b = sums(PATTERN_HITS, PATTERN_SCORED), sums([h + 1 for h in PATTERN_HITS], [s + 1 for s in PATTERN_SCORED])
    units = {CLICK_TO_CART: {"ours": a, "co-visitation": b, "blend": b}, ITEM_TO_ITEM: {"co-visitation": a}}
    hits = [{"method": m, "set": c, "hit_rate": None} for c, per in units.items() for m in per]
    cfg = CompareConfig(methods=("ours", "co-visitation", "blend"), seed=5)
    intervals, differences = _intervals(units, hits, cfg)
    assert [(r["method"], r["column"]) for r in intervals] == [
        ("ours", CLICK_TO_CART), ("co-visitation", ITEM_TO_ITEM), ("co-visitation", CLICK_TO_CART),
        ("blend", CLICK_TO_CART)]
    assert [(d["method"], d["reference"], d["column"]) for d in differences] == [
        ("co-visitation", "ours", CLICK_TO_CART), ("blend", "ours", CLICK_TO_CART),
        ("ours", "blend", CLICK_TO_CART), ("co-visitation", "blend", CLICK_TO_CART)]
    assert differences[0]["verdict"] == AHEAD and differences[2]["verdict"] == BEHIND
    assert differences[3]["diff"] == 0.0 and differences[3]["verdict"] == WITHIN_NOISE
    assert all(r["hit_rate_low"] < r["hit_rate_high"] for r in hits)
    # the compare interval of a set is the one its sessions give alone with the same seed (eval-hitrate's)
    alone = bootstrap({"ours": a}, seed=5)["rates"]["ours"]
    assert (intervals[0]["low"], intervals[0]["high"]) == (alone["low"], alone["high"])
    assert CART_TO_CART not in {r["column"] for r in intervals}


# --- the CLI on a tiny planted log --------------------------------------------------------------------------------

INTERVAL_CELL = re.compile(r"\d\.\d{4}–\d\.\d{4}")


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """A 5,000-event planted log, split, and a co-visitation index of its training part (no training)."""
    d = tmp_path_factory.mktemp("intervals")
    planted_covisit_split(d)
    return d


def test_eval_hitrate_shows_the_interval_and_writes_it_to_json(planted):
    d = planted
    r = run_cli("eval-hitrate", "--index", d / "index", "--sessions", d / "test.parquet", "--bootstrap", 300,
                "--json", d / "e.json")
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("│ 95% interval"))
    assert len(INTERVAL_CELL.findall(line)) == 2, line  # Click-to-Cart and Cart-to-Cart
    text = (d / "e.json").read_text()
    assert "NaN" not in text  # the planted log has no discovery target: its hit rate is null
    report = json.loads(text)
    assert report["bootstrap"] == {"replicates": 300, "confidence": 0.95, "seed": 42, "unit": "session_id"}
    for row in report["results"]:
        assert row["hit_rate_low"] <= row["hit_rate"] <= row["hit_rate_high"]
        low, high = INTERVAL_CELL.findall(line)[0].split("–") if row["candidate_set"] == "click_to_cart" else (
            None, None)
        if low is not None:
            assert (float(low), float(high)) == (round(row["hit_rate_low"], 4), round(row["hit_rate_high"], 4))
    # the same seed: the same numbers; --bootstrap 0: no interval line, null bounds
    r = run_cli("eval-hitrate", "--index", d / "index", "--sessions", d / "test.parquet", "--bootstrap", 300,
                "--json", d / "e2.json")
    assert json.loads((d / "e2.json").read_text())["results"] == report["results"]
    r = run_cli("eval-hitrate", "--index", d / "index", "--sessions", d / "test.parquet", "--bootstrap", 0,
                "--json", d / "e0.json")
    assert r.exit_code == 0 and "interval" not in r.output
    assert all(row["hit_rate_low"] is None for row in json.loads((d / "e0.json").read_text())["results"])


def test_compare_and_eval_hitrate_give_one_interval(planted):
    d = planted
    r = run_cli("compare", d / "train.parquet", d / "test.parquet", "--methods", "co-visitation,co-occurrence",
                "--k", 20, "--workers", 1, "--quiet", "--json", d / "c.json")
    assert r.exit_code == 0, r.output
    assert "95% intervals of Table 1" in r.output and INTERVAL_CELL.search(r.output)
    data = json.loads((d / "c.json").read_text())
    assert data["differences"] == []  # neither ours nor blend was compared
    got = {(row["method"], row["column"]): row for row in data["intervals"]}
    r = run_cli("eval-hitrate", "--index", d / "index", "--sessions", d / "test.parquet", "--json", d / "e.json")
    for row in json.loads((d / "e.json").read_text())["results"]:
        want = got[("co-visitation", row["candidate_set"])]
        assert (row["hit_rate_low"], row["hit_rate_high"]) == (want["low"], want["high"])
        assert math.isclose(row["hit_rate"], want["rate"])


def test_bad_bootstrap_options_exit_2_naming_the_option(planted):
    d = planted
    r = run_cli("eval-hitrate", "--index", d / "index", "--sessions", d / "test.parquet", "--bootstrap", -5)
    assert r.exit_code == 2 and "--bootstrap must be in 0..100,000" in r.output
    r = run_cli("eval-hitrate", "--index", d / "index", "--sessions", d / "test.parquet", "--seed", -1)
    assert r.exit_code == 2 and "--seed must be in" in r.output
