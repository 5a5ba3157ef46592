"""Re-finding vs discovery (``recs.eval.novelty``): worked by hand, then against a reference.

A target is *re-finding* when its item already occurred (any interaction) strictly earlier in its
session, or for its user when the sessions have a user_id; else *discovery*. Every count of the hit
rate is split that way, and each pair adds up to the total.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_hitrate import CANDS as README_CANDS
from test_hitrate import TEST as README_TEST

from recs.candidates.base import CandidateGenerator
from recs.candidates.build import write_index
from recs.config import EvalConfig, IndexConfig
from recs.eval.hitrate import any_trigger_view, hit_counts, hit_rate, hit_table, split_counts
from recs.eval.novelty import event_refinding, mark_refinding
from recs.eval.report import evaluate_sets
from recs.sessions.io import validate_sessions, write_sessions

from helpers import T0, run_cli, sessions_frame

SPLIT_FIELDS = ("targets", "targets_with_trigger", "hits")

# The hand-written index. No list holds its own item, as no recs generator's does (candidate_block,
# co-visitation's filter): click 9 then cart 9 is not a hit through 9's own list.
HAND_SETS = {
    ("click", "cart"): {1: [2, 3], 2: [1], 5: [6]},
    ("cart", "cart"): {3: [4]},
}

# user u1 has S1 (day 0) and then S2 (day 1); u2 has S3 (day 0, same clock as S1).
USERS = {"S1": "u1", "S2": "u1", "S3": "u2"}
SESSIONS = {
    "S1": [(1, "click"), (2, "cart"), (9, "click"), (9, "cart"), (2, "purchase")],
    "S2": [(5, "click"), (6, "cart"), (1, "cart"), (3, "cart"), (4, "cart")],
    "S3": [(2, "click"), (1, "cart"), (2, "cart")],
}
# Per target in (session, time) order: (item, re-finding?, Click-to-Cart hit, Cart-to-Cart hit); None = no trigger.
#   S1 cart 2      new                          click triggers {1} -> {2, 3}: hit     no earlier cart
#   S1 cart 9      clicked just before          {9, 1} -> {2, 3}: miss (9 lists ...)  carts {2} -> {}: miss
#   S1 purchase 2  carted earlier               {9, 1} -> {2, 3}: hit                 carts {9, 2} -> {}: miss
#   S2 cart 6      new                          {5} -> {6}: hit                       no earlier cart
#   S2 cart 1      u1 clicked 1 in S1           {5} -> {6}: miss                      {6} -> {}: miss
#   S2 cart 3      new (u1 never saw 3)         {5}: miss                             {1, 6} -> {}: miss
#   S2 cart 4      new                          {5}: miss                             {3, 1, 6} -> {4}: hit
#   S3 cart 1      new for u2 (u1's 1 is not)   {2} -> {1}: hit                       no earlier cart
#   S3 cart 2      clicked just before          {2} -> {1}: miss                      {1} -> {}: miss
EXPECTED = [
    (2, False, True, None), (9, True, False, False), (2, True, True, False),
    (6, False, True, None), (1, True, False, False), (3, False, False, False), (4, False, False, True),
    (1, False, True, None), (2, True, False, False),
]


def hand_sessions(users: bool = True) -> pl.DataFrame:
    frames = [sessions_frame({s: events}, day=1 if s == "S2" else 0) for s, events in SESSIONS.items()]
    test = pl.concat(frames)
    if users:
        test = test.with_columns(pl.col("session_id").replace_strict(USERS).alias("user_id"))
    return validate_sessions(test)


def cand_frame(lists: dict[int, list[int]]) -> pl.DataFrame:
    rows = [(item, c, rank) for item, cs in lists.items() for rank, c in enumerate(cs, 1)]
    return pl.DataFrame(
        {"item_id": [r[0] for r in rows], "candidate_item_id": [r[1] for r in rows],
         "rank": pl.Series([r[2] for r in rows], dtype=pl.Int32),
         "score": pl.Series([1.0 / r[2] for r in rows], dtype=pl.Float32)})


@dataclass
class HandCandidates(CandidateGenerator):
    """The lists above, whatever it is fitted on: an index written by hand through build-index's writer."""

    name: str = "hand"

    def _fit(self, train: pl.DataFrame) -> None:
        pass

    def _candidate_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        yield cand_frame(HAND_SETS[(source, target)])


def expected_counts(column: int, refinding: bool | None) -> dict[str, int]:
    """Targets, with a trigger and hits of EXPECTED's column 2 (Click-to-Cart) or 3 (Cart-to-Cart)."""
    rows = [e for e in EXPECTED if refinding is None or e[1] == refinding]
    return {"targets": len(rows), "targets_with_trigger": sum(e[column] is not None for e in rows),
            "hits": sum(e[column] is True for e in rows)}


def test_hand_example_by_target():
    test = hand_sessions()
    c2c = hit_table(test, cand_frame(HAND_SETS[("click", "cart")]), "click", EvalConfig())
    k2c = hit_table(test, cand_frame(HAND_SETS[("cart", "cart")]), "cart", EvalConfig())
    assert c2c["item_id"].to_list() == [e[0] for e in EXPECTED]
    assert c2c["refinding"].to_list() == [e[1] for e in EXPECTED] == k2c["refinding"].to_list()
    assert c2c["hit"].to_list() == [e[2] for e in EXPECTED]
    assert k2c["hit"].to_list() == [e[3] for e in EXPECTED]


def test_hand_example_through_the_cli(tmp_path):
    test = hand_sessions()
    write_sessions(test, tmp_path / "test.parquet")
    gen = HandCandidates().fit(test)
    write_index(tmp_path / "index", gen, IndexConfig(pairs=tuple(HAND_SETS), k=5, threads=1),
                {"sessions": {"path": "hand"}}, 9)
    result = run_cli("eval-hitrate", "--index", tmp_path / "index", "--sessions", tmp_path / "test.parquet",
                     "--json", tmp_path / "eval.json")
    assert result.exit_code == 0, result.output
    rows = {r["candidate_set"]: r for r in json.loads((tmp_path / "eval.json").read_text())["results"]}
    for name, column in (("click_to_cart", 2), ("cart_to_cart", 3)):
        row = rows[name]
        for prefix, which in (("", None), ("refinding_", True), ("discovery_", False)):
            assert {f: row[prefix + f] for f in SPLIT_FIELDS} == expected_counts(column, which), (name, prefix)
    # by hand: Click-to-Cart 4/9 = re-finding 1/4 + discovery 3/5; Cart-to-Cart 1/6 = 0/4 + 1/2
    c2c, k2c = rows["click_to_cart"], rows["cart_to_cart"]
    assert (c2c["hit_rate"], c2c["refinding_hit_rate"], c2c["discovery_hit_rate"]) == (4 / 9, 0.25, 0.6)
    assert (k2c["hit_rate"], k2c["refinding_hit_rate"], k2c["discovery_hit_rate"]) == (1 / 6, 0.0, 0.5)
    assert "re-finding hit rate" in result.output and "discovery hit rate" in result.output


def test_without_user_id_only_the_session_is_history():
    # S2's cart 1 was clicked by u1 in S1: without user_id nothing links the sessions, so it is discovery
    c2c = hit_table(hand_sessions(users=False), cand_frame(HAND_SETS[("click", "cart")]), "click", EvalConfig())
    assert c2c["refinding"].to_list() == [e[1] and i != 4 for i, e in enumerate(EXPECTED)]
    split = split_counts(c2c)
    assert (split["refinding_targets"], split["refinding_hits"]) == (3, 1)
    assert (split["discovery_targets"], split["discovery_hits"]) == (6, 3)


def test_readme_example_split():
    # README: A's purchase 3 follows A's cart 3 (re-finding, hit); the other four targets are new
    split = split_counts(hit_table(README_TEST, README_CANDS, "click", EvalConfig()))
    assert split == {"refinding_targets": 1, "refinding_targets_with_trigger": 1, "refinding_hits": 1,
                     "refinding_hit_rate": 1.0, "discovery_targets": 4, "discovery_targets_with_trigger": 3,
                     "discovery_hits": 2, "discovery_hit_rate": pytest.approx(2 / 3)}


def test_evaluate_sets_keeps_the_existing_numbers_and_adds_the_split():
    test, frame = hand_sessions(), cand_frame(HAND_SETS[("click", "cart")])
    (row,) = evaluate_sets(test, {"click_to_cart": ("click", frame)}, EvalConfig())
    before = hit_rate(test, frame, "click", EvalConfig())
    assert {k: row[k] for k in before} == before
    assert set(row) - set(before) - {"candidate_set"} >= {f"{p}_{f}" for p in ("refinding", "discovery")
                                                          for f in (*SPLIT_FIELDS, "hit_rate")}


def test_any_trigger_view_keeps_the_flags():
    # the view's copies come after their event: a target's own copy is not its history
    test, frame = hand_sessions(), cand_frame(HAND_SETS[("click", "cart")])
    plain = hit_table(test, frame, "click", EvalConfig())
    view = hit_table(any_trigger_view(test), frame, "_any", EvalConfig())
    assert view["refinding"].to_list() == plain["refinding"].to_list()


def test_mark_refinding_api():
    # the eval-recommend use: events and targets are separate frames, keyed by user, ordered by time
    events = pl.DataFrame({"user_id": ["a", "a", "b", None], "item_id": ["1", "2", "1", "3"], "t": [1, 5, 1, 1]})
    targets = pl.DataFrame({"user_id": ["a", "a", "a", "b", None, "c"], "item_id": [2, 1, 2, 2, 3, 1],
                            "t": [9, 1, 5, 9, 9, 9], "extra": list("uvwxyz")})
    out = mark_refinding(events, targets, "user_id", order="t")
    assert out.columns == [*targets.columns, "refinding"]
    assert out.drop("refinding").equals(targets)  # rows and their order kept
    # a-2 at 9: seen at 5; a-1 at 1: only at 1, not earlier; a-2 at 5: not earlier; b-2: b never saw 2;
    # null user: no history; c: unknown.  Integer targets against text events compare as text.
    assert out["refinding"].to_list() == [True, False, False, False, False, False]
    s = pl.lit("s").alias("s")
    composite = mark_refinding(events.with_columns(s), targets.with_columns(s), ["user_id", "s"], order="t")
    assert composite["refinding"].equals(out["refinding"])


# --- against a reference --------------------------------------------------------------------------

def reference_flags(test: pl.DataFrame) -> list[bool]:
    """O(n^2): an earlier (timestamp, row) event of the same item in the session or of the same user."""
    rows = test.with_row_index("_row").to_dicts()
    user = "user_id" in test.columns

    def history(e: dict, t: dict) -> bool:
        same_user = user and t["user_id"] is not None and e["user_id"] == t["user_id"]
        return e["session_id"] == t["session_id"] or same_user

    return [any(e["item_id"] == t["item_id"] and (e["timestamp"], e["_row"]) < (t["timestamp"], t["_row"])
                and history(e, t) for e in rows) for t in rows]


event = st.tuples(
    st.sampled_from(["s1", "s2", "s3", "s4"]),
    st.integers(0, 4),  # items: few, so repeats happen
    st.sampled_from(["click", "cart", "purchase"]),
    st.integers(0, 5),  # minute: ties happen, across sessions too
)


@settings(max_examples=40, deadline=None)
@given(events=st.lists(event, min_size=1, max_size=40),
       users=st.sampled_from([None, {"s1": 1, "s2": 1, "s3": 2, "s4": None}, {"s1": 1, "s2": 1, "s3": 1, "s4": 1}]),
       source=st.sampled_from(["click", "cart"]))
def test_matches_reference(events, users, source):
    test = pl.DataFrame({"session_id": [e[0] for e in events], "item_id": [e[1] for e in events],
                         "interaction": [e[2] for e in events],
                         "timestamp": [T0 + timedelta(minutes=e[3]) for e in events]})
    if users is not None:
        test = test.with_columns(pl.col("session_id").replace_strict(users, return_dtype=pl.Int64).alias("user_id"))
    test = validate_sessions(test)
    assert event_refinding(test).to_list() == reference_flags(test)
    cands = pl.DataFrame({"item_id": [0, 1, 2, 3], "candidate_item_id": [1, 2, 3, 0]})
    table = hit_table(test, cands, source, EvalConfig(triggers=2))
    # each target's flag is its event's (targets in session, time, row order as the hit table lists them)
    ordered = test.with_columns(pl.Series("ref", reference_flags(test))).with_row_index("_row").sort(
        "session_id", "timestamp", "_row")
    assert table["refinding"].to_list() == ordered.filter(pl.col("interaction").is_in(["cart", "purchase"]))[
        "ref"].to_list()
    total, split = hit_counts(table), split_counts(table)
    for f in SPLIT_FIELDS:
        assert split[f"refinding_{f}"] + split[f"discovery_{f}"] == total[f]
