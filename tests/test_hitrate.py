"""The hit-rate definition on hand-built sessions whose answers are worked out in the comments."""

from __future__ import annotations

import math

import polars as pl
import pytest

from recs.config import EvalConfig
from recs.eval.hitrate import coverage, hit_rate, hit_table

from helpers import sessions_frame

# click_to_cart candidates: 1 -> [3], 2 -> [5], 4 -> [9]
CANDS = pl.DataFrame({"item_id": [1, 2, 4], "candidate_item_id": [3, 5, 9], "rank": [1, 1, 1],
                      "score": [0.9, 0.8, 0.7]})
TEST = sessions_frame({
    # cart 3: triggers 2, 1 -> S = {5, 3}: hit.  purchase 3: triggers 4, 2, 1 -> {9, 5, 3}: hit
    "A": [(1, "click"), (2, "click"), (3, "cart"), (4, "click"), (3, "purchase")],
    # cart 7: no earlier click -> no trigger.  cart 8: trigger 7 has no list -> miss
    "B": [(7, "cart"), (7, "click"), (8, "cart")],
    # distinct last 4 clicked items: 11, 10, 2, 1 -> 1's list holds 3: hit (the last 4 *events* would miss)
    "C": [(1, "click"), (2, "click"), (10, "click"), (10, "click"), (11, "click"), (3, "cart")],
})


def test_worked_example():
    r = hit_rate(TEST, CANDS, "click", EvalConfig(triggers=4))
    assert r == {"targets": 5, "targets_with_trigger": 4, "targets_without_trigger": 1, "hits": 3,
                 "hit_rate": 0.75}


def test_fewer_triggers_fewer_hits():
    # triggers=1: A cart 3 -> {2}: miss; A purchase 3 -> {4}: miss; B cart 8 -> {7}: miss; C -> {11}: miss
    assert hit_rate(TEST, CANDS, "click", EvalConfig(triggers=1))["hits"] == 0
    # triggers=3: C -> {11, 10, 2}: miss; A stays 2 hits
    assert hit_rate(TEST, CANDS, "click", EvalConfig(triggers=3))["hits"] == 2


def test_per_target_table_and_targets_option():
    table = hit_table(TEST, CANDS, "click", EvalConfig())
    assert table.filter(pl.col("session_id") == "B")["hit"].to_list() == [None, False]
    assert table.filter(pl.col("session_id") == "A")["triggers"].to_list() == [2, 3]
    only_purchase = hit_rate(TEST, CANDS, "click", EvalConfig(targets=("purchase",)))
    assert (only_purchase["targets"], only_purchase["hits"]) == (1, 1)


def test_multiset_targets_count_twice_and_trigger_must_be_earlier():
    test = sessions_frame({"D": [(1, "click"), (3, "cart"), (3, "cart"), (2, "click")]})
    r = hit_rate(test, CANDS, "click", EvalConfig())
    assert (r["targets"], r["hits"]) == (2, 2)  # P is a multiset; the later click on 2 is no trigger
    # same timestamp: file order decides, so a click logged after the cart is not its trigger
    same_time = test.with_columns(pl.lit(test["timestamp"][0]).alias("timestamp"))
    assert hit_rate(same_time, CANDS, "click", EvalConfig())["hits"] == 2


def test_cart_to_cart_uses_cart_triggers():
    cands = pl.DataFrame({"item_id": [3], "candidate_item_id": [8], "rank": [1], "score": [1.0]})
    test = sessions_frame({"E": [(1, "click"), (3, "cart"), (8, "cart"), (9, "purchase")]})
    r = hit_rate(test, cands, "cart", EvalConfig())
    # cart 3: no earlier cart; cart 8: trigger 3 -> hit; purchase 9: triggers 8, 3 -> miss
    assert (r["targets_without_trigger"], r["targets_with_trigger"], r["hits"]) == (1, 2, 1)


def test_string_item_ids_and_no_targets():
    cands = CANDS.with_columns(pl.col("item_id").cast(pl.String), pl.col("candidate_item_id").cast(pl.String))
    test = TEST.with_columns(pl.col("item_id").cast(pl.String))
    assert hit_rate(test, cands, "click", EvalConfig())["hit_rate"] == 0.75
    r = hit_rate(TEST.filter(pl.col("interaction") == "click"), CANDS, "click", EvalConfig())
    assert r["targets"] == 0 and math.isnan(r["hit_rate"])


def test_coverage():
    c = coverage(TEST, CANDS, "click", catalogue_items=10)
    # active clicked items: 1, 2, 4, 7, 10, 11; with lists: 1, 2, 4
    assert c["active_items"] == 6 and c["covered_items"] == 3
    assert c["coverage"] == pytest.approx(0.5) and c["mean_list_length"] == pytest.approx(0.5)
    assert c["catalogue_reach"] == pytest.approx(0.3)  # candidates 3, 5, 9
