"""``Recommender`` (recs.recommend) on hand-made indexes whose right answers are worked out by hand.

Scores in the hand lists are dyadic fractions (0.875, 0.625, ...): float32 holds them exactly, so a
list is compared with ``==``. Every expected list below is written out from the lists by hand, with
the reasoning beside it; the property tests at the end hold the single-history path, the batch path
and a plain-Python reading of the documented rule (recs/recommend/merge.py) equal.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recs.candidates.build import load_candidates
from recs.columns import Col
from recs.config import MERGE_RULES, MODULES
from recs.errors import ConfigError
from recs.recommend.recommender import OUTPUT_COLUMNS, Recommender

from hand_index import hand_index
from helpers import planted_split, run_cli

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

# Items 1..5, 7, 8 are clicked, 20 and 21 carted; the rest are only candidates. 20 has a cart-to-purchase
# list, so its click-to-purchase one (32) is never read; 21 has only the click fallback.
LISTS = {
    "click_to_cart": {
        1: [(10, 0.875), (11, 0.5), (12, 0.25)],
        2: [(11, 0.75), (13, 0.625)],
        3: [(14, 0.9375), (10, 0.125)],
        4: [(15, 0.5)],
        5: [(16, 0.5)],
        7: [(40, 0.5), (41, 0.375)],  # 7 and 8 bring 40 with the same score: the tie rule decides
        8: [(40, 0.5), (42, 0.25)],
        20: [(50, 0.5)],  # a carted item also has a click-to-cart list (read by `recent` only)
    },
    "cart_to_cart": {
        20: [(21, 0.8125), (10, 0.9375), (17, 0.0625)],
        21: [(18, 0.5625)],
    },
    "cart_to_purchase": {20: [(30, 0.75), (31, 0.5)]},
    "click_to_purchase": {20: [(32, 0.5)], 21: [(33, 0.75), (34, 0.25)]},
}


@pytest.fixture(scope="module")
def rec(tmp_path_factory) -> Recommender:
    return Recommender.open(hand_index(tmp_path_factory.mktemp("rec") / "index", LISTS))


def history(*events: tuple[object, str]) -> list[tuple[object, str, datetime]]:
    """(item, interaction) events one minute apart, in the given order."""
    return [(item, inter, T0 + timedelta(minutes=i)) for i, (item, inter) in enumerate(events)]


def clicks(*items: object) -> list[tuple[object, str, datetime]]:
    return history(*((i, "click") for i in items))


def rows(recs) -> list[tuple]:
    """(candidate, score, trigger item, trigger interaction, set) per row, rank order."""
    f = recs.to_frame()
    assert f[Col.RANK].to_list() == list(range(1, len(f) + 1))
    return as_rows(f)


def as_rows(frame: pl.DataFrame) -> list[tuple]:
    return list(zip(*(frame[c].to_list() for c in OUTPUT_COLUMNS[1:]), strict=True))


def cands(recs) -> list[object]:
    return recs.items.tolist()


C2C, K2K, K2P, C2P = "click_to_cart", "cart_to_cart", "cart_to_purchase", "click_to_purchase"


# ---- click: merge order, dedupe, k cap, provenance ------------------------------------------------


def test_click_score_merge_orders_by_best_score_and_says_which_trigger(rec):
    # triggers 3 (newest), 2, 1. Candidates with their best score over the triggers:
    # 14 .9375 (3), 10 .875 (1; 3 brings it at .125), 11 .75 (2; 1 brings it at .5), 13 .625 (2), 12 .25 (1)
    got = rows(rec.recommend(clicks(1, 2, 3)))
    assert got == [(14, 0.9375, 3, "click", C2C), (10, 0.875, 1, "click", C2C), (11, 0.75, 2, "click", C2C),
                   (13, 0.625, 2, "click", C2C), (12, 0.25, 1, "click", C2C)]


def test_click_round_robin_takes_rank_one_of_every_trigger_newest_first(rec):
    # rank 1: 3 -> 14, 2 -> 11, 1 -> 10; rank 2: 3 -> 10 (taken), 2 -> 13, 1 -> 11 (taken); rank 3: 1 -> 12.
    # A candidate keeps the row that took it (11 from trigger 2 at .75, 10 from trigger 1 at .875).
    got = rows(rec.recommend(clicks(1, 2, 3), merge="round-robin"))
    assert got == [(14, 0.9375, 3, "click", C2C), (11, 0.75, 2, "click", C2C), (10, 0.875, 1, "click", C2C),
                   (13, 0.625, 2, "click", C2C), (12, 0.25, 1, "click", C2C)]


def test_round_robin_order_follows_recency_not_item_order(rec):
    # the same three triggers clicked in the opposite order: 1 is now the newest
    got = cands(rec.recommend(clicks(3, 2, 1), merge="round-robin"))
    assert got == [10, 11, 14, 13, 12]  # rank 1: 1 -> 10, 2 -> 11, 3 -> 14; rank 2: 1 -> 11 (taken), 2 -> 13


def test_equal_scores_keep_the_more_recent_trigger(rec):
    # 7 and 8 both bring 40 at .5; the newer click wins it, whichever item that is
    assert rows(rec.recommend(clicks(7, 8)))[0] == (40, 0.5, 8, "click", C2C)
    assert rows(rec.recommend(clicks(8, 7)))[0] == (40, 0.5, 7, "click", C2C)
    # and round-robin takes 40 from the newest trigger's rank 1
    assert rows(rec.recommend(clicks(7, 8), merge="round-robin"))[0] == (40, 0.5, 8, "click", C2C)


def test_k_caps_the_merged_list(rec):
    assert cands(rec.recommend(clicks(1, 2, 3), k=3)) == [14, 10, 11]
    assert cands(rec.recommend(clicks(1, 2, 3), k=3, merge="round-robin")) == [14, 11, 10]
    assert cands(rec.recommend(clicks(1, 2, 3), k=1)) == [14]


def test_only_the_last_four_distinct_clicks_trigger(rec):
    # clicks 1..5: triggers 5, 4, 3, 2; 1's own candidates (12) are gone, 10 comes from 3 only (.125)
    got = rows(rec.recommend(clicks(1, 2, 3, 4, 5)))
    assert [r[0] for r in got] == [14, 11, 13, 16, 15, 10]  # 16 and 15 tie at .5: 5 is the newer trigger
    assert {r[2] for r in got} == {2, 3, 4, 5}
    assert got[-1] == (10, 0.125, 3, "click", C2C)


def test_a_re_click_makes_an_old_item_recent_again(rec):
    # clicks 1..5 then 1 again: distinct by recency 1, 5, 4, 3 -> 2 drops out (its 13 disappears);
    # 11 (from 1), 16 (5), 15 (4) tie at .5 and come in that order of recency
    got = cands(rec.recommend(clicks(1, 2, 3, 4, 5, 1)))
    assert got == [14, 10, 11, 16, 15, 12]
    # repeats do not count as distinct clicks: 1 2 2 2 2 is two triggers, 2 the newest
    assert cands(rec.recommend(clicks(1, 2, 2, 2, 2), merge="round-robin")) == [11, 10, 13, 12]


def test_triggers_override_changes_the_count(rec):
    assert cands(rec.recommend(clicks(1, 2, 3), triggers=1)) == [14, 10]


# ---- cart, both -----------------------------------------------------------------------------------


def test_cart_reads_cart_to_cart_of_carted_items_only(rec):
    # clicks do not trigger the cart module; carts 21 then 20 -> 20 newest
    # 10 .9375 (20), 21 .8125 (20), 18 .5625 (21), 17 .0625 (20)
    got = rows(rec.recommend(history((1, "click"), (21, "cart"), (20, "cart"), (2, "click")), module="cart"))
    assert got == [(10, 0.9375, 20, "cart", K2K), (21, 0.8125, 20, "cart", K2K), (18, 0.5625, 21, "cart", K2K),
                   (17, 0.0625, 20, "cart", K2K)]


def test_both_merges_click_and_cart_triggers_and_dedupes_across_them(rec):
    # click 1, cart 20, click 3 (newest). 10 comes from click 1 (.875), cart 20 (.9375), click 3 (.125):
    # score keeps cart 20's .9375. 14 .9375 from click 3 is an equal score from a more recent trigger: first.
    events = history((1, "click"), (20, "cart"), (3, "click"))
    got = rows(rec.recommend(events, module="both"))
    assert got == [(14, 0.9375, 3, "click", C2C), (10, 0.9375, 20, "cart", K2K), (21, 0.8125, 20, "cart", K2K),
                   (11, 0.5, 1, "click", C2C), (12, 0.25, 1, "click", C2C), (17, 0.0625, 20, "cart", K2K)]
    # round-robin, recency 3, 20, 1: rank 1 -> 14, 21, 10; rank 2 -> 10 (taken), 10 (taken), 11; rank 3 -> 17, 12
    got = rows(rec.recommend(events, module="both", merge="round-robin"))
    assert got == [(14, 0.9375, 3, "click", C2C), (21, 0.8125, 20, "cart", K2K), (10, 0.875, 1, "click", C2C),
                   (11, 0.5, 1, "click", C2C), (17, 0.0625, 20, "cart", K2K), (12, 0.25, 1, "click", C2C)]


def test_an_item_clicked_and_carted_triggers_each_rule_with_its_own_list(rec):
    # 20 clicked then carted: the click rule reads its click-to-cart list (50), the cart rule its cart list
    got = rows(rec.recommend(history((20, "click"), (20, "cart")), module="both"))
    assert got == [(10, 0.9375, 20, "cart", K2K), (21, 0.8125, 20, "cart", K2K), (50, 0.5, 20, "click", C2C),
                   (17, 0.0625, 20, "cart", K2K)]


# ---- recent (the control) -------------------------------------------------------------------------


def test_recent_uses_every_interaction_and_says_which(rec):
    # 1 clicked, 20 carted, 2 favourited, 3 bought: all four trigger with their click-to-cart list
    events = history((1, "click"), (20, "cart"), (2, "favorite"), (3, "purchase"))
    got = rows(rec.recommend(events, module="recent"))
    assert got == [(14, 0.9375, 3, "purchase", C2C), (10, 0.875, 1, "click", C2C),
                   (11, 0.75, 2, "favorite", C2C), (13, 0.625, 2, "favorite", C2C),
                   (50, 0.5, 20, "cart", C2C), (12, 0.25, 1, "click", C2C)]
    # an item's trigger interaction is that of its last event
    got = rows(rec.recommend(history((2, "click"), (1, "click"), (2, "cart")), module="recent", recent=1))
    assert got == [(11, 0.75, 2, "cart", C2C), (13, 0.625, 2, "cart", C2C)]
    # recent=2 keeps 3 and 2 only
    assert cands(rec.recommend(events, module="recent", recent=2)) == [14, 11, 13, 10]


def test_recent_takes_a_hundred_distinct_items_by_default(tmp_path):
    # items 0..104 each with its own candidate 1000 + i; clicked in order, so 5..104 are the last 100
    lists = {C2C: {i: [(1000 + i, 0.5)] for i in range(105)}}
    rec = Recommender.open(hand_index(tmp_path / "index", lists))
    got = rec.recommend(clicks(*range(105)), module="recent")
    assert sorted(cands(got)) == [1000 + i for i in range(5, 105)]
    # equal scores: the more recent trigger first
    assert cands(got)[:3] == [1104, 1103, 1102]


# ---- cart page ------------------------------------------------------------------------------------


def test_cart_page_reads_the_last_carted_items_purchase_list(rec):
    got = rows(rec.recommend(history((21, "cart"), (20, "cart"), (1, "click")), module="cart-page"))
    assert got == [(30, 0.75, 20, "cart", K2P), (31, 0.5, 20, "cart", K2P)]


def test_cart_page_falls_back_to_click_to_purchase(rec):
    # 21 has no cart-to-purchase list: its click vector's list stands in, and the row says so
    got = rows(rec.recommend(history((20, "cart"), (21, "cart")), module="cart-page"))
    assert got == [(33, 0.75, 21, "cart", C2P), (34, 0.25, 21, "cart", C2P)]
    # a last carted item with neither list gives nothing (the cart page is about that item only)
    assert len(rec.recommend(history((20, "cart"), (1, "cart")), module="cart-page")) == 0


def test_cart_page_without_the_click_fallback_set(tmp_path):
    rec = Recommender.open(hand_index(tmp_path / "index", {K2P: LISTS[K2P]}))
    assert cands(rec.recommend(history((20, "cart")), module="cart-page")) == [30, 31]
    assert len(rec.recommend(history((21, "cart")), module="cart-page")) == 0


# ---- drop bought, --at, ties in time --------------------------------------------------------------


def test_drop_bought_removes_candidates_the_history_purchased(rec):
    events = history((1, "click"), (2, "click"), (3, "click"), (10, "purchase"), (13, "purchase"))
    assert cands(rec.recommend(events)) == [14, 10, 11, 13, 12]  # off by default
    assert cands(rec.recommend(events, drop_bought=True)) == [14, 11, 12]
    # a cart of 10 is not a purchase: it stays
    events = history((1, "click"), (10, "cart"))
    assert cands(rec.recommend(events, drop_bought=True)) == [10, 11, 12]


def test_at_keeps_only_events_before_it(rec):
    events = history((1, "click"), (2, "click"), (3, "click"), (10, "purchase"))
    at = T0 + timedelta(minutes=2)  # the click of 3 (minute 2) and the purchase are not history yet
    assert rows(rec.recommend(events, at=at)) == [(10, 0.875, 1, "click", C2C), (11, 0.75, 2, "click", C2C),
                                                  (13, 0.625, 2, "click", C2C), (12, 0.25, 1, "click", C2C)]
    # the purchase at minute 3 is after `at`, so drop-bought does not drop 10
    assert cands(rec.recommend(events, at=at, drop_bought=True))[0] == 10
    assert len(rec.recommend(events, at=T0)) == 0


def test_events_are_put_in_time_order_and_ties_keep_the_given_order(rec):
    same = T0 + timedelta(minutes=5)
    # given out of time order: 3 (minute 0) is the oldest; 2 and 1 tie at minute 5 and keep the given
    # order, so the one given last is the newest event and the only trigger at triggers=1
    events = [(2, "click", same), (3, "click", T0), (1, "click", same)]
    assert cands(rec.recommend(events, triggers=1)) == [10, 11, 12]
    events = [(1, "click", same), (3, "click", T0), (2, "click", same)]
    assert cands(rec.recommend(events, triggers=1)) == [11, 13]
    frame = pl.DataFrame({"item_id": [1, 3, 2], "interaction": ["click"] * 3, "timestamp": [same, T0, same]})
    assert cands(rec.recommend(frame, triggers=1)) == [11, 13]
    batch = rec.recommend_batch(frame.with_columns(pl.lit(7).alias("user_id")), triggers=1)
    assert batch["candidate_item_id"].to_list() == [11, 13]


# ---- ids: text, "42", unknown, empty --------------------------------------------------------------


def test_text_item_ids(tmp_path):
    lists = {C2C: {"shoe": [("sock", 0.75), ("lace", 0.5)], "hat": [("scarf", 0.875), ("sock", 0.25)]},
             K2K: {"sock": [("shoe", 0.5)]}}
    rec = Recommender.open(hand_index(tmp_path / "index", lists))
    got = rows(rec.recommend(history(("shoe", "click"), ("hat", "click"), ("sock", "cart")), module="both"))
    # lace and shoe tie at .5: shoe's trigger (the cart of sock) is the more recent
    assert got == [("scarf", 0.875, "hat", "click", C2C), ("sock", 0.75, "shoe", "click", C2C),
                   ("shoe", 0.5, "sock", "cart", K2K), ("lace", 0.5, "shoe", "click", C2C)]
    assert rec.recommend(clicks("boot")).to_frame().height == 0  # unknown text id
    assert rec.candidates("hat", C2C)["candidate_item_id"].to_list() == ["scarf", "sock"]


def test_an_integer_index_is_found_by_canonical_text_ids(tmp_path):
    rec = Recommender.open(hand_index(tmp_path / "index", {C2C: {42: [(7, 0.5), (8, 0.25)]}}))
    got = rec.recommend(clicks("42"))
    assert cands(got) == [7, 8] and got.items.dtype.kind == "i"  # candidates keep the index's ids
    for not_42 in ("042", "42.0", " 42", "+42", "x", "\u0664\u0662", "4\u00b2", ""):  # Arabic-Indic 42, "4²"
        assert len(rec.recommend(clicks(not_42))) == 0, not_42
    # 42 and "42" in one history are one item: with one trigger slot left for 41, both are read
    rec = Recommender.open(hand_index(tmp_path / "index2", {C2C: {41: [(6, 0.5)], 42: [(7, 0.5), (8, 0.25)]}}))
    assert cands(rec.recommend(clicks(41, 42, "42"), triggers=2)) == [7, 6, 8]
    batch = rec.recommend_batch(pl.DataFrame({"user_id": [1, 2], "item_id": ["42", "042"],
                                              "interaction": ["click"] * 2, "timestamp": [T0, T0]}))
    assert batch["user_id"].to_list() == [1, 1] and batch["candidate_item_id"].to_list() == [7, 8]


def test_text_ids_of_the_largest_integers_are_found_by_one_history_and_a_batch(tmp_path):
    top = 2**63 - 1
    rec = Recommender.open(hand_index(tmp_path / "index", {C2C: {10**18: [(7, 0.5)], top: [(8, 0.5)]}}))
    for text, want in ((str(10**18), [7]), (str(top), [8]), (str(top + 1), [])):
        assert cands(rec.recommend(clicks(text))) == want, text
        batch = rec.recommend_batch(pl.DataFrame({"user_id": [1], "item_id": [text], "interaction": ["click"],
                                                  "timestamp": [T0]}))
        assert batch["candidate_item_id"].to_list() == want, text


def test_unknown_items_and_items_without_a_list_are_skipped(rec):
    # 999 is in no set; 10 is only ever a candidate; 3 has a list
    assert cands(rec.recommend(clicks(999, 3, 10))) == [14, 10]
    assert len(rec.recommend(clicks(999, 10))) == 0


def test_an_empty_history_gives_an_empty_list_of_the_usual_columns(rec):
    for module in MODULES:
        got = rec.recommend([], module=module)
        assert len(got) == 0
        assert tuple(got.to_frame().columns) == OUTPUT_COLUMNS
        assert got.to_dicts() == []
    empty = pl.DataFrame(schema={"user_id": pl.Int64, "item_id": pl.Int64, "interaction": pl.String,
                                 "timestamp": pl.Datetime("us", "UTC")})
    assert rec.recommend_batch(empty).height == 0


def test_candidates_of_one_item(rec):
    f = rec.candidates(20, K2K, k=2)
    assert f.rows() == [(1, 21, 0.8125), (2, 10, 0.9375)]
    assert rec.candidates(999, K2K).height == 0
    with pytest.raises(ConfigError, match="click_to_click"):
        rec.candidates(20, "click_to_click")


# ---- missing sets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("module", "pairs"), [("cart", "cart:cart"), ("both", "cart:cart"),
                                               ("cart-page", "cart:purchase")])
def test_a_module_whose_set_is_missing_names_the_pairs_to_build(tmp_path, module, pairs):
    rec = Recommender.open(hand_index(tmp_path / "index", {C2C: LISTS[C2C], C2P: LISTS[C2P]}))
    with pytest.raises(ConfigError, match=f"--pairs {pairs}"):
        rec.recommend(clicks(1), module=module)
    with pytest.raises(ConfigError, match=f"--pairs {pairs}"):
        rec.recommend_batch(pl.DataFrame({"user_id": [1], "item_id": [1], "interaction": ["click"],
                                          "timestamp": [T0]}), module=module)


def test_click_and_recent_need_click_to_cart(tmp_path):
    rec = Recommender.open(hand_index(tmp_path / "index", {K2K: LISTS[K2K]}))
    for module in ("click", "recent"):
        with pytest.raises(ConfigError, match="--pairs click:cart"):
            rec.recommend(clicks(1), module=module)


def test_bad_overrides_are_config_errors(rec):
    with pytest.raises(ConfigError, match="--module"):
        rec.recommend(clicks(1), module="clicks")
    with pytest.raises(ConfigError, match="--merge"):
        rec.recommend(clicks(1), merge="best")
    with pytest.raises(ConfigError, match="--k"):
        rec.recommend(clicks(1), k=0)


# ---- properties: one history = a batch = the documented rule --------------------------------------


RULES = {  # the module table of recs/recommend/modules.py, restated: (interactions | None, n, sets)
    "click": lambda n, r: [({"click"}, n, [C2C])],
    "cart": lambda n, r: [({"cart"}, n, [K2K])],
    "both": lambda n, r: [({"click"}, n, [C2C]), ({"cart"}, n, [K2K])],
    "recent": lambda n, r: [(None, r, [C2C])],
    "cart-page": lambda n, r: [({"cart"}, 1, [K2P, C2P])],
}


def reference(lists, events, module, merge, k, n, recent, drop_bought, at):
    """The documented rule in plain Python: (candidate, score, trigger item, interaction, set) rows."""
    ev = sorted((e for e in events if at is None or e[2] < at), key=lambda e: e[2])
    picked = []  # (position, rule, item, interaction, set)
    for r_idx, (inters, count, sets) in enumerate(RULES[module](n, recent)):
        seen = set()
        for pos in range(len(ev) - 1, -1, -1):
            item, inter, _ = ev[pos]
            if (inters is not None and inter not in inters) or item in seen or len(seen) == count:
                continue
            seen.add(item)
            name = next((s for s in sets if lists.get(s, {}).get(item)), None)
            if name is not None:
                picked.append((pos, r_idx, item, inter, name))
    picked.sort(key=lambda p: (-p[0], p[1]))  # recency: newest first, one event's rules in rule order
    bought = {e[0] for e in ev if e[1] == "purchase"} if drop_bought else set()
    rows_ = []  # (sort key, candidate, score, trigger)
    for recency, (_, _, item, inter, name) in enumerate(picked):
        for rank, (cand, score) in enumerate(lists[name][item], start=1):
            if cand in bought:
                continue
            key = (-score, recency, rank, cand) if merge == "score" else (rank, recency, cand)
            rows_.append((key, (cand, score, item, inter, name)))
    out, taken = [], set()
    for _, row in sorted(rows_, key=lambda x: x[0]):
        if row[0] not in taken:
            taken.add(row[0])
            out.append(row)
    return out[:k]


SCORES = st.sampled_from([0.0625, 0.125, 0.25, 0.375, 0.5, 0.75, 0.875, 1.0])  # few values: many ties
INTERACTIONS = st.sampled_from(["click", "click", "cart", "favorite", "purchase"])


@st.composite
def hand_lists(draw):
    """A random index over items 0..11 (text ids or integers): 4 sets, each item's list distinct."""
    text = draw(st.booleans())
    ident = (lambda i: f"i{i}") if text else (lambda i: i)
    lists = {}
    for name in (C2C, K2K, K2P, C2P):
        sources = draw(st.sets(st.integers(0, 11), min_size=1, max_size=8))
        lists[name] = {ident(s): [(ident(c), draw(SCORES))
                                  for c in draw(st.lists(st.integers(0, 13), unique=True, min_size=1, max_size=6))]
                       for s in sorted(sources)}
    if draw(st.booleans()):
        del lists[C2P]  # the cart page without its fallback
    return text, ident, lists


@st.composite
def histories(draw, ident):
    """Users' events over items 0..13 and 99 (unknown), minutes 0..5 (ties in time)."""
    users = draw(st.integers(1, 5))
    out = {}
    for u in range(users):
        n = draw(st.integers(0, 12))
        out[u] = [(ident(draw(st.sampled_from([*range(14), 99]))), draw(INTERACTIONS),
                   T0 + timedelta(minutes=draw(st.integers(0, 5)))) for _ in range(n)]
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_history_equals_batch_equals_the_rule(data):
    text, ident, lists = data.draw(hand_lists())
    with tempfile.TemporaryDirectory() as tmp:
        rec = Recommender.open(hand_index(Path(tmp) / "index", lists))
    users = data.draw(histories(ident))
    frame = pl.DataFrame(
        [(u, *e) for u, evs in users.items() for e in evs],
        schema={"user_id": pl.Int64, "item_id": pl.String if text else pl.Int64, "interaction": pl.String,
                "timestamp": pl.Datetime("us", "UTC")}, orient="row")
    at = data.draw(st.none() | st.integers(0, 6).map(lambda m: T0 + timedelta(minutes=m)))
    k = data.draw(st.integers(1, 12))
    n = data.draw(st.integers(1, 5))
    recent = data.draw(st.integers(1, 6))
    drop = data.draw(st.booleans())
    for module in MODULES:
        if module == "cart-page" and K2P not in lists:
            continue
        for merge in MERGE_RULES:
            kw = dict(module=module, merge=merge, k=k, triggers=n, recent=recent, drop_bought=drop)
            batch = rec.recommend_batch(frame, at=at, **kw)
            for u, evs in users.items():
                want = reference(lists, evs, module, merge, k, n, recent, drop, at)
                one = rec.recommend(evs, at=at, **kw).to_frame()
                assert as_rows(one) == want, (module, merge, u)
                mine = batch.filter(pl.col("user_id") == u)
                assert as_rows(mine) == want, (module, merge, u)
                assert mine["rank"].to_list() == list(range(1, mine.height + 1))
                # the invariants of any list
                assert one["rank"].to_list() == list(range(1, one.height + 1))
                assert one.height <= k and one["candidate_item_id"].n_unique() == one.height
                if merge == "score":
                    assert (np.diff(one["score"].to_numpy()) <= 0).all()
            # the batch's rows come grouped by user in rank order
            assert batch["user_id"].to_list() == sorted(batch["user_id"].to_list(), key=list(users).index)


# ---- a real index written by recs build-index -----------------------------------------------------


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("planted")
    planted_split(d, 20_000, 3)
    for method, extra in (("embedding-reg", ["--dim", "16", "--epochs", "2"]),
                          ("co-visitation", ["--pairs", "click:cart,cart:cart,cart:purchase,click:purchase"])):
        r = run_cli("build-index", "--method", method, "--sessions", d / "train.parquet", "--out",
                    d / method, "--k", 20, "--threads", 1, "--quiet", *extra)
        assert r.exit_code == 0, r.output
    return d


def _joined_to_index(index: Path, recs: pl.DataFrame) -> pl.DataFrame:
    """Each row of ``recs`` with the index row (trigger, candidate) of its candidate set; nulls if none."""
    parts = []
    for name in recs["candidate_set"].unique().to_list():
        table = load_candidates(index, name).rename({"item_id": "trigger_item_id", "score": "index_score",
                                                     "rank": "index_rank"})
        parts.append(recs.filter(pl.col("candidate_set") == name)
                     .join(table, on=["trigger_item_id", "candidate_item_id"], how="left"))
    return pl.concat(parts)


def test_recent_on_an_item_level_index_built_by_build_index(planted):
    rec = Recommender.open(planted / "embedding-reg")
    train = pl.read_parquet(planted / "train.parquet")
    users = train["user_id"].unique().sort().head(30)
    events = train.filter(pl.col("user_id").is_in(users.implode()))
    batch = rec.recommend_batch(events, module="recent", k=50)
    assert batch["user_id"].n_unique() >= 25  # nearly every user has a list
    joined = _joined_to_index(planted / "embedding-reg", batch)
    assert joined["index_score"].null_count() == 0  # every row is a row of the index ...
    assert (joined["index_score"] == joined["score"]).all()  # ... with its score
    assert set(batch["candidate_set"].unique()) == {C2C}
    assert batch.group_by("user_id").len()["len"].max() <= 50
    # one history gives the batch's list; a trigger carries the interaction of its item's last event
    for u in users.head(5).to_list():
        evs = events.filter(pl.col("user_id") == u)
        one = rec.recommend(evs, module="recent", k=50).to_frame()
        assert as_rows(one) == as_rows(batch.filter(pl.col("user_id") == u))
        last = evs.sort("timestamp", maintain_order=True).group_by("item_id", maintain_order=True).last()
        last_inter = dict(zip(last["item_id"].to_list(), last["interaction"].to_list(), strict=True))
        for item, inter in zip(one["trigger_item_id"].to_list(), one["trigger_interaction"].to_list(), strict=True):
            assert last_inter[item] == inter


def test_every_module_on_an_interaction_aware_index_built_by_build_index(planted):
    rec = Recommender.open(planted / "co-visitation")
    assert set(rec.set_names) == {C2C, K2K, K2P, C2P}
    train = pl.read_parquet(planted / "train.parquet")
    carted = train.filter(pl.col("interaction") == "cart")["user_id"].unique().sort().head(40)
    events = train.filter(pl.col("user_id").is_in(carted.implode()))
    for module in MODULES:
        batch = rec.recommend_batch(events, module=module, k=40)
        assert batch.height > 0, module
        joined = _joined_to_index(planted / "co-visitation", batch)
        assert joined["index_score"].null_count() == 0 and (joined["index_score"] == joined["score"]).all()
        for u in carted.head(3).to_list():
            one = rec.recommend(events.filter(pl.col("user_id") == u), module=module, k=40).to_frame()
            assert as_rows(one) == as_rows(batch.filter(pl.col("user_id") == u)), module
